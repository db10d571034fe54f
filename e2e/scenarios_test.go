package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/xen"
	"ganeti-userdown/testdata/ganetifake"
)

// Reference: design.md, "Why each part exists" 3: "userdown-detect lists
// the user-shut-down instances of this node and marks them down through
// Ganeti". A user poweroff is marked down, its domain is gone (Ganeti's
// shutdown job destroyed it) and the watcher does not restart it.
func TestUserPoweroffIsMarkedDown(t *testing.T) { eachVersion(t, testUserPoweroffIsMarkedDown) }

func testUserPoweroffIsMarkedDown(t *testing.T, version string) {
	n := newNodeAt(t, version, xen.XL, []instance{{name: "web1.example.com", admin: "up"}, {name: "db1.example.com", admin: "up"}}, "")
	n.start("web1.example.com")
	n.start("db1.example.com")
	n.xl("sim", "poweroff", "web1.example.com")

	out, errs, code := n.run(n.detect)
	if code != 0 || out != "web1.example.com\n" {
		t.Fatalf("userdown-detect: exit %d, stdout %q, stderr %s", code, out, errs)
	}
	if restarted := n.watcher(); len(restarted) != 0 {
		t.Errorf("watcher restarted %v", restarted)
	}
	if s := n.instanceState("web1.example.com"); s != "down" {
		t.Errorf("web1 admin state %q, want down", s)
	}
	if s := n.instanceState("db1.example.com"); s != "up" {
		t.Errorf("db1 admin state %q, want up", s)
	}
	if d, ok := n.domain("web1.example.com"); ok {
		t.Errorf("web1's domain still there: %+v", d)
	}
	if d, ok := n.domain("db1.example.com"); !ok || !d.State.Alive() {
		t.Errorf("db1's domain: %+v, %v; want running", d, ok)
	}
	// A later run changes nothing.
	if restarted := n.watcher(); len(restarted) != 0 {
		t.Errorf("second watcher run restarted %v", restarted)
	}
}

// Reference: design.md, "Decisions": "a watchdog shutdown (sw) or a crash
// is the guest failing, not its user's will: destroy, so Ganeti restarts
// it."; and "Event daemon", crash restarts: the watcher hook's
// userdown-destroy starts it again itself, before the watcher's restart
// pass.
func TestCrashIsDestroyedAndRestarted(t *testing.T) { eachVersion(t, testCrashIsDestroyedAndRestarted) }

func testCrashIsDestroyedAndRestarted(t *testing.T, version string) {
	n := newNodeAt(t, version, xen.XL, []instance{{name: "db1.example.com", admin: "up"}}, "")
	n.start("db1.example.com")
	before, _ := n.domain("db1.example.com")
	n.xl("sim", "crash", "db1.example.com")
	if d, ok := n.domain("db1.example.com"); !ok || !d.State.Crashed() {
		t.Fatalf("after the crash: %+v, %v; want a preserved crashed domain", d, ok)
	}
	if restarted := n.watcher(); len(restarted) != 0 {
		t.Errorf("the watcher's restart pass restarted %v: the hook did not start the crashed instance", restarted)
	}
	var starts int
	for _, j := range n.rapi.State().Jobs {
		if j.OpID == "OP_INSTANCE_STARTUP" && j.Instance == "db1.example.com" && j.Status == "success" {
			starts++
		}
	}
	if starts != 1 {
		t.Errorf("%d start jobs of db1, want 1", starts)
	}
	if s := n.instanceState("db1.example.com"); s != "up" {
		t.Errorf("admin state %q, want up", s)
	}
	after, ok := n.domain("db1.example.com")
	if !ok || !after.State.Alive() || after.ID == before.ID {
		t.Errorf("after the watcher: %+v (was domid %d); want a new running domain", after, before.ID)
	}
}

