package detect

import (
	"fmt"
	"strings"
	"time"

	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/xen"
)

// MarkDownInFlightFor bounds how long an in-flight mark-down record
// counts: one left by a watcher hook that died before its job ended must
// not refuse an operator's shutdowns for ever. The watcher hook's whole
// run is bounded by [cluster] run_timeout (under 300 s).
const MarkDownInFlightFor = 10 * time.Minute

// StopRefused starts the stop guard's refusal message; the watcher
// recognises its mark-down refused by it in the job's error.
const StopRefused = "ganeti-userdown: refused its own stale mark-down of "

// StopInput is everything the stop guard decides on.
type StopInput struct {
	// Instance is the instance being shut down; Node is this node, its
	// primary.
	Instance string
	Node     string
	// Domains is this node's toolstack list.
	Domains []xen.Domain
	// InFlight is the instance's in-flight mark-down record, nil when
	// none.
	InFlight *state.MarkDown
	Now      time.Time
}

// StopVerdict is the stop guard's answer for one shutdown.
type StopVerdict struct {
	Refuse bool `json:"refuse"`
	// Why is one line for the log.
	Why string `json:"why"`
	// Message is what the operator reads in the job's error when the
	// shutdown is refused.
	Message string `json:"message,omitempty"`
}

// GuardStop decides whether the instance-stop pre hook lets a shutdown
// of an instance through on its primary node. Pure. It refuses only while
// ganeti-userdown's own mark-down of the instance is in flight (a record
// younger than MarkDownInFlightFor) and the domain that mark-down was
// decided on no longer is what runs: a domain of the instance is alive,
// or has another domid or uuid. That shutdown is most likely our
// mark-down, queued behind a reboot that started the instance again.
// A domain that is gone, or still the same stopped domain, lets the
// shutdown through, as does everything else.
//
// Reference: design.md, "The stop guard".
func GuardStop(in StopInput) StopVerdict {
	name := in.Instance
	md := in.InFlight
	if md == nil || md.Instance != name {
		return StopVerdict{Why: "no mark-down of " + name + " by ganeti-userdown in flight"}
	}
	if !in.Now.Before(md.Submitted.Add(MarkDownInFlightFor)) {
		return StopVerdict{Why: fmt.Sprintf("the mark-down of %s recorded at %s is too old to be in flight", name, stamp(md.Submitted))}
	}
	for _, d := range in.Domains {
		if d.IsDom0() || d.Name != name {
			continue
		}
		changed := d.ID != md.DomID || md.UUID != "" && d.UUID != "" && !strings.EqualFold(d.UUID, md.UUID)
		if !changed && !d.State.Alive() {
			continue
		}
		return StopVerdict{
			Refuse: true,
			Why:    fmt.Sprintf("mark-down of %s in flight for powered-off domain %d, but domain %d (%s) is there now", name, md.DomID, d.ID, d.State.Letters),
			Message: fmt.Sprintf("%s%s: it was decided at %s on powered-off domain %d, but domain %d (%s) runs on %s now (the instance was started or rebooted since), so this shutdown was refused and the instance keeps running. Nothing to do; if you asked for this shutdown yourself, run it again.",
				StopRefused, name, stamp(md.Submitted), md.DomID, d.ID, d.State.Letters, in.Node),
		}
	}
	return StopVerdict{Why: fmt.Sprintf("mark-down of %s in flight and domain %d still the one it was decided on, or gone", name, md.DomID)}
}
