package detect

import (
	"fmt"
	"time"

	"ganeti-userdown/internal/ganeti"
	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/xen"
)

// StartCheck is what the start rule looks at once a domain decided
// Destroy has been destroyed: the instance as the cluster reports it right
// after the destruction, whether a job holds it, and the intents read
// right before.
type StartCheck struct {
	// Instance is the cluster's fresh view; Found is false when the
	// cluster no longer knows the instance (or it moved to another node).
	Instance ganeti.Instance
	Found    bool
	// Locked: a Ganeti job holds the instance now.
	Locked  bool
	Intents []state.Intent
	// Node is this node's Ganeti name.
	Node string
	// DefaultPolicy is [policy] default.
	DefaultPolicy string
	Now           time.Time
}

// StartAfterDestroy decides whether ganeti-userdown asks Ganeti to start
// the instance of d, whose crashed (or watchdog-stopped) domain it has
// just destroyed, instead of leaving that to the next watcher run: stock
// Xen (on_crash = 'restart') has a crashed guest back within seconds, and
// preserving the crash must not cost minutes of downtime. It returns
// whether to start and why (or why not), for the report. Pure.
//
// The instance is started only when Ganeti still wants it up: the
// decision was a guest failure (never a user's poweroff: that one is
// marked down, or under policy restart left to the watcher), and the
// fresh view says admin state up, primary node this one, policy not
// ignore, no job holding it, no live intent naming it or its domain.
//
// Reference: doc/design.md, "Event daemon", crash restarts.
func StartAfterDestroy(d Decision, c StartCheck) (bool, string) {
	switch {
	case d.Decision != Destroy:
		return false, fmt.Sprintf("decision %s, not destroy", d.Decision)
	case d.Reason != xen.ReasonCrash && d.Reason != xen.ReasonWatchdog:
		return false, "not a guest failure (crash or watchdog): Ganeti's watcher decides"
	case d.AdminState != ganeti.AdminUp:
		return false, fmt.Sprintf("instance was admin %s", d.AdminState)
	case !c.Found:
		return false, "the cluster no longer knows the instance on " + c.Node
	case c.Instance.PrimaryNode != c.Node:
		return false, fmt.Sprintf("instance now has primary node %s, not %s", c.Instance.PrimaryNode, c.Node)
	case c.Instance.AdminState != ganeti.AdminUp:
		return false, fmt.Sprintf("instance is now admin %s", c.Instance.AdminState)
	case c.Locked:
		return false, "a Ganeti job holds instance/" + d.Name
	}
	if p, _ := PolicyFor(c.Instance.Tags, c.DefaultPolicy); p == PolicyIgnore {
		return false, "policy ignore"
	}
	// Any live intent of the instance, whatever domains it was recorded
	// for: an operator's stop recorded after the destroy names no domain,
	// and must not be undone by this start.
	if it, ok := newIntentIndex(c.Intents, c.Now).about(xen.Domain{Name: d.Name, ID: d.DomID, UUID: d.UUID}); ok {
		return false, fmt.Sprintf("an intent covers it: %s asked through the %s", it.Op, it.Source)
	}
	what := "crashed"
	if d.Reason == xen.ReasonWatchdog {
		what = "stopped by its watchdog"
	}
	return true, what + " and destroyed; Ganeti wants it up: started again"
}

// StartReason is the reason text recorded in Ganeti's start job.
func StartReason(node string, d Decision) string {
	return fmt.Sprintf("ganeti-userdown: domain %d of %s crashed on %s (state %s) and was destroyed; starting it again",
		d.DomID, d.Name, node, d.State)
}
