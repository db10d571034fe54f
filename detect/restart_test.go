package detect

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/ganeti"
	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/xen"
)

// Reference: doc/design.md, "Event daemon": after destroying a crashed
// domain of an instance Ganeti still wants up (policy not ignore, no
// intent, not locked, admin state up), ganeti-userdown starts it.
func TestStartAfterDestroy(t *testing.T) {
	// The decisions come from Decide itself, so the rule is tested on what
	// the pipeline really hands it.
	decide := func(d xen.Domain, in ganeti.Instance) Decision {
		return Decide(base([]xen.Domain{d}, in))[0]
	}
	crash := decide(domain("db1", 3, stCrash), instance("db1", ganeti.AdminUp))
	watchdog := decide(domain("db1", 3, stWatchdog), instance("db1", ganeti.AdminUp))
	restartPolicy := decide(domain("web1", 4, stPoweroff), instance("web1", ganeti.AdminUp, "userdown:restart"))
	downCrash := decide(domain("db1", 3, stCrash), instance("db1", ganeti.AdminDown))
	markDown := decide(domain("web1", 4, stPoweroff), instance("web1", ganeti.AdminUp))
	for _, d := range []Decision{crash, watchdog, restartPolicy, downCrash} {
		if d.Decision != Destroy {
			t.Fatalf("setup: %s (%s) decided %s, want destroy", d.Name, d.State, d.Decision)
		}
	}
	fresh := func(in ganeti.Instance) StartCheck {
		return StartCheck{Instance: in, Found: true, Node: node, DefaultPolicy: PolicyDown, Now: now}
	}
	intent := func(it state.Intent) StartCheck {
		c := fresh(instance("db1", ganeti.AdminUp))
		it.Expires = now.Add(time.Hour)
		c.Intents = []state.Intent{it}
		return c
	}
	for _, tc := range []struct {
		name string
		d    Decision
		c    StartCheck
		want bool
		why  string
	}{
		{"crash of an admin-up instance", crash, fresh(instance("db1", ganeti.AdminUp)), true, "crashed and destroyed"},
		{"watchdog", watchdog, fresh(instance("db1", ganeti.AdminUp)), true, "watchdog"},
		{"user poweroff under policy restart: the watcher's", restartPolicy, fresh(instance("web1", ganeti.AdminUp, "userdown:restart")), false, "not a guest failure"},
		{"crash of an admin-down instance", downCrash, fresh(instance("db1", ganeti.AdminDown)), false, "was admin down"},
		{"not a destroy", markDown, fresh(instance("web1", ganeti.AdminUp)), false, "not destroy"},
		{"marked down since", crash, fresh(instance("db1", ganeti.AdminDown)), false, "now admin down"},
		{"offline since", crash, fresh(instance("db1", ganeti.AdminOffline)), false, "now admin offline"},
		{"gone from the cluster", crash, StartCheck{Node: node, Now: now}, false, "no longer knows"},
		{"moved to another node", crash, fresh(ganeti.Instance{Name: "db1", PrimaryNode: "node2", AdminState: ganeti.AdminUp}), false, "primary node node2"},
		{"locked by a job", crash, func() StartCheck { c := fresh(instance("db1", ganeti.AdminUp)); c.Locked = true; return c }(), false, "holds instance/db1"},
		{"tagged ignore since", crash, fresh(instance("db1", ganeti.AdminUp, "userdown:ignore")), false, "policy ignore"},
		{"default policy ignore", crash, func() StartCheck {
			c := fresh(instance("db1", ganeti.AdminUp))
			c.DefaultPolicy = PolicyIgnore
			return c
		}(), false, "policy ignore"},
		{"intent by name", crash, intent(state.Intent{Instance: "db1", Op: "stop", Source: "hook"}), false, "intent"},
		{"intent by uuid", crash, intent(state.Intent{UUID: strings.ToUpper(uuidOf("db1")), Op: "shutdown", Source: "shim"}), false, "intent"},
		// An operator's stop whose pre hook ran after the destroy names
		// no domain; it still means someone is stopping the instance.
		{"stop recorded after the destroy", crash, intent(state.Intent{Instance: "db1", Listed: true, Op: "stop", Source: "hook"}), false, "intent"},
		{"expired intent", crash, func() StartCheck {
			c := intent(state.Intent{Instance: "db1", Op: "stop", Source: "hook"})
			c.Intents[0].Expires = now.Add(-time.Second)
			return c
		}(), true, "crashed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := StartAfterDestroy(tc.d, tc.c)
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("start (-want +got):\n%s (why %q)", d, why)
			}
			if !strings.Contains(why, tc.why) {
				t.Errorf("why %q does not say %q", why, tc.why)
			}
		})
	}
}

func TestStartReasonNamesUs(t *testing.T) {
	r := StartReason(node, Decision{Name: "db1", DomID: 3, State: "---sc-"})
	for _, w := range []string{"ganeti-userdown", "db1", "3", node, "---sc-"} {
		if !strings.Contains(r, w) {
			t.Errorf("reason %q lacks %q", r, w)
		}
	}
}
