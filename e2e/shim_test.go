package e2e

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ganeti-userdown/internal/testbin"
	"ganeti-userdown/internal/xen"
)

// installShim puts the shim in the toolstack's place, as the package does
// with dpkg-divert: a directory holding `xl` (userdown-hvconfig under the
// toolstack's name) and userdown-destroy beside it, where the shim looks
// for its reaper. [xen] command keeps naming the simulator. It returns the
// shim's path.
func (n *node) installShim() string {
	n.t.Helper()
	bin := filepath.Join(n.dir, "sbin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		n.t.Fatal(err)
	}
	shim := filepath.Join(bin, string(n.flavour))
	copyFile(n.t, testbin.Build(n.t, "ganeti-userdown/cmd/userdown-hvconfig"), shim)
	copyFile(n.t, n.destroy, filepath.Join(bin, "userdown-destroy"))
	return shim
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// ganetiStop stops a domain the way Ganeti's node daemon does through
// the toolstack at path: with wait, `xl shutdown -w` (Ganeti 2.9.2 and
// later: lib/hypervisor/hv_xen.py _ShutdownInstance); without, `xl
// shutdown` and then a poll of `xl list` until the domain is gone or
// timeout passes (Ganeti 2.9.0 and 2.9.1). Then, if the
// domain is still there, `xl destroy`. It returns how long the stop took
// and whether the domain went away before the destroy.
func (n *node) ganetiStop(toolstack, name string, wait bool, timeout time.Duration) (time.Duration, bool) {
	n.t.Helper()
	start := time.Now()
	args := []string{"shutdown", name}
	if wait {
		args = []string{"shutdown", "-w", name}
	}
	if _, errs, code := n.run(toolstack, args...); code != 0 {
		n.t.Fatalf("%s %v: exit %d: %s", toolstack, args, code, errs)
	}
	gone := func() bool {
		_, _, code := n.run(toolstack, "list", name)
		return code != 0
	}
	if !wait {
		deadline := start.Add(timeout)
		for !gone() && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if gone() {
		return time.Since(start), true
	}
	n.run(toolstack, "destroy", name)
	return time.Since(start), false
}

// Reference: design.md, "Shim": "On shutdown it records a host-initiated
// intent for the domain (by uuid); when the caller does not wait (-w
// absent, as Ganeti 2.9.0 and 2.9.1 do) it starts a detached reaper that
// destroys the domain once it is preserved, so Ganeti's shutdown finishes
// in seconds, not after its timeout."
func TestGanetiStopThroughShimIsReaped(t *testing.T) {
	n := newNode(t, xen.XL, []instance{{name: "web1.example.com", admin: "up"}}, "")
	shim := n.installShim()
	n.start("web1.example.com")
	n.xl("sim", "set", "web1.example.com", "shutdown-delay=300ms")
	took, gone := n.ganetiStop(shim, "web1.example.com", false, 20*time.Second)
	if !gone {
		t.Fatalf("the domain was still there after %s: the reaper did not destroy it", took)
	}
	if took > 5*time.Second {
		t.Errorf("the stop took %s, want seconds", took)
	}
	t.Logf("Ganeti 2.10-style stop through the shim: %s", took)
	var reaped bool
	for _, e := range n.calls() {
		if e.Destroyed != nil {
			if e.Destroyed.Name != "web1.example.com" || !strings.HasPrefix(e.Destroyed.State, "---s") {
				t.Errorf("destroyed %+v, want web1 shut down", *e.Destroyed)
			}
			reaped = true
		}
	}
	if !reaped {
		t.Errorf("no destroy in the simulator's log")
	}
}

// Reference: design.md, "Decisions", safety rule 3: "Never mark down an
// instance whose shutdown Ganeti or an operator asked for (intents from
// the shim and the hooks)". A `shutdown -w` through the shim records the
// intent by uuid; detect then says host-initiated and the watcher does not
// mark the instance down.
func TestShutdownThroughShimIsHostInitiated(t *testing.T) {
	eachVersion(t, testShutdownThroughShimIsHostInitiated)
}

func testShutdownThroughShimIsHostInitiated(t *testing.T, version string) {
	n := newNodeAt(t, version, xen.XL, []instance{{name: "web1.example.com", admin: "up"}, {name: "db1.example.com", admin: "up"}}, "")
	shim := n.installShim()
	n.start("web1.example.com")
	n.start("db1.example.com")
	if _, errs, code := n.run(shim, "shutdown", "-w", "web1.example.com"); code != 0 {
		t.Fatalf("shim shutdown -w: exit %d: %s", code, errs)
	}
	d, ok := n.domain("web1.example.com")
	if !ok || !d.State.UserPoweredOff() {
		t.Fatalf("after shutdown -w: %+v, %v; want a preserved shut-down domain", d, ok)
	}
	n.hostInitiatedKept("web1.example.com")
	// -a covers every domain.
	if _, errs, code := n.run(shim, "shutdown", "-a", "-w"); code != 0 {
		t.Fatalf("shim shutdown -a -w: exit %d: %s", code, errs)
	}
	if got := n.report()["db1.example.com"]; got != "host-initiated" {
		t.Errorf("after shutdown -a: db1 decision %q, want host-initiated", got)
	}
}
