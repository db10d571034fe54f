package hooks

import (
	"time"

	"ganeti-userdown/internal/config"
	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/xen"
)

// Mismatch is a live action that differs from the configured one.
type Mismatch struct {
	Key  string
	Want string
	Got  string
}

// MissingActions compares a live domain's actions with the configured
// ones. Keys the toolstack does not report (on_shutdown, which neither xl
// nor xm reads) are not checked.
func MissingActions(live map[string]string, want []config.KeyValue) []Mismatch {
	var out []Mismatch
	for _, kv := range want {
		got, ok := live[kv.Key]
		if !ok {
			continue
		}
		if got != kv.Value {
			out = append(out, Mismatch{Key: kv.Key, Want: kv.Value, Got: got})
		}
	}
	return out
}

// NewIntent is the intent a pre hook records for op on instance at now.
func NewIntent(instance, op string, now time.Time, ttl time.Duration) state.Intent {
	return state.Intent{
		Instance: instance,
		Op:       op,
		Source:   "hook",
		Created:  now.UTC(),
		Expires:  now.UTC().Add(ttl),
	}
}

// ScopeIntent limits a hook's intent to the instance's domains among this
// node's domains, as listed right before it is recorded: the shutdown
// Ganeti asks for is of those, never of a domain a later start creates
// (design.md, "State files").
func ScopeIntent(in state.Intent, domains []xen.Domain) state.Intent {
	in.Listed, in.DomIDs = true, nil
	for _, d := range domains {
		if !d.IsDom0() && d.Name == in.Instance {
			in.DomIDs = append(in.DomIDs, d.ID)
		}
	}
	return in
}
