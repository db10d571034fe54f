package detect

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/xen"
)

// SpentGrace is how long after its creation a hook's intent may be found
// spent: longer than any gap between a Ganeti job taking the instance
// lock, running its pre hook, and the lock query that follows.
const SpentGrace = time.Minute

// SpentCandidates returns, sorted, the instances with a hook intent that
// its job may have left behind: recorded with this node's domains listed,
// at least SpentGrace ago, and none of the domains it was recorded for is
// stopped now (each is alive or gone). Whether it is spent depends on
// whether a Ganeti job still holds the instance (Spent). Pure.
func SpentCandidates(intents []state.Intent, domains []xen.Domain, now time.Time) []string {
	var names []string
	for _, it := range intents {
		if mayBeSpent(it, domains, now) && !slices.Contains(names, it.Instance) {
			names = append(names, it.Instance)
		}
	}
	sort.Strings(names)
	return names
}

// Spent returns the hook intents that a Ganeti job which ended without
// its post hook left behind: those SpentCandidates names whose instance no
// job holds (locked, as the cluster answered for those names). A job
// holds the instance lock from before its pre hook until after its post
// hook, which clears the intent; so an intent still there once no job
// holds the instance is of a job that failed, and the domain it was
// recorded for runs on (a migration that failed, a stop whose destroy
// failed) or is gone. Left live, it would take that domain's later user
// poweroff for Ganeti's until intent_ttl. Pure.
//
// Reference: doc/design.md, "State files": "an intent its job left
// behind is spent".
func Spent(intents []state.Intent, domains []xen.Domain, locked map[string]bool, now time.Time) []state.Intent {
	var out []state.Intent
	for _, it := range intents {
		if mayBeSpent(it, domains, now) && !locked[it.Instance] {
			out = append(out, it)
		}
	}
	return out
}

// SpentWhy says in one line why an intent is spent, for the log.
func SpentWhy(it state.Intent) string {
	if len(it.DomIDs) == 0 {
		return fmt.Sprintf("%s intent of %s (recorded %s, when it had no domain here) outlived its Ganeti job: no job holds the instance", it.Op, it.Instance, stamp(it.Created))
	}
	return fmt.Sprintf("%s intent of %s for domains %v (recorded %s) outlived its Ganeti job: no job holds the instance and none of those domains is stopped", it.Op, it.Instance, it.DomIDs, stamp(it.Created))
}

func mayBeSpent(it state.Intent, domains []xen.Domain, now time.Time) bool {
	if it.Instance == "" || !it.Listed || !it.Live(now) || now.Sub(it.Created) < SpentGrace {
		return false
	}
	for _, id := range it.DomIDs {
		for _, d := range domains {
			if d.ID == id && d.Name == it.Instance && d.State.Class() != xen.ClassAlive {
				return false // stopped, in flight, dying: its job's, maybe
			}
		}
	}
	return true
}
