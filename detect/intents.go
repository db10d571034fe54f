package detect

import (
	"strings"
	"time"

	"ganeti-userdown/internal/state"
)

// intentIndex finds the live intent covering a domain: by instance name
// (recorded by the hooks) or by domain uuid, case-insensitively
// (recorded by the shim). Every decision that asks "did Ganeti or an
// operator ask for this shutdown?" asks it here.
type intentIndex struct {
	byName, byUUID map[string]state.Intent
}

// newIntentIndex indexes the intents live at now; of two for one key the
// first is kept.
func newIntentIndex(intents []state.Intent, now time.Time) intentIndex {
	ix := intentIndex{byName: map[string]state.Intent{}, byUUID: map[string]state.Intent{}}
	for _, it := range intents {
		if !it.Live(now) {
			continue
		}
		if it.Instance != "" {
			if _, ok := ix.byName[it.Instance]; !ok {
				ix.byName[it.Instance] = it
			}
		}
		if it.UUID != "" {
			u := strings.ToLower(it.UUID)
			if _, ok := ix.byUUID[u]; !ok {
				ix.byUUID[u] = it
			}
		}
	}
	return ix
}

// lookup returns the intent for the domain named name with this uuid
// ("" when unknown): the instance's first, then the uuid's.
func (ix intentIndex) lookup(name, uuid string) (state.Intent, bool) {
	if name != "" {
		if it, ok := ix.byName[name]; ok {
			return it, true
		}
	}
	if uuid != "" {
		if it, ok := ix.byUUID[strings.ToLower(uuid)]; ok {
			return it, true
		}
	}
	return state.Intent{}, false
}