// Reference: design.md, "Decisions": crashed domains are dumped first when
// [crash] dump_dir is set, keeping the newest keep per instance.
func TestCrashDumpedBeforeDestroy(t *testing.T) {
	dumps := t.TempDir()
	n := newNode(t, xen.XL, []instance{{name: "db1.example.com", admin: "up"}}, "[crash]\ndump_dir = \""+dumps+"\"\nkeep = 1\n")
	n.start("db1.example.com")
	n.xl("sim", "crash", "db1.example.com")
	n.watcher()
	n.xl("sim", "crash", "db1.example.com")
	n.watcher()
	var dumpCalls int
	for _, e := range n.calls() {
		if len(e.Argv) > 0 && e.Argv[0] == "dump-core" {
			dumpCalls++
		}
	}
	if dumpCalls != 2 {
		t.Errorf("%d dump-core calls, want 2", dumpCalls)
	}
	left := readDir(t, dumps)
	if len(left) != 1 || !strings.HasPrefix(left[0], "db1.example.com.") {
		t.Errorf("dump dir holds %v, want the newest dump of db1 only", left)
	}
}

// Reference: design.md, "Xen facts": "Suspend (ss) and reboot (sr) are
// transient states of migration and restart: never act on them." A
// reboot from inside the guest is left alone.
func TestRebootFromInsideIsUntouched(t *testing.T) {
	n := newNode(t, xen.XL, []instance{{name: "web1.example.com", admin: "up"}}, "")
	n.start("web1.example.com")
	n.xl("sim", "reboot", "web1.example.com")
	n.rapi.ResetRequests()
	if restarted := n.watcher(); len(restarted) != 0 {
		t.Errorf("watcher restarted %v", restarted)
	}
	if d, ok := n.domain("web1.example.com"); !ok || !d.State.Alive() {
		t.Errorf("web1: %+v, %v; want running", d, ok)
	}
	if s := n.instanceState("web1.example.com"); s != "up" {
		t.Errorf("admin state %q, want up", s)
	}
	if reqs := n.rapi.Requests(); len(reqs) != 0 {
		t.Errorf("requests to the master while every domain runs: %+v", reqs)
	}
}

// Reference: design.md, "Configuration": "instance tag userdown:<policy>
// overrides"; and "Decisions": "Policy ignore (tag userdown:ignore): wait".
func TestPolicyTags(t *testing.T) { eachVersion(t, testPolicyTags) }

func testPolicyTags(t *testing.T, version string) {
	n := newNodeAt(t, version, xen.XL, []instance{
		{name: "restart.example.com", admin: "up", tags: []string{"userdown:restart"}},
		{name: "ignore.example.com", admin: "up", tags: []string{"userdown:ignore"}},
	}, "")
	n.start("restart.example.com")
	n.start("ignore.example.com")
	n.xl("sim", "poweroff", "restart.example.com")
	n.xl("sim", "poweroff", "ignore.example.com")
	got := n.report()
	want := map[string]string{"Domain-0": "dom0", "restart.example.com": "destroy", "ignore.example.com": "wait"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("decisions (-want +got):\n%s", d)
	}
	restarted := n.watcher()
	if d := cmp.Diff([]string{"restart.example.com"}, restarted); d != "" {
		t.Errorf("restarted (-want +got):\n%s", d)
	}
	for _, name := range []string{"restart.example.com", "ignore.example.com"} {
		if s := n.instanceState(name); s != "up" {
			t.Errorf("%s admin state %q, want up", name, s)
		}
	}
	if d, ok := n.domain("ignore.example.com"); !ok || !d.State.UserPoweredOff() {
		t.Errorf("ignored domain: %+v, %v; want it left powered off", d, ok)
	}
}

// Reference: design.md, "Decisions", safety rule 3: "Never mark down an
// instance ... that a Ganeti job holds (instance locks)."
func TestLockedInstanceWaits(t *testing.T) { eachVersion(t, testLockedInstanceWaits) }

