package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

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

// TestStaleIntentDoesNotCoverANewDomain: a Ganeti stop of x fails after
// its pre hook recorded the intent (Ganeti then runs no post hook, so
// nothing clears it); an operator starts x again and its user powers the
// new domain off. That poweroff is the user's: detect marks x down
// rather than calling it host-initiated, and the watcher's restart
// before the mark-down is refused. Without the scope the live intent
// covered it for an hour, and the restart undid the user's poweroff.
//
// Reference: design.md, "State files": "An intent covers only the
// domains it was recorded for"; "The start guard", row 4.
func TestStaleIntentDoesNotCoverANewDomain(t *testing.T) {
	const x = "x.example.com"
	n := newNode(t, xen.XL, []instance{{name: x, admin: "up"}}, "")
	hook := n.hookBinary()
	n.start(x)
	first, _ := n.domain(x)
	env := instanceHookEnv("instance-stop", "pre", "OP_INSTANCE_SHUTDOWN", x, "GANETI_TIMEOUT=120")
	if out, code, err := n.runJobStep(20*time.Second, env, hook); err != nil || code != 0 {
		t.Fatalf("instance-stop pre hook: exit %d, %v: %s", code, err, out)
	} else if !strings.Contains(out, fmt.Sprintf("domids [%d]", first.ID)) {
		t.Fatalf("the stop intent is not scoped to domain %d: %s", first.ID, out)
	}
	// The job fails here (a timeout, say): no post hook. The domain is
	// destroyed by hand and the operator starts x again.
	n.xl("destroy", strconv.Itoa(first.ID))
	n.startAgain(x)
	n.xl("sim", "poweroff", x)
	second, _ := n.domain(x)
	if second.ID == first.ID || !second.State.UserPoweredOff() {
		t.Fatalf("second domain %+v", second)
	}
	checkUserPoweroffHeld(t, n, hook, second)
}

// TestIntentOfAFailedJobIsSpent: a Ganeti migration of x fails after its
// pre hook recorded the intent for x's domain, which runs on (no post hook
// clears it). Once no job holds x, a real run finds the intent spent and
// removes it; a later user poweroff of that same domain is then marked
// down, and the watcher's restart before the mark-down is refused.
//
// Reference: design.md, "State files": "an intent its job left behind is
// spent"; "The start guard", row 4.
func TestIntentOfAFailedJobIsSpent(t *testing.T) {
	const x = "x.example.com"
	n := newNode(t, xen.XL, []instance{{name: x, admin: "up"}}, "")
	hook := n.hookBinary()
	n.start(x)
	d, _ := n.domain(x)
	env := instanceHookEnv("instance-migrate", "pre", "OP_INSTANCE_MIGRATE", x,
		"GANETI_MIGRATE_LIVE=True", "GANETI_OLD_PRIMARY="+nodeName, "GANETI_NEW_PRIMARY=node2.example.com")
	if out, code, err := n.runJobStep(20*time.Second, env, hook); err != nil || code != 0 || !strings.Contains(out, "recorded a migrate intent") {
		t.Fatalf("instance-migrate pre hook: exit %d, %v: %s", code, err, out)
	}
	// The migration failed five minutes ago: its intent is that old.
	path := filepath.Join(n.stateDir, "intents", "instance@"+x+"@migrate.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var it map[string]any
	if err := json.Unmarshal(b, &it); err != nil {
		t.Fatal(err)
	}
	ago := time.Now().UTC().Add(-5 * time.Minute)
	it["created"], it["expires"] = ago.Format(time.RFC3339Nano), ago.Add(time.Hour).Format(time.RFC3339Nano)
	if b, err = json.Marshal(it); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errs, code := n.run(n.detect, "--mark-down"); code != 0 || !strings.Contains(errs, "spent intent removed") {
		t.Fatalf("userdown-detect --mark-down: exit %d, want the spent intent removed: %s%s", code, out, errs)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the spent intent is still there: %v", err)
	}
	n.xl("sim", "poweroff", strconv.Itoa(d.ID))
	off, _ := n.domain(x)
	checkUserPoweroffHeld(t, n, hook, off)
}

// checkUserPoweroffHeld checks that the user's poweroff of domain d is
// taken for the user's: detect decides mark-down, the watcher's restart
// before the mark-down is refused (the start guard, row 4), and the
// preserved domain stays.
func checkUserPoweroffHeld(t *testing.T, n *node, hook string, d xen.Domain) {
	t.Helper()
	if !d.State.UserPoweredOff() {
		t.Fatalf("domain %d of %s is %s, not powered off by its user", d.ID, d.Name, d.State.Letters)
	}
	if got := n.report()[d.Name]; got != "mark-down" {
		t.Errorf("decision for the user's poweroff of domain %d: %q, want mark-down", d.ID, got)
	}
	po := newPoweroffs([]string{d.Name}, nil)
	po.poweredOff(d)
	ok, refusal, err := n.watcherRestart(hook, d.Name, po)
	if err != nil {
		t.Fatal(err)
	}
	if ok || !strings.Contains(refusal, "not marked down yet") {
		t.Errorf("watcher restart: started %v, refusal %q; want refused (row 4)", ok, refusal)
	}
	if now, ok := n.domain(d.Name); !ok || now.ID != d.ID {
		t.Errorf("the user's powered-off domain %d is gone: %+v %v", d.ID, now, ok)
	}
}

// instanceHookEnv is the environment Ganeti gives the hooks of hooksPath
// (instance-stop, ...) in phase for an operation opCode on instance, an
// admin-up xen-pvm instance with this node as primary and master, plus
// extra.
func instanceHookEnv(hooksPath, phase, opCode, instance string, extra ...string) []string {
	return append([]string{
		"GANETI_HOOKS_PATH=" + hooksPath, "GANETI_HOOKS_PHASE=" + phase, "GANETI_HOOKS_VERSION=2",
		"GANETI_OP_CODE=" + opCode, "GANETI_OBJECT_TYPE=INSTANCE",
		"GANETI_INSTANCE_NAME=" + instance, "GANETI_INSTANCE_PRIMARY=" + nodeName, "GANETI_INSTANCE_SECONDARIES=",
		"GANETI_INSTANCE_HYPERVISOR=xen-pvm", "GANETI_INSTANCE_STATUS=up",
		"GANETI_CLUSTER=cluster.example.com", "GANETI_MASTER=" + nodeName,
	}, extra...)
}
