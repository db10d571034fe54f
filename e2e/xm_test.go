package e2e

import (
	"testing"
	"time"

	"ganeti-userdown/internal/xen"
)

// Reference: design.md, "Xen facts": "with xm, ---s-- is shut down
// (poweroff or a reboot in progress: hence settle) and ----c- crashed".
// On xm a powered-off domain is marked down only once it has been seen
// shut down for settle; a crash is destroyed (and started again) at once.
func TestXMSettleThenMarkDown(t *testing.T) {
	n := newNode(t, xen.XM, []instance{{name: "web1.example.com", admin: "up"}, {name: "db1.example.com", admin: "up"}},
		"[policy]\nsettle = \"1s\"\n")
	n.start("web1.example.com")
	n.start("db1.example.com")
	n.xl("sim", "poweroff", "web1.example.com")
	n.xl("sim", "crash", "db1.example.com")
	got := n.report()
	if got["web1.example.com"] != "wait" || got["db1.example.com"] != "destroy" {
		t.Fatalf("first run: %v; want web1 wait (settle), db1 destroy", got)
	}
	// The crash is destroyed and started again by the hook itself.
	if restarted := n.watcher(); len(restarted) != 0 {
		t.Errorf("first watcher run's restart pass restarted %v, want none", restarted)
	}
	if d, ok := n.domain("db1.example.com"); !ok || !d.State.Alive() {
		t.Errorf("db1 after the first watcher run: %+v, %v; want running again", d, ok)
	}
	if s := n.instanceState("web1.example.com"); s != "up" {
		t.Errorf("web1 marked %q before settle", s)
	}
	time.Sleep(1100 * time.Millisecond)
	if got := n.report()["web1.example.com"]; got != "mark-down" {
		t.Errorf("after settle: %q, want mark-down", got)
	}
	n.watcher()
	if s := n.instanceState("web1.example.com"); s != "down" {
		t.Errorf("after settle web1 is %q, want down", s)
	}
	if _, ok := n.domain("web1.example.com"); ok {
		t.Errorf("web1's domain still there")
	}
}