func testLockedInstanceWaits(t *testing.T, version string) {
	n := newNodeAt(t, version, xen.XL, []instance{{name: "web1.example.com", admin: "up"}}, "")
	n.start("web1.example.com")
	n.xl("sim", "poweroff", "web1.example.com")
	job, err := n.rapi.Engine.HoldLock("web1.example.com", "OP_INSTANCE_REBOOT")
	if err != nil {
		t.Fatal(err)
	}
	if got := n.report()["web1.example.com"]; got != "wait" {
		t.Errorf("decision while locked: %q, want wait", got)
	}
	out, errs, code := n.run(n.detect, "--mark-down")
	if code != 0 || out != "" {
		t.Fatalf("userdown-detect --mark-down while locked: exit %d, %q, %s", code, out, errs)
	}
	if s := n.instanceState("web1.example.com"); s != "up" {
		t.Errorf("marked down while locked: %q", s)
	}
	if _, ok := n.domain("web1.example.com"); !ok {
		t.Errorf("domain destroyed while locked")
	}
	if err := n.rapi.Engine.Finish(job, "success", nil); err != nil {
		t.Fatal(err)
	}
	if out, _, code := n.run(n.detect, "--mark-down"); code != 0 || out != "web1.example.com\n" {
		t.Errorf("after the lock: exit %d, %q", code, out)
	}
	if s := n.instanceState("web1.example.com"); s != "down" {
		t.Errorf("admin state after the lock %q, want down", s)
	}
}

// Reference: design.md, "Decisions": "not-ganeti (no Ganeti instance of
// this node has this name: never touched)".
func TestDomainNotInGanetiSurvives(t *testing.T) {
	n := newNode(t, xen.XL, []instance{
		{name: "web1.example.com", admin: "up"},
		{name: "elsewhere.example.com", admin: "down", pnode: "node2.example.com"},
	}, "")
	n.start("scratch")
	n.start("elsewhere.example.com")
	n.xl("sim", "poweroff", "scratch")
	n.xl("sim", "crash", "elsewhere.example.com")
	n.watcher()
	for _, name := range []string{"scratch", "elsewhere.example.com"} {
		if _, ok := n.domain(name); !ok {
			t.Errorf("%s was destroyed", name)
		}
	}
	for _, e := range n.calls() {
		if len(e.Argv) > 0 && e.Argv[0] == "destroy" {
			t.Errorf("destroy called: %v", e.Argv)
		}
	}
}

// Reference: design.md, "Decisions", safety rule 3: a shutdown Ganeti
// asked for, recorded as an intent by the instance-stop pre hook, is
// never marked down (host-initiated).
func TestHookIntentIsHostInitiated(t *testing.T) { eachVersion(t, testHookIntentIsHostInitiated) }

func testHookIntentIsHostInitiated(t *testing.T, version string) {
	n := newNodeAt(t, version, xen.XL, []instance{{name: "web1.example.com", admin: "up"}}, "")
	n.start("web1.example.com")
	st := state.Open(n.stateDir)
	now := time.Now()
	if err := st.RecordIntent(state.Intent{Instance: "web1.example.com", Op: "stop", Source: "hook", Created: now, Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	n.xl("shutdown", "web1.example.com")
	waitFor(t, func() bool { d, ok := n.domain("web1.example.com"); return ok && d.State.UserPoweredOff() })
	n.hostInitiatedKept("web1.example.com")
}

// Reference: design.md, "Decisions", safety rule 4: "When Xen or cluster
// state cannot be read or parsed, do nothing and say so."
func TestUnreadableStateExits3(t *testing.T) {
	n := newNode(t, xen.XL, []instance{{name: "web1.example.com", admin: "up"}}, "")
	n.start("web1.example.com")
	n.xl("sim", "poweroff", "web1.example.com")
	if err := n.rapi.Update(func(s *ganetifake.State) error { s.Knobs.Fail5xx = 1000; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{n.detect, "--mark-down"}, {n.destroy}} {
		out, errs, code := n.run(cmd[0], cmd[1:]...)
		if code != 3 || out != "" {
			t.Errorf("%v: exit %d, stdout %q, want 3 and nothing; stderr %s", cmd, code, out, errs)
		}
	}
	if err := n.rapi.Update(func(s *ganetifake.State) error { s.Knobs.Fail5xx = 0; return nil }); err != nil {
		t.Fatal(err)
	}
	if s := n.instanceState("web1.example.com"); s != "up" {
		t.Errorf("admin state %q, want up", s)
	}
	if _, ok := n.domain("web1.example.com"); !ok {
		t.Errorf("domain destroyed although the cluster could not be read")
	}
}
