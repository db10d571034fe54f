package hooks

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"ganeti-userdown/internal/config"
	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/xen"
)

// Candidate is a domain chosen for destruction, and why.
type Candidate struct {
	Domain xen.Domain
	Why    string
}

// Skip is a dead domain left alone, and why.
type Skip struct {
	Domain xen.Domain
	Why    string
}

// stoppedForGood reports a dead domain whose reason allows destroying it:
// powered off, crashed, or stopped by its watchdog. Suspend, reboot and
// soft reset in flight, unknown reasons and dying domains never qualify.
func stoppedForGood(s xen.State) bool {
	if !s.Dead() {
		return false
	}
	switch s.Reason {
	case xen.ReasonPoweroff, xen.ReasonCrash, xen.ReasonWatchdog:
		return true
	}
	return false
}

// DeadDomainsOf returns the domains named instance that stopped for good
// (powered off, crashed, watchdog): what instance-start's pre phase
// destroys so the start is not a no-op. The name is compared exactly, as
// Xen does.
func DeadDomainsOf(domains []xen.Domain, instance string) []xen.Domain {
	var out []xen.Domain
	for _, d := range domains {
		if !d.IsDom0() && d.Name == instance && stoppedForGood(d.State) {
			out = append(out, d)
		}
	}
	return out
}

// Freeable chooses, among this node's domains, the preserved dead ones a
// hook may destroy to free memory for the instance coming (being added,
// migrated or failed over here), without asking the master which
// instances are down. A hook cannot know that: Ganeti's admin state is on
// the master, and a user-powered-off domain that detect has not yet
// marked down is exactly what must survive (design.md, "Decisions",
// safety rule 2). So only the certainly safe are chosen:
//
//   - a dead domain some live intent covers (by instance name from a
//     hook, or by uuid from the shim): Ganeti or an operator asked for
//     that shutdown, so it is no user's, and detect would not mark it;
//   - a dead domain named like the coming instance: the instance lives
//     elsewhere (or does not exist yet), so the domain is a leftover, and
//     Ganeti's own create of that name would fail on it.
//
// Every other dead domain is returned in skipped with the reason:
// user-powered-off domains without an intent, and crashed ones (their
// dump, and whether they are Ganeti's at all, are the watcher's to
// decide). Domains that are not dead are neither.
func Freeable(domains []xen.Domain, intents []state.Intent, instance string) (chosen []Candidate, skipped []Skip) {
	byName := map[string]string{}
	byUUID := map[string]string{}
	for _, in := range intents {
		switch {
		case in.Instance != "":
			byName[in.Instance] = in.Op
		case in.UUID != "":
			byUUID[strings.ToLower(in.UUID)] = in.Op
		}
	}
	for _, d := range domains {
		if d.IsDom0() || d.State.Alive() || d.State.Dying {
			continue
		}
		if !stoppedForGood(d.State) {
			skipped = append(skipped, Skip{d, fmt.Sprintf("shut down for %s (%s): an operation in flight or a reason not acted on", d.State.Reason, d.State.Letters)})
			continue
		}
		switch op, ok := lookupIntent(byName, byUUID, d); {
		case ok:
			chosen = append(chosen, Candidate{d, fmt.Sprintf("a live %s intent says Ganeti or an operator shut it down", op)})
		case d.Name == instance:
			chosen = append(chosen, Candidate{d, "leftover domain named like the instance coming to this node"})
		case d.State.GuestFailed():
			skipped = append(skipped, Skip{d, fmt.Sprintf("%s (%s) with no intent: left to the watcher (core dump, Ganeti restart)", d.State.Reason, d.State.Letters)})
		default:
			skipped = append(skipped, Skip{d, fmt.Sprintf("powered off (%s) with no intent: possibly a user shutdown not yet marked down, left to the watcher", d.State.Letters)})
		}
	}
	sort.Slice(chosen, func(i, j int) bool { return chosen[i].Domain.ID < chosen[j].Domain.ID })
	return chosen, skipped
}

func lookupIntent(byName, byUUID map[string]string, d xen.Domain) (string, bool) {
	if op, ok := byName[d.Name]; ok && d.Name != "" {
		return op, true
	}
	if d.UUID != "" {
		if op, ok := byUUID[strings.ToLower(d.UUID)]; ok {
			return op, true
		}
	}
	return "", false
}

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
