package detect

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/xen"
)

// TestGuardStart walks the rows of the start guard table.
//
// Reference: design.md, "The start guard", rows 1 to 6.
func TestGuardStart(t *testing.T) {
	const x = "x.example.com"
	watcherRestart := StartRequest{Instance: x, Node: node, AdminState: "up", Tags: []string{"owner:bob"}, DiskTemplate: "diskless"}
	afterMarkDown := watcherRestart
	afterMarkDown.AdminState = "down" // our mark-down ran first
	forced := afterMarkDown
	forced.Forced = true
	restartTag := watcherRestart
	restartTag.Tags = []string{"userdown:restart"}
	ignoreTag := afterMarkDown
	ignoreTag.Tags = []string{"userdown:ignore"}
	noTags := watcherRestart
	noTags.Tags = nil
	drbd := watcherRestart
	drbd.DiskTemplate = "drbd"

	poweredOff := []xen.Domain{dom0(), domain(x, 7, stPoweroff)}
	crashed := []xen.Domain{dom0(), domain(x, 7, stCrash)}
	running := []xen.Domain{dom0(), domain(x, 9, stRunning)}
	gone := []xen.Domain{dom0()}
	fresh := &state.MarkDown{Instance: x, DomID: 7, Submitted: now.Add(-3 * time.Second)}
	old := &state.MarkDown{Instance: x, DomID: 7, Submitted: now.Add(-StartGuardWindow)}
	other := &state.MarkDown{Instance: "y.example.com", DomID: 8, Submitted: now.Add(-time.Second)}
	allowed := &state.StartAllowance{Instance: x, Created: now.Add(-time.Minute), Expires: now.Add(time.Minute)}
	expired := &state.StartAllowance{Instance: x, Created: now.Add(-time.Hour), Expires: now.Add(-time.Minute)}
	stopIntent := []state.Intent{{Instance: x, Op: "stop", Source: "hook", Created: now, Expires: now.Add(time.Hour)}}
	shimIntent := []state.Intent{{UUID: strings.ToUpper(uuidOf(x)), Op: "shutdown", Source: "shim", Created: now, Expires: now.Add(time.Hour)}}
	deadIntent := []state.Intent{{Instance: x, Op: "stop", Source: "hook", Created: now.Add(-2 * time.Hour), Expires: now.Add(-time.Hour)}}
	// A stop of domain 5 whose job never ran its post hook, and one
	// recorded when the instance had no domain here: domain 7 came later.
	staleStop := []state.Intent{{Instance: x, Listed: true, DomIDs: []int{5}, Op: "stop", Source: "hook", Created: now.Add(-time.Minute), Expires: now.Add(time.Hour)}}
	stopOfNone := []state.Intent{{Instance: x, Listed: true, Op: "stop", Source: "hook", Created: now.Add(-time.Minute), Expires: now.Add(time.Hour)}}
	stopOf7 := []state.Intent{{Instance: x, Listed: true, DomIDs: []int{7}, Op: "stop", Source: "hook", Created: now, Expires: now.Add(time.Hour)}}
	shimOf5 := []state.Intent{{UUID: uuidOf(x), DomID: 5, Op: "shutdown", Source: "shim", Created: now, Expires: now.Add(time.Hour)}}

	type want struct {
		Case                          StartCase
		Refuse                        bool
		ClearMarkDown, ClearAllowance bool
	}
	tests := []struct {
		name      string
		rq        StartRequest
		domains   []xen.Domain
		intents   []state.Intent
		markDown  *state.MarkDown
		allowance *state.StartAllowance
		want      want
	}{
		// Row 1.
		{"forced start after a mark-down", forced, gone, nil, fresh, nil, want{StartForced, false, true, false}},
		{"forced start of a fresh poweroff", func() StartRequest { r := watcherRestart; r.Forced = true; return r }(), poweredOff, nil, nil, allowed, want{StartForced, false, false, true}},
		// Row 2.
		{"allowed after a mark-down", afterMarkDown, gone, nil, fresh, allowed, want{StartAllowed, false, true, true}},
		{"allowed with a fresh poweroff", watcherRestart, poweredOff, nil, nil, allowed, want{StartAllowed, false, false, true}},
		{"expired allowance does not allow", watcherRestart, poweredOff, nil, nil, expired, want{StartFreshPoweroff, true, false, false}},
		// Row 3.
		{"policy restart: the watcher restarts it", restartTag, poweredOff, nil, nil, nil, want{StartNotOurs, false, false, false}},
		{"policy ignore", ignoreTag, gone, nil, fresh, nil, want{StartNotOurs, false, true, false}},
		// Row 4: the master's restart runs before our mark-down.
		{"watcher restart before the mark-down", watcherRestart, poweredOff, nil, nil, nil, want{StartFreshPoweroff, true, false, false}},
		{"no tags in the environment: default policy down", noTags, poweredOff, nil, nil, nil, want{StartFreshPoweroff, true, false, false}},
		{"fresh poweroff and a mark-down record: refused, record kept", watcherRestart, poweredOff, nil, fresh, nil, want{StartFreshPoweroff, true, false, false}},
		{"expired intent does not cover", watcherRestart, poweredOff, deadIntent, nil, nil, want{StartFreshPoweroff, true, false, false}},
		{"stop intent: Ganeti's shutdown, not the user's", watcherRestart, poweredOff, stopIntent, nil, nil, want{StartNoSign, false, false, false}},
		{"shim intent by uuid", watcherRestart, poweredOff, shimIntent, nil, nil, want{StartNoSign, false, false, false}},
		{"stop intent scoped to this domain", watcherRestart, poweredOff, stopOf7, nil, nil, want{StartNoSign, false, false, false}},
		{"stale stop intent of an older domain does not cover", watcherRestart, poweredOff, staleStop, nil, nil, want{StartFreshPoweroff, true, false, false}},
		{"stop intent recorded with no domain does not cover", watcherRestart, poweredOff, stopOfNone, nil, nil, want{StartFreshPoweroff, true, false, false}},
		{"shim intent of another domid with the same uuid does not cover", watcherRestart, poweredOff, shimOf5, nil, nil, want{StartFreshPoweroff, true, false, false}},
		{"admin down: an operator's start of a powered-off domain", afterMarkDown, poweredOff, nil, nil, nil, want{StartNoSign, false, false, false}},
		// Row 5: the restart queued behind our mark-down.
		{"watcher restart after the mark-down", afterMarkDown, gone, nil, fresh, nil, want{StartAfterMarkDown, true, true, false}},
		{"admin up, domain gone, fresh record", watcherRestart, gone, nil, fresh, nil, want{StartAfterMarkDown, true, true, false}},
		// Row 6.
		{"second start after a refusal (record used up)", afterMarkDown, gone, nil, nil, nil, want{StartNoSign, false, false, false}},
		{"start after the window", afterMarkDown, gone, nil, old, nil, want{StartNoSign, false, false, false}},
		{"another instance's record", afterMarkDown, gone, nil, other, nil, want{StartNoSign, false, false, false}},
		{"domain already running again", afterMarkDown, running, nil, fresh, nil, want{StartNoSign, false, true, false}},
		{"crash restart", watcherRestart, crashed, nil, nil, nil, want{StartNoSign, false, false, false}},
		{"node reboot: no domain, no record", watcherRestart, gone, nil, nil, nil, want{StartNoSign, false, false, false}},
		{"drbd: refused the same", drbd, poweredOff, nil, nil, nil, want{StartFreshPoweroff, true, false, false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := GuardStart(StartInput{Request: tc.rq, Domains: tc.domains, Intents: tc.intents, MarkDown: tc.markDown, Allowance: tc.allowance, DefaultPolicy: PolicyDown, Now: now})
			got := want{v.Case, v.Refuse, v.ClearMarkDown, v.ClearAllowance}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("verdict (-want +got):\n%s\nwhy: %s", d, v.Why)
			}
			if v.Refuse != (v.Message != "") {
				t.Errorf("refuse %v with message %q", v.Refuse, v.Message)
			}
			if v.Why == "" {
				t.Error("no why")
			}
		})
	}
}

