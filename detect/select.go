package detect

import (
	"fmt"
	"sort"
	"time"

	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/xen"
)

// Candidate is a domain chosen for destruction by a hook, and why.
type Candidate struct {
	Domain xen.Domain
	Why    string
}

// Skip is a preserved domain a hook leaves alone, and why.
type Skip struct {
	Domain xen.Domain
	Why    string
}

// DeadDomainsOf returns the domains named instance that stopped for good
// (class stopped: powered off, crashed, watchdog): what instance-start's
// pre phase destroys so the start is not a no-op. The name is compared
// exactly, as Xen does.
//
// Reference: doc/design.md, "Decisions", "The hooks' choices".
func DeadDomainsOf(domains []xen.Domain, instance string) []xen.Domain {
	var out []xen.Domain
	for _, d := range domains {
		if !d.IsDom0() && d.Name == instance && d.State.Class() == xen.ClassStopped {
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
// safety rule 2). So only the certainly safe are chosen, among the
// domains of class stopped:
//
//   - a domain some live intent covers (by instance name from a hook, or
//     by uuid from the shim): Ganeti or an operator asked for that
//     shutdown, so it is no user's, and detect would not mark it;
//   - a domain named like the coming instance: the instance lives
//     elsewhere (or does not exist yet), so the domain is a leftover, and
//     Ganeti's own create of that name would fail on it.
//
// Every other stopped domain is returned in skipped with the reason:
// user-powered-off domains without an intent, and crashed ones (their
// dump, and whether they are Ganeti's at all, are the watcher's to
// decide); so are domains in flight or shut down for a reason Xen does
// not name. Alive and dying domains are neither.
func Freeable(domains []xen.Domain, intents []state.Intent, instance string, now time.Time) (chosen []Candidate, skipped []Skip) {
	ix := newIntentIndex(intents, now)
	for _, d := range domains {
		if d.IsDom0() {
			continue
		}
		switch d.State.Class() {
		case xen.ClassAlive, xen.ClassDying:
			continue
		case xen.ClassStopped:
		default:
			skipped = append(skipped, Skip{d, fmt.Sprintf("shut down for %s (%s): an operation in flight or a reason not acted on", d.State.Reason, d.State.Letters)})
			continue
		}
		switch it, ok := ix.lookup(d); {
		case ok:
			chosen = append(chosen, Candidate{d, fmt.Sprintf("a live %s intent says Ganeti or an operator shut it down", it.Op)})
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
