package e2e

import (
	"strings"
	"testing"

	"ganeti-userdown/internal/xen"
)

// TestStartGuardBothOrders plays the multi-node race deterministically,
// in both orders, with the binaries, the hook and the fake Ganeti: the
// master's watcher read x as ERROR_down and its restart job (through
// the instance-start hooks, not forced) runs before or after this
// node's mark-down. Either way x ends ADMIN_down with no domain, and an
// operator's start afterwards works (at the second try within the window
// when the mark-down came last).
//
// Reference: design.md, "The start guard", rows 4, 5 and 6, and the
// first residual case.
func TestStartGuardBothOrders(t *testing.T) {
	for _, order := range []string{"restart first", "mark-down first"} {
		t.Run(order, func(t *testing.T) {
			const x = "x.example.com"
			n := newNode(t, xen.XL, []instance{{name: x, admin: "up"}}, "")
			hook := n.hookBinary()
			n.start(x)
			n.xl("sim", "poweroff", x)
			po := newPoweroffs([]string{x}, nil)
			if d, _ := n.domain(x); true {
				po.poweredOff(d)
			}
			markDown := func() {
				t.Helper()
				if out, errs, code := n.run(n.detect, "--mark-down"); code != 0 {
					t.Fatalf("userdown-detect --mark-down: exit %d: %s%s", code, out, errs)
				}
			}
			restart := func(wantRefusal string) {
				t.Helper()
				ok, refusal, err := n.watcherRestart(hook, x, po)
				if err != nil {
					t.Fatal(err)
				}
				if ok || !strings.Contains(refusal, wantRefusal) {
					t.Fatalf("watcher restart: started %v, refusal %q; want refused with %q", ok, refusal, wantRefusal)
				}
			}
			if order == "restart first" {
				restart("not marked down yet") // row 4
				if d, ok := n.domain(x); !ok || !d.State.UserPoweredOff() {
					t.Fatalf("the refused start did not keep the preserved domain: %+v %v", d, ok)
				}
				markDown()
			} else {
				markDown()
				restart("marked it down at") // row 5
			}
			if s := n.instanceState(x); s != "down" {
				t.Errorf("admin state %q, want down", s)
			}
			if d, ok := n.domain(x); ok {
				t.Errorf("domain left: %+v", d)
			}
			// The operator starts it. After the mark-down-first order the
			// refusal used up the record: the start goes through (row
			// 6). After the restart-first order the record is fresh:
			// the operator's first start is refused once (row 5, the
			// residual design.md names), the second goes through.
			po.answered(x)
			if order == "restart first" {
				restart("start it again (only the first start after a mark-down is refused)")
			}
			ok, refusal, err := n.watcherRestart(hook, x, po)
			if err != nil || !ok {
				t.Fatalf("operator's start: started %v, refusal %q, err %v", ok, refusal, err)
			}
			if d, ok := n.domain(x); !ok || !d.State.Alive() {
				t.Errorf("after the operator's start: %+v %v", d, ok)
			}
		})
	}
}
