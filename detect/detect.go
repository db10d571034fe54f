// Package detect is ganeti-userdown's decision core: given this node's Xen
// domains, the cluster's view of its instances, the instance locks, the
// recorded intents and shutdown observations, it decides for every domain
// exactly one of running, mark-down, destroy, wait, host-initiated,
// not-ganeti or dom0, with a one-line reason an operator can read.
//
// Everything here is pure: no I/O, no clock of its own.
package detect

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"ganeti-userdown/internal/dnsname"
	"ganeti-userdown/internal/ganeti"
	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/xen"
)

// Kind is the decision taken for one domain.
type Kind string

// The decisions of the design's "Decisions" section.
const (
	// Running: the domain runs (or is in a reboot that Xen completes).
	Running Kind = "running"
	// MarkDown: the instance's user powered it off; mark it down in Ganeti.
	MarkDown Kind = "mark-down"
	// Destroy: the preserved domain may be destroyed now.
	Destroy Kind = "destroy"
	// Wait: nothing to do yet (settle period, a Ganeti job holds the
	// instance, an operation in flight, policy ignore).
	Wait Kind = "wait"
	// HostInitiated: Ganeti or an operator asked for this shutdown.
	HostInitiated Kind = "host-initiated"
	// NotGaneti: no Ganeti instance of this node has this name; never
	// touched.
	NotGaneti Kind = "not-ganeti"
	// Dom0: the control domain.
	Dom0 Kind = "dom0"
)

// Policies for a user shutdown, from [policy] default or the instance tag
// userdown:<policy>.
const (
	PolicyDown    = "down"
	PolicyRestart = "restart"
	PolicyIgnore  = "ignore"
)

// TagPrefix starts the instance tags that override the policy.
const TagPrefix = "userdown:"

// Decision is what to do with one domain, as `userdown-detect --json`
// reports it.
type Decision struct {
	Name       string            `json:"name"`
	DomID      int               `json:"domid"`
	UUID       string            `json:"uuid,omitempty"`
	State      string            `json:"state"`
	Reason     xen.Reason        `json:"reason"`
	AdminState ganeti.AdminState `json:"admin_state,omitempty"`
	Policy     string            `json:"policy,omitempty"`
	Decision   Kind              `json:"decision"`
	Why        string            `json:"why"`
	// UserSource: mark down with admin_state_source "user" (the cluster's
	// own user-shutdown handling is on, so it reports USER_down).
	UserSource bool `json:"user_source,omitempty"`
	// DumpCore: dump the crashed domain's core before destroying it.
	DumpCore bool `json:"dump_core,omitempty"`
}

// Domain returns the identity of the decided domain, as destroy.Safely
// wants it.
func (d Decision) Domain() xen.Domain {
	return xen.Domain{Name: d.Name, ID: d.DomID, UUID: d.UUID}
}

// Input is everything a decision depends on.
type Input struct {
	// Node is this node's Ganeti name.
	Node string
	// Flavour is the toolstack the domains were listed with.
	Flavour xen.Flavour
	// Domains is the toolstack's list, dom0 included.
	Domains []xen.Domain
	// Queried tells whether the cluster was asked: when false (every
	// domain was alive, see NeedsCluster) Instances is ignored.
	Queried bool
	// Instances are the cluster's instances (config-only view).
	Instances []ganeti.Instance
	// Locked names the instances a Ganeti job holds.
	Locked map[string]bool
	// Intents are the recorded intents (expired ones are ignored here too).
	Intents []state.Intent
	// UnreadableIntents name the intent files that could not be read
	// (state.Unreadable): the instance or domain each names is left
	// alone, neither marked down nor destroyed.
	UnreadableIntents []state.IntentKey
	// Observations say since when each shut-down domain has been seen so.
	Observations state.Observations
	// DefaultPolicy is [policy] default.
	DefaultPolicy string
	// Settle is [policy] settle: a poweroff seen for less than that is
	// not acted on yet (crashes are not delayed).
	Settle time.Duration
	// UserShutdown: the cluster's own user-shutdown handling is on
	// (ssconf_enabled_user_shutdown).
	UserShutdown bool
	// DumpCrashes: [crash] dump_dir is set.
	DumpCrashes bool
	// Now is the time of the run.
	Now time.Time
}

// NeedsCluster reports whether any domain other than dom0 is neither
// alive nor in flight (design.md, "Domain state classification"): only
// then does a decision need the cluster's view. Running domains and
// operations in flight (suspend, reboot, soft reset) need no request to
// the master.
func NeedsCluster(domains []xen.Domain) bool {
	for _, d := range domains {
		if d.IsDom0() {
			continue
		}
		switch d.State.Class() {
		case xen.ClassAlive, xen.ClassInFlight:
		default:
			return true
		}
	}
	return false
}

