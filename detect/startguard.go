package detect

import (
	"fmt"
	"strings"
	"time"

	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/xen"
)

// StartGuardWindow is how long after ganeti-userdown asked Ganeti to mark
// an instance down the first start that is not forced is refused: the
// watcher's restart, read before the mark-down and queued behind it,
// runs within seconds of it (design.md, "The start guard").
const StartGuardWindow = 10 * time.Minute

// AllowStartFor is how long an operator's `userdown-hook --allow-start`
// lasts when the start it allows does not come.
const AllowStartFor = 10 * time.Minute

// StartRequest is what the instance-start pre hook knows of one start from
// Ganeti's hook environment.
type StartRequest struct {
	// Instance and Node: the instance being started and this node, its
	// primary.
	Instance string
	Node     string
	// Forced is GANETI_FORCE=True: `gnt-instance startup --force`. The
	// watcher never forces.
	Forced bool
	// AdminState is GANETI_INSTANCE_STATUS: the admin state before the
	// start (up, down, offline), "" when absent.
	AdminState string
	// Tags are GANETI_INSTANCE_TAGS; nil when the variable is absent.
	Tags []string
	// DiskTemplate is GANETI_INSTANCE_DISK_TEMPLATE (drbd makes --force
	// mean more than an override).
	DiskTemplate string
}

// StartInput is everything the start guard decides on.
type StartInput struct {
	Request StartRequest
	// Domains is this node's toolstack list.
	Domains []xen.Domain
	// Intents are the recorded intents.
	Intents []state.Intent
	// MarkDown is the instance's mark-down record, nil when none.
	MarkDown *state.MarkDown
	// Allowance is an operator's allowance for the instance, nil when
	// none.
	Allowance *state.StartAllowance
	// DefaultPolicy is [policy] default.
	DefaultPolicy string
	Now           time.Time
}

// StartCase names the row of design.md's start guard table a verdict
// comes from.
type StartCase string

// The rows of the start guard table, in the order they are tried.
const (
	StartForced        StartCase = "forced"
	StartAllowed       StartCase = "allowed-by-operator"
	StartNotOurs       StartCase = "policy-not-down"
	StartFreshPoweroff StartCase = "fresh-user-poweroff"
	StartAfterMarkDown StartCase = "first-start-after-mark-down"
	StartNoSign        StartCase = "no-user-poweroff"
)

// StartVerdict is the guard's answer for one start.
type StartVerdict struct {
	Case   StartCase `json:"case"`
	Refuse bool      `json:"refuse"`
	// Why is one line for the log.
	Why string `json:"why"`
	// Message is what the operator reads in the job's error when the
	// start is refused: what happened and how to start it anyway.
	Message string `json:"message,omitempty"`
	// ClearMarkDown and ClearAllowance say which records the start used
	// up: the caller removes them.
	ClearMarkDown  bool `json:"clear_mark_down,omitempty"`
	ClearAllowance bool `json:"clear_allowance,omitempty"`
}

