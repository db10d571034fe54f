package detect

import (
	"slices"
	"strings"
	"time"

	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/xen"
)

// intentIndex finds the live intent covering a domain: by instance name
// (recorded by the hooks) or by domain uuid, case-insensitively
// (recorded by the shim). Every decision that asks "did Ganeti or an
// operator ask for this shutdown?" asks it here.
type intentIndex struct {
	byName, byUUID map[string][]state.Intent
}

// newIntentIndex indexes the intents live at now, in their order.
func newIntentIndex(intents []state.Intent, now time.Time) intentIndex {
	ix := intentIndex{byName: map[string][]state.Intent{}, byUUID: map[string][]state.Intent{}}
	for _, it := range intents {
		if !it.Live(now) {
			continue
		}
		if it.Instance != "" {
			ix.byName[it.Instance] = append(ix.byName[it.Instance], it)
		}
		if it.UUID != "" {
			u := strings.ToLower(it.UUID)
			ix.byUUID[u] = append(ix.byUUID[u], it)
		}
	}
	return ix
}

// lookup returns the first intent that covers domain d (its uuid "" when
// unknown): the instance's first, then the uuid's.
func (ix intentIndex) lookup(d xen.Domain) (state.Intent, bool) {
	if d.Name != "" {
		for _, it := range ix.byName[d.Name] {
			if covers(it, d) {
				return it, true
			}
		}
	}
	if d.UUID != "" {
		for _, it := range ix.byUUID[strings.ToLower(d.UUID)] {
			if covers(it, d) {
				return it, true
			}
		}
	}
	return state.Intent{}, false
}

// about returns the first intent naming d's instance or uuid, whatever
// domains it was recorded for: not who shut d down (lookup says that) but
// whether Ganeti or an operator may be working on the instance right now.
func (ix intentIndex) about(d xen.Domain) (state.Intent, bool) {
	if its := ix.byName[d.Name]; d.Name != "" && len(its) > 0 {
		return its[0], true
	}
	if its := ix.byUUID[strings.ToLower(d.UUID)]; d.UUID != "" && len(its) > 0 {
		return its[0], true
	}
	return state.Intent{}, false
}

// covers reports whether an intent found by d's name or uuid is about d
// itself: an intent covers only the domains that existed when it was
// recorded. The shim's names the domain it shut down (DomID); a hook's
// lists the instance's domains it saw (Listed, DomIDs). One recorded
// without that knowledge (a listing that failed, an older file) covers
// every domain of its name or uuid. A domain created since, by a start
// or a reboot, is not covered: its user's poweroff is the user's, even
// while an intent of a Ganeti job that never ended is still live.
//
// Reference: doc/design.md, "State files": "An intent covers only the
// domains it was recorded for."
func covers(it state.Intent, d xen.Domain) bool {
	switch {
	case it.Instance != "" && it.Listed:
		return slices.Contains(it.DomIDs, d.ID)
	case it.Instance == "" && it.DomID > 0:
		return it.DomID == d.ID
	}
	return true
}