// Decide returns exactly one decision per domain, in the order of
// in.Domains.
func Decide(in Input) []Decision {
	inst := make(map[string]*ganeti.Instance, len(in.Instances))
	if in.Queried {
		for i := range in.Instances {
			x := &in.Instances[i]
			if dnsname.Equal(x.PrimaryNode, in.Node) {
				inst[x.Name] = x
			}
		}
	}
	intents := newIntentIndex(in.Intents, in.Now)
	live := liveNames(in.Domains)
	out := make([]Decision, 0, len(in.Domains))
	for _, d := range in.Domains {
		out = append(out, decideOne(&in, d, inst, intents, live))
	}
	return out
}

// liveNames maps each name to the domains of that name that are alive or
// in flight (dom0 aside): libxl forbids two domains of one name, so a
// second domain of a live name is an anomaly.
func liveNames(domains []xen.Domain) map[string][]xen.Domain {
	m := map[string][]xen.Domain{}
	for _, d := range domains {
		if d.IsDom0() {
			continue
		}
		switch d.State.Class() {
		case xen.ClassAlive, xen.ClassInFlight:
			m[d.Name] = append(m[d.Name], d)
		}
	}
	return m
}

// sameName returns, for the note of the anomaly, the other domains listed
// under d's name that are alive or in flight.
func sameName(live map[string][]xen.Domain, d xen.Domain) []string {
	var others []string
	for _, o := range live[d.Name] {
		if o.ID != d.ID {
			others = append(others, fmt.Sprintf("domain %d (%s)", o.ID, o.State.Letters))
		}
	}
	return others
}

func decideOne(in *Input, d xen.Domain, inst map[string]*ganeti.Instance, intents intentIndex, live map[string][]xen.Domain) Decision {
	dec := Decision{Name: d.Name, DomID: d.ID, UUID: d.UUID, State: d.State.Letters, Reason: d.State.Reason}
	set := func(k Kind, why string) Decision {
		dec.Decision, dec.Why = k, why
		return dec
	}
	st := d.State
	class := st.Class()
	if d.IsDom0() {
		return set(Dom0, "the control domain")
	}
	if !in.Queried {
		switch class {
		case xen.ClassAlive:
			return set(Running, aliveWhy(st))
		case xen.ClassInFlight:
			return set(inFlight(st))
		}
		return set(Wait, "shut down, but the cluster was not queried")
	}
	x, ok := inst[d.Name]
	if !ok {
		return set(NotGaneti, fmt.Sprintf("no Ganeti instance with primary node %s is named %s", in.Node, d.Name))
	}
	dec.AdminState = x.AdminState
	policy, note := PolicyFor(x.Tags, in.DefaultPolicy)
	dec.Policy = policy
	// libxl forbids two domains of one name. If a listing ever shows
	// one, the instance counts as running while any of its domains is
	// alive or in flight: nothing of it is marked down or destroyed.
	if others := sameName(live, d); len(others) > 0 {
		anomaly := fmt.Sprintf("the name %s is listed more than once (also %s), which libxl forbids", d.Name, strings.Join(others, ", "))
		if class == xen.ClassAlive {
			return set(Running, aliveWhy(st)+"; "+anomaly)
		}
		return set(Wait, anomaly+": the instance counts as running, nothing done")
	}
	switch class {
	case xen.ClassAlive:
		return set(Running, aliveWhy(st))
	case xen.ClassDying:
		return set(Wait, "dying: Xen is already destroying it")
	case xen.ClassInFlight:
		return set(inFlight(st))
	case xen.ClassUnknown:
		return set(Wait, fmt.Sprintf("shut down for a reason Xen does not name (%s): left alone", st.Letters))
	case xen.ClassStopped:
	default:
		return set(Wait, fmt.Sprintf("state %s (class %s) not understood: left alone", st.Letters, class))
	}
	// The domain stopped for good: powered off, crashed or watchdog.
	if in.Locked[x.Name] {
		return set(Wait, "a Ganeti job holds instance/"+x.Name)
	}
	// An unreadable intent may be Ganeti's own shutdown, which must not
	// be marked down; yet only a readable one may allow a destroy. So
	// neither. Reference: doc/design.md, "State files".
	for _, k := range in.UnreadableIntents {
		switch {
		case k.Instance != "" && k.Instance == x.Name:
			return set(Wait, fmt.Sprintf("a %s intent file for it cannot be read: left alone until it is fixed or intent_ttl passes", k.Op))
		case k.UUID != "" && d.UUID != "" && strings.EqualFold(k.UUID, d.UUID):
			return set(Wait, fmt.Sprintf("a %s intent file for its uuid cannot be read: left alone until it is fixed or intent_ttl passes", k.Op))
		}
	}
	if it, ok := intents.lookup(d); ok {
		if it.Instance != "" {
			return set(HostInitiated, fmt.Sprintf("%s asked by Ganeti (%s intent, expires %s)", it.Op, it.Source, it.Expires.UTC().Format(time.RFC3339)))
		}
		return set(HostInitiated, fmt.Sprintf("%s asked through the toolstack (%s intent, expires %s)", it.Op, it.Source, it.Expires.UTC().Format(time.RFC3339)))
	}
	if policy == PolicyIgnore {
		return set(Wait, "policy ignore"+note)
	}
	// Settle applies to poweroffs: with xm one looks exactly like a
	// reboot in flight. A crash is unambiguous and is not delayed.
	if in.Settle > 0 && st.Reason == xen.ReasonPoweroff {
		since, seen := in.Observations.Since(d)
		if !seen {
			return set(Wait, fmt.Sprintf("shutdown first seen now; acting after settle %s", in.Settle))
		}
		if age := in.Now.Sub(since); age < in.Settle {
			return set(Wait, fmt.Sprintf("shut down for %s, less than settle %s", age.Round(time.Second), in.Settle))
		}
	}
	if x.AdminState != ganeti.AdminUp {
		return set(Destroy, fmt.Sprintf("instance is admin %s: the preserved domain may go", x.AdminState))
	}
	if st.GuestFailed() {
		if st.Reason == xen.ReasonCrash {
			dec.DumpCore = in.DumpCrashes
			return set(Destroy, "crashed: destroyed so that Ganeti restarts it")
		}
		return set(Destroy, "stopped by its watchdog: destroyed so that Ganeti restarts it")
	}
	// A user shutdown of an instance Ganeti wants up.
	if policy == PolicyRestart {
		return set(Destroy, "powered off by its user, policy restart"+note+": the watcher restarts it")
	}
	dec.UserSource = in.UserShutdown
	return set(MarkDown, "powered off by its user, policy down"+note)
}

func aliveWhy(st xen.State) string {
	if st.Paused {
		return "paused"
	}
	return "running"
}

// inFlight decides a domain of class in-flight: a reboot is Xen starting
// it again (running); a suspend (save, migration) and a soft reset wait.
func inFlight(st xen.State) (Kind, string) {
	switch st.Reason {
	case xen.ReasonReboot:
		return Running, "reboot in flight: Xen starts it again"
	case xen.ReasonSuspend:
		return Wait, "suspended: a save or migration in flight"
	}
	return Wait, "soft reset in flight"
}

// PolicyFor returns the policy an instance's tags give, def when no tag
// userdown:down|restart|ignore is present. Conflicting tags resolve to the
// most careful one (ignore, then down, then restart); note then says so,
// and it names unknown userdown: tags. note is "" or starts with " (".
func PolicyFor(tags []string, def string) (policy, note string) {
	var found []string
	var unknown []string
	for _, t := range tags {
		p, ok := strings.CutPrefix(t, TagPrefix)
		if !ok {
			continue
		}
		switch p {
		case PolicyDown, PolicyRestart, PolicyIgnore:
			found = append(found, p)
		default:
			unknown = append(unknown, t)
		}
	}
	policy = def
	var notes []string
	if len(found) > 0 {
		for _, p := range []string{PolicyIgnore, PolicyDown, PolicyRestart} {
			if contains(found, p) {
				policy = p
				break
			}
		}
		notes = append(notes, "tag "+TagPrefix+policy)
		if distinct(found) > 1 {
			notes = append(notes, "conflicting tags, the most careful wins")
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		notes = append(notes, "unknown tag "+strings.Join(unknown, ", "))
	}
	if len(notes) > 0 {
		note = " (" + strings.Join(notes, "; ") + ")"
	}
	return policy, note
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func distinct(ss []string) int {
	m := map[string]bool{}
	for _, s := range ss {
		m[s] = true
	}
	return len(m)
}

// ToMarkDown returns the names of the instances to mark down, sorted.
func ToMarkDown(ds []Decision) []string {
	var names []string
	for _, d := range ds {
		if d.Decision == MarkDown {
			names = append(names, d.Name)
		}
	}
	sort.Strings(names)
	return names
}

// LockCandidates returns the instances whose decision would act
// (mark-down or destroy), sorted: the only ones worth asking Ganeti about
// locks.
func LockCandidates(ds []Decision) []string {
	var names []string
	for _, d := range ds {
		if d.Decision == MarkDown || d.Decision == Destroy {
			names = append(names, d.Name)
		}
	}
	sort.Strings(names)
	return names
}
