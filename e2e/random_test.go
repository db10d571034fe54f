package e2e

import (
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"ganeti-userdown/internal/xen"
	"ganeti-userdown/testdata/ganetifake"
)

// TestRandomized interleaves guest actions (poweroff, reboot, crash,
// watchdog), shutdowns through the shim (waiting or not, single or -a),
// Ganeti's own stops and starts, and detect/destroy/watcher runs, for
// thousands of steps within a time bound, and checks the safety rules
// throughout:
//
// Reference: design.md, "Decisions", safety rule 1: "Never destroy a
// domain that is not shut down or crashed." Checked on every destroy in
// the simulator's call log, with the domain's state at that moment.
//
// Reference: design.md, "Decisions", safety rule 3: "Never mark down an
// instance whose shutdown Ganeti or an operator asked for". Checked on
// every mark-down job ganeti-userdown submitted: the instance's domain
// must have been powered off by its guest, not by a shutdown through the
// toolstack, a crash or a watchdog.
//
// The seed is logged; E2E_SEED=N replays a run, E2E_RANDOM_FOR=30s runs
// longer.
func TestRandomized(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("E2E_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("E2E_SEED: %v", err)
		}
		seed = v
	}
	budget := 20 * time.Second
	if s := os.Getenv("E2E_RANDOM_FOR"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("E2E_RANDOM_FOR: %v", err)
		}
		budget = d
	}
	t.Logf("seed %d (E2E_SEED=%d replays it), budget %s", seed, seed, budget)
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))

	names := []string{"a.example.com", "b.example.com", "c.example.com", "d.example.com", "e.example.com"}
	tags := map[string][]string{"d.example.com": {"userdown:restart"}, "e.example.com": {"userdown:ignore"}}
	var insts []instance
	for _, name := range names {
		insts = append(insts, instance{name: name, admin: "up", tags: tags[name]})
	}
	n := newNode(t, xen.XL, insts, "")
	shim := n.installShim()
	// Ganeti's own stops go through the shim too, as on a node.
	if err := n.rapi.Update(func(st *ganetifake.State) error {
		st.Toolstack = ganetifake.Toolstack{Command: shim, Env: n.env()}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		n.start(name)
	}
	n.start("scratch") // not a Ganeti instance

	// cause says, per domain name, what shut the current domain down:
	// "user", "host", "crash", "watchdog", or "" while it runs.
	cause := map[string]string{}
	checkedJobs := map[int64]bool{}
	checkMarkDowns := func(step int) {
		for _, j := range n.rapi.State().Jobs {
			if checkedJobs[j.ID] || !fromUserdown(j) {
				continue
			}
			checkedJobs[j.ID] = true
			if c := cause[j.Instance]; c != "user" {
				t.Fatalf("step %d (seed %d): %s marked down by ganeti-userdown, but its shutdown was %q", step, seed, j.Instance, c)
			}
		}
	}
	// domainsNow lists the domains and forgets the causes of domains that
	// are gone or run again.
	domainsNow := func() map[string]xen.Domain {
		m := map[string]xen.Domain{}
		for _, d := range n.domains() {
			m[d.Name] = d
		}
		for name := range cause {
			if d, ok := m[name]; !ok || d.State.Alive() {
				delete(cause, name)
			}
		}
		return m
	}
	pick := func(m map[string]xen.Domain, want func(xen.Domain) bool) (xen.Domain, bool) {
		var cands []xen.Domain
		for _, name := range append(names, "scratch") {
			if d, ok := m[name]; ok && want(d) {
				cands = append(cands, d)
			}
		}
		if len(cands) == 0 {
			return xen.Domain{}, false
		}
		return cands[rng.IntN(len(cands))], true
	}
	alive := func(d xen.Domain) bool { return d.State.Alive() }

	deadline := time.Now().Add(budget)
	steps, runs := 0, 0
	counts := map[string]int{}
	for ; time.Now().Before(deadline) && steps < 20000; steps++ {
		r := rng.IntN(100)
		var doms map[string]xen.Domain
		if r < 72 {
			doms = domainsNow() // the actions that look at the domains
		}
		var what string
		switch {
		case r < 18:
			if d, ok := pick(doms, alive); ok {
				what = "poweroff"
				if guest(n, "poweroff", d.Name) {
					cause[d.Name] = "user"
				}
			}
		case r < 26:
			if d, ok := pick(doms, alive); ok {
				what = "reboot"
				guest(n, "reboot", d.Name)
			}
		case r < 33:
			if d, ok := pick(doms, alive); ok {
				what = "crash"
				if guest(n, "crash", d.Name) {
					cause[d.Name] = "crash"
				}
			}
		case r < 37:
			if d, ok := pick(doms, alive); ok {
				what = "watchdog"
				if guest(n, "watchdog", d.Name) {
					cause[d.Name] = "watchdog"
				}
			}
		case r < 47:
			if d, ok := pick(doms, func(xen.Domain) bool { return true }); ok && !d.IsDom0() {
				what = "shim shutdown"
				args := []string{"shutdown", d.Name}
				if rng.IntN(2) == 0 {
					args = []string{"shutdown", "-w", d.Name}
				}
				if rng.IntN(3) == 0 {
					args[len(args)-1] = strconv.Itoa(d.ID)
				}
				n.run(shim, args...)
				cause[d.Name] = "host"
				if args[1] == "-w" {
					// The caller waited; now it destroys the domain, as
					// Ganeti's node daemon does (without -w the reaper
					// does it).
					n.run(shim, "destroy", strconv.Itoa(d.ID))
				}
			}
		case r < 48:
			what = "shim shutdown -a"
			n.run(shim, "shutdown", "-a", "-w")
			for name, d := range doms {
				if !d.IsDom0() {
					cause[name] = "host"
				}
			}
		case r < 55:
			name := names[rng.IntN(len(names))]
			what = "ganeti stop"
			if _, err := n.rapi.Engine.Submit(name, 5, "admin", nil, false); err != nil {
				t.Fatal(err)
			}
			if _, ok := doms[name]; ok {
				cause[name] = "host"
			}
		case r < 62:
			// An administrator starts a down instance.
			name := names[rng.IntN(len(names))]
			if _, ok := doms[name]; !ok {
				what = "ganeti start"
				if err := n.rapi.Update(func(st *ganetifake.State) error {
					for i := range st.Instances {
						if st.Instances[i].Name == name {
							st.Instances[i].AdminState = "up"
						}
					}
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				n.start(name)
			}
		case r < 72:
			what = "restart pass"
			n.restartPass()
			if _, ok := doms["scratch"]; !ok {
				n.start("scratch")
			}
		case r < 84:
			what = "detect --mark-down"
			runs++
			if _, errs, code := n.run(n.detect, "--mark-down"); code != 0 && code != 1 {
				t.Fatalf("step %d (seed %d): userdown-detect --mark-down: exit %d: %s", steps, seed, code, errs)
			}
		case r < 96:
			what = "destroy"
			runs++
			if _, errs, code := n.run(n.destroy); code != 0 {
				t.Fatalf("step %d (seed %d): userdown-destroy: exit %d: %s", steps, seed, code, errs)
			}
		default:
			what = "watcher"
			runs++
			n.watcher()
		}
		if what == "" {
			// Nothing to act on (every domain down): Ganeti restarts.
			what = "restart pass"
			n.restartPass()
		}
		counts[what]++
		checkMarkDowns(steps)
	}
	// Let reapers and jobs still running finish, then check everything.
	time.Sleep(500 * time.Millisecond)
	checkMarkDowns(steps)
	var destroys int
	for _, e := range n.calls() {
		if e.Destroyed == nil {
			continue
		}
		destroys++
		st, err := xen.ParseState(xen.XL, e.Destroyed.State)
		if err != nil {
			t.Fatalf("destroy of %+v: state %q: %v", *e.Destroyed, e.Destroyed.State, err)
		}
		if st.Alive() {
			t.Errorf("seed %d: %s destroyed %s (domid %d) while it was %s", seed, strings.Join(e.Argv, " "), e.Destroyed.Name, e.Destroyed.ID, e.Destroyed.State)
		}
	}
	t.Logf("%d steps, %d detect/destroy/watcher runs, %d destroys, %d mark-downs; actions %v", steps, runs, destroys, len(checkedJobs), counts)
	// On an idle 2-core machine the budget gives a few thousand steps; a
	// loaded one gives fewer, but a run this short means a broken loop.
	if steps < 100 {
		t.Errorf("only %d steps within %s", steps, budget)
	}
}

// guest plays the guest's side of domain name: it powers off, reboots,
// crashes or hits its watchdog. It reports false when the domain no
// longer runs (a reaper or a Ganeti job got there first).
func guest(n *node, what, name string) bool {
	_, errs, code := n.run(n.sim, "sim", what, name)
	if code != 0 && !strings.Contains(errs, "not running") && !strings.Contains(errs, "does not exist") {
		n.t.Fatalf("sim %s %s: exit %d: %s", what, name, code, errs)
	}
	return code == 0
}

// fromUserdown reports a shutdown job ganeti-userdown submitted.
func fromUserdown(j ganetifake.Job) bool {
	for _, r := range j.Reason {
		if strings.Contains(r.Text, "ganeti-userdown") {
			return true
		}
	}
	return false
}