// TestGuardStartMessage: a refusal says in one line what happened and
// every way to start the instance anyway, naming the node the allowance
// must be given on, and warns about --force for DRBD disks only.
//
// Reference: design.md, "The start guard": "make the refusal message
// something an operator understands at a glance".
func TestGuardStartMessage(t *testing.T) {
	const x = "x.example.com"
	rq := StartRequest{Instance: x, Node: "node2.example.com", AdminState: "down", DiskTemplate: "plain"}
	md := &state.MarkDown{Instance: x, Submitted: time.Date(2026, 12, 2, 1, 2, 3, 0, time.UTC)}
	v := GuardStart(StartInput{Request: rq, MarkDown: md, DefaultPolicy: PolicyDown, Now: md.Submitted.Add(time.Second)})
	want := "ganeti-userdown: not starting x.example.com: its user powered it off from inside the guest and ganeti-userdown marked it down at 2026-12-02 01:02:03 UTC; this start looks like Ganeti's watcher restarting it from a status read before that. To start it anyway: start it again (only the first start after a mark-down is refused), or run `userdown-hook --allow-start x.example.com` on node2.example.com and start it again, or `gnt-instance startup --force x.example.com`."
	if d := cmp.Diff(want, v.Message); d != "" {
		t.Errorf("message (-want +got):\n%s", d)
	}

	rq.AdminState, rq.DiskTemplate = "up", "drbd"
	v = GuardStart(StartInput{Request: rq, Domains: []xen.Domain{domain(x, 7, stPoweroff)}, DefaultPolicy: PolicyDown, Now: now})
	for _, part := range []string{"not starting x.example.com", "domain 7, ---s--, on node2.example.com", "not marked down yet", "--allow-start x.example.com` on node2.example.com", "--force also ignores errors of the secondary node"} {
		if !strings.Contains(v.Message, part) {
			t.Errorf("message lacks %q:\n%s", part, v.Message)
		}
	}
	if strings.Contains(v.Message, "start it again (only") {
		t.Errorf("a refusal that is not used up must not say repeating works:\n%s", v.Message)
	}
	if strings.ContainsRune(v.Message, '\n') {
		t.Errorf("message spans lines:\n%s", v.Message)
	}
}