// GuardStart decides whether the instance-start pre hook lets a start of
// an instance through on its primary node. Pure. It refuses, when the
// start is not forced and no operator allowed it, for an instance of
// policy down:
//
//   - that Ganeti still has admin up, whose user powered it off and the
//     preserved domain still shows it (no intent says Ganeti or an
//     operator shut it down): Ganeti's watcher is restarting it before
//     ganeti-userdown marked it down;
//   - that ganeti-userdown marked down less than StartGuardWindow ago and
//     that has not been started since (the record is used up by this
//     refusal): the watcher's restart, decided before the mark-down.
//
// Every other start goes through: crash and watchdog restarts, a start
// long after a mark-down, a second start after a refused one, forced
// starts.
//
// Reference: design.md, "The start guard".
func GuardStart(in StartInput) StartVerdict {
	rq := in.Request
	name := rq.Instance
	md := in.MarkDown
	if md != nil && (md.Instance != name || !in.Now.Before(md.Submitted.Add(StartGuardWindow))) {
		md = nil // someone else's, or past its window
	}
	used := md != nil
	allow := in.Allowance
	if allow != nil && (allow.Instance != name || !in.Now.Before(allow.Expires)) {
		allow = nil
	}
	switch {
	case rq.Forced:
		return StartVerdict{Case: StartForced, Why: "forced start (GANETI_FORCE=True): an operator's, let through", ClearMarkDown: used, ClearAllowance: allow != nil}
	case allow != nil:
		return StartVerdict{Case: StartAllowed, Why: fmt.Sprintf("an operator allowed this start at %s (userdown-hook --allow-start)", stamp(allow.Created)), ClearMarkDown: used, ClearAllowance: true}
	}
	policy, note := PolicyFor(rq.Tags, in.DefaultPolicy)
	if policy != PolicyDown {
		return StartVerdict{Case: StartNotOurs, Why: "policy " + policy + note + ": ganeti-userdown does not keep this instance down", ClearMarkDown: used}
	}
	if d, ok := freshPoweroff(in.Domains, in.Intents, name, in.Now); ok && !adminDown(rq.AdminState) {
		return StartVerdict{
			Case: StartFreshPoweroff, Refuse: true,
			Why: fmt.Sprintf("domain %d of %s is powered off by its user (%s) and not yet marked down", d.ID, name, d.State.Letters),
			Message: fmt.Sprintf("ganeti-userdown: not starting %s: its user powered it off from inside the guest (domain %d, %s, on %s) and it is not marked down yet; this start looks like Ganeti's watcher undoing that poweroff. %s",
				name, d.ID, d.State.Letters, rq.Node, howToStart(rq, false)),
		}
	}
	if md != nil && !aliveDomain(in.Domains, name) {
		return StartVerdict{
			Case: StartAfterMarkDown, Refuse: true, ClearMarkDown: true,
			Why: fmt.Sprintf("first start of %s since ganeti-userdown marked it down at %s", name, stamp(md.Submitted)),
			Message: fmt.Sprintf("ganeti-userdown: not starting %s: its user powered it off from inside the guest and ganeti-userdown marked it down at %s; this start looks like Ganeti's watcher restarting it from a status read before that. %s",
				name, stamp(md.Submitted), howToStart(rq, true)),
		}
	}
	return StartVerdict{Case: StartNoSign, Why: "no user poweroff of " + name + " pending on this node", ClearMarkDown: used}
}

// howToStart is the end of a refusal message: the ways to start the
// instance anyway. again says whether simply repeating the start works
// (the refusal used up the mark-down record).
func howToStart(rq StartRequest, again bool) string {
	var b strings.Builder
	b.WriteString("To start it anyway: ")
	if again {
		b.WriteString("start it again (only the first start after a mark-down is refused), or ")
	}
	fmt.Fprintf(&b, "run `userdown-hook --allow-start %s` on %s and start it again, or `gnt-instance startup --force %s`", rq.Instance, rq.Node, rq.Instance)
	if rq.DiskTemplate == "drbd" {
		b.WriteString(" (with DRBD disks --force also ignores errors of the secondary node)")
	}
	b.WriteString(".")
	return b.String()
}

// freshPoweroff returns a domain named instance that its user powered off
// and no live intent covers (by instance name or domain uuid).
func freshPoweroff(domains []xen.Domain, intents []state.Intent, instance string, now time.Time) (xen.Domain, bool) {
	ix := newIntentIndex(intents, now)
	for _, d := range domains {
		if d.IsDom0() || d.Name != instance || !d.State.UserPoweredOff() {
			continue
		}
		if _, covered := ix.lookup(d); !covered {
			return d, true
		}
	}
	return xen.Domain{}, false
}

// adminDown reports a GANETI_INSTANCE_STATUS saying the instance is not
// admin up: someone already decided it stays down, so a start of it is an
// operator's, unless a mark-down record says otherwise.
func adminDown(status string) bool { return status == "down" || status == "offline" }

func aliveDomain(domains []xen.Domain, instance string) bool {
	for _, d := range domains {
		if !d.IsDom0() && d.Name == instance && d.State.Alive() {
			return true
		}
	}
	return false
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }
