package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ganeti-userdown/detect"
	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/xen"
	"ganeti-userdown/testdata/ganetifake"
	"ganeti-userdown/testdata/xensim/simlog"
)

// TestRandomized interleaves guest actions (poweroff, reboot, crash,
// watchdog), shutdowns through the shim (waiting or not, single or -a),
// Ganeti's own stops and starts, Ganeti reboot jobs running concurrently
// (hook intent, shutdown through the shim, start again, intent cleared),
// detect/destroy/watcher runs, userdown-watchd (started and stopped by
// an operator at random steps, acting on the xenstored simulator's events
// meanwhile), and hook intents aged five minutes (as left by a job that
// failed, or held by one that still runs), for thousands of steps within
// a time bound, and checks the safety rules throughout against the simulator's
// call log, which records what really happened:
//
// Reference: design.md, "Decisions", safety rule 1: "Never destroy a
// domain that is not shut down or crashed." Checked on every destroy in
// the simulator's call log, with the domain's state at that moment, and
// on every shutdown a mark-down job made: it must find the domain dead,
// never ask a running domain to shut down.
//
// Reference: design.md, "Decisions", safety rule 3: "Never mark down an
// instance whose shutdown Ganeti or an operator asked for". Checked on
// every mark-down job ganeti-userdown submitted: the domain its reason
// names must have been powered off by its guest (a `sim poweroff` call),
// not asked to shut down through the toolstack while it ran, nor crashed
// or stopped by its watchdog. A toolstack shutdown of a domain its user
// had already powered off changes nothing: the user's poweroff stays the
// cause.
//
// Reference: design.md, "The start guard": a user's poweroff is never
// undone. After its guest powered off a domain of an instance of policy
// down, no new domain of that instance may be created by Ganeti's
// watcher unless an operator asked for one since (a Ganeti start, stop
// or reboot, a shutdown through the toolstack). Checked on every
// instance the restart passes start: the one acting on the current state
// (the master's own instances) and the one acting on a status read some
// steps earlier, through the instance-start hooks, as the master's
// watcher restarts an instance of another node: it reads the status, and
// the restart job runs a few steps later, waiting behind whatever job
// holds the instance (our mark-down, say).
//
// A guest action aimed at a domain that vanished since the listing (a
// concurrent Ganeti reboot replaced it) is counted and skipped; any other
// failure of it fails the run.
//
// The seed is logged; E2E_SEED=N replays the choices (not the timing of
// concurrent jobs), E2E_RANDOM_FOR=30s runs longer. A failure prints the
// last steps with the domains' states and the simulator calls about the
// instance concerned.
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
	// The node has the xenstored simulator, so that userdown-watchd can
	// be one more actor: an operator starts and stops the service at
	// random steps, and its runs on Xen's events race everything else.
	d := newDaemonNode(t, insts, daemonOptions{rescan: "2s"})
	n := d.node
	shim := n.installShim()
	hook := n.hookBinary()
	// Ganeti's own stops go through the shim too, as on a node.
	if err := n.rapi.Update(func(st *ganetifake.State) error {
		// Shutdown jobs run the instance-stop hooks (the stop guard).
		st.Toolstack = ganetifake.Toolstack{Command: shim, Env: n.env(), StopHook: hook}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		n.start(name)
	}
	n.start("scratch") // not a Ganeti instance

	h := &history{}
	fail := func(step int, instance string, format string, args ...any) {
		t.Helper()
		t.Errorf("step %d (seed %d): %s", step, seed, fmt.Sprintf(format, args...))
		t.Log(h.String())
		t.Log(callsAbout(n.calls(), instance, 40))
		t.Log(jobsAbout(n.rapi.State(), instance, 20))
		t.Log(daemonLogTail(d.log(), 40))
		t.FailNow()
	}

	// Ganeti reboot jobs run concurrently with the steps; their errors
	// are collected and reported at the next step.
	var reboots sync.WaitGroup
	rebootErrs := make(chan error, 64)
	defer reboots.Wait()

	// User poweroffs not yet answered by an operator, and the watcher's
	// restart jobs started from an older status read.
	po := newPoweroffs(names, tags)
	var step atomic.Int64
	var restarts sync.WaitGroup
	restartErrs := make(chan restartError, 64)
	var refusedBefore, refusedAfter, restarted, vanished atomic.Int64
	queued := &nameSet{m: map[string]bool{}}
	defer func() {
		step.Store(1 << 62) // release restart jobs still waiting for their step
		restarts.Wait()
	}()
	// checkRestarted fails the run when a restart pass started an
	// instance whose user's poweroff is still unanswered.
	checkRestarted := func(stepNo int, started []string, before map[string]int) {
		if len(started) == 0 {
			return
		}
		now := n.domainMap()
		for _, name := range started {
			if id, ok := before[name]; ok {
				if d, ok := now[name]; ok && d.ID != id && d.State.Alive() {
					fail(stepNo, name, "the user's poweroff of %s (domain %d) was undone: the watcher's restart pass started domain %d", name, id, d.ID)
				}
			}
		}
	}

	checked := map[int64]bool{}
	unlisted := 0
	var shimRuns []span // the test's own shutdowns through the shim
	checkJobs := func(step int) {
		var fresh []ganetifake.Job
		for _, j := range n.rapi.State().Jobs {
			// Only mark-downs are judged here: the crash restarts that
			// ganeti-userdown also submits (OP_INSTANCE_STARTUP) name it too.
			if !checked[j.ID] && j.OpID == "OP_INSTANCE_SHUTDOWN" && fromUserdown(j) && ganetiJobDone(j) {
				fresh = append(fresh, j)
			}
		}
		if len(fresh) == 0 {
			return
		}
		calls := n.calls()
		for _, j := range fresh {
			checked[j.ID] = true
			if m := markDownDomain.FindStringSubmatch(strings.Join(reasonTexts(j), " ")); m != nil {
				if id, _ := strconv.Atoi(m[1]); shutdownCause(calls, id, shimRuns) == "host-unlisted" {
					unlisted++
					t.Logf("step %d: mark-down job %d (%s) of domain %d, shut down by a toolstack call that began before the domain existed (the shim's known gap)", step, j.ID, j.Instance, id)
				}
			}
			if why := checkMarkDownJob(j, calls, shimRuns); why != "" {
				fail(step, j.Instance, "mark-down job %d (%s, %s): %s", j.ID, j.Instance, j.Status, why)
			}
		}
	}
	alive := func(d xen.Domain) bool { return d.State.Alive() }
	any := func(xen.Domain) bool { return true }

	daemonStarts, daemonStops := 0, 0
	var daemonOn time.Duration
	var daemonSince time.Time
	startDaemon := func() {
		d.startDaemon()
		daemonStarts++
		daemonSince = time.Now()
	}
	stopDaemon := func(step int) {
		if code := d.stopDaemon(); code != 0 {
			fail(step, "", "userdown-watchd exited %d on SIGTERM", code)
		}
		daemonStops++
		daemonOn += time.Since(daemonSince)
	}
	if rng.IntN(2) == 0 {
		startDaemon()
	}

	deadline := time.Now().Add(budget)
	steps, runs, spentRemoved := 0, 0, 0
	counts := map[string]int{}
	spent := map[string]time.Duration{}
	for ; time.Now().Before(deadline) && steps < 20000; steps++ {
		step.Store(int64(steps))
		select {
		case err := <-rebootErrs:
			fail(steps, "", "ganeti reboot: %v", err)
		case e := <-restartErrs:
			fail(steps, e.instance, "%v", e.err)
		default:
		}
		stepStart := time.Now()
		doms := n.domainMap()
		pick := func(want func(xen.Domain) bool) (xen.Domain, bool) {
			var cands []xen.Domain
			for _, name := range append(names, "scratch") {
				if d, ok := doms[name]; ok && want(d) {
					cands = append(cands, d)
				}
			}
			if len(cands) == 0 {
				return xen.Domain{}, false
			}
			return cands[rng.IntN(len(cands))], true
		}
		var what, target string
		toggle := rng.IntN(100) == 0
		age := rng.IntN(50) == 0
		r := rng.IntN(100)
		switch {
		case age:
			// A hook intent turns five minutes old, as if its job had
			// recorded it then: left by a job that failed, it is spent
			// once no job holds the instance; a job that still holds it
			// keeps it (design.md, "State files").
			what = "intent aged"
			target = ageIntent(t, n.stateDir, rng)
		case toggle && d.daemon == nil:
			what = "watchd start"
			startDaemon()
		case toggle:
			what = "watchd stop"
			stopDaemon(steps)
		case r < 18:
			if d, ok := pick(alive); ok {
				what, target = "poweroff", d.Name
				if guestAct(t, n, "poweroff", d, &vanished) && !operatorJobOn(n.rapi.State(), d.Name) {
					po.poweredOff(d)
				}
			}
		case r < 25:
			if d, ok := pick(alive); ok {
				what, target = "reboot", d.Name
				guestAct(t, n, "reboot", d, &vanished)
			}
		case r < 31:
			if d, ok := pick(alive); ok {
				what, target = "crash", d.Name
				guestAct(t, n, "crash", d, &vanished)
			}
		case r < 34:
			if d, ok := pick(alive); ok {
				what, target = "watchdog", d.Name
				guestAct(t, n, "watchdog", d, &vanished)
			}
		case r < 43:
			if d, ok := pick(any); ok {
				what, target = "shim shutdown", d.Name
				args := []string{"shutdown", d.Name}
				if rng.IntN(2) == 0 {
					args = []string{"shutdown", "-w", d.Name}
				}
				if rng.IntN(3) == 0 {
					args[len(args)-1] = strconv.Itoa(d.ID)
				}
				from := time.Now()
				po.answered(d.Name) // an operator's toolstack shutdown
				po.shutdownAsked(d.ID)
				n.run(shim, args...)
				shimRuns = append(shimRuns, span{from, time.Now()})
				// The request may have reached a domain created since the
				// listing; until it acts, a poweroff of it is no user's
				// alone.
				for _, x := range n.domainMap() {
					if x.Name == d.Name {
						po.shutdownAsked(x.ID)
					}
				}
				if args[1] == "-w" {
					// The caller waited; now it destroys the domain, as
					// Ganeti's node daemon does (without -w the reaper
					// does it).
					n.run(shim, "destroy", strconv.Itoa(d.ID))
				}
			}
		case r < 44:
			what = "shim shutdown -a"
			po.answered(names...)
			for _, x := range doms {
				po.shutdownAsked(x.ID)
			}
			from := time.Now()
			n.run(shim, "shutdown", "-a", "-w")
			shimRuns = append(shimRuns, span{from, time.Now()})
			for _, x := range n.domainMap() {
				po.shutdownAsked(x.ID)
			}
		case r < 50:
			name := names[rng.IntN(len(names))]
			what, target = "ganeti stop", name
			po.answered(name)
			if _, err := n.rapi.Engine.Submit(name, 5, "admin", nil, false); err != nil {
				t.Fatal(err)
			}
		case r < 55:
			// Someone submits a Ganeti reboot of an instance
			// (gnt-instance reboot --type=full); the master starts it a
			// moment later, while the next steps (a detect run, say) go
			// on. It runs when the instance lock is free.
			name := names[rng.IntN(len(names))]
			delay := time.Duration(rng.IntN(40)) * time.Millisecond
			what, target = "ganeti reboot", name
			reboots.Add(1)
			go func() {
				defer reboots.Done()
				time.Sleep(delay)
				id, ok, err := n.rapi.Engine.TryHoldLock(name, "OP_INSTANCE_REBOOT")
				if err == nil && ok {
					err = n.ganetiReboot(hook, shim, name, id, po)
				}
				if err != nil {
					rebootErrs <- err
				}
			}()
		case r < 61:
			// An administrator starts a down instance.
			name := names[rng.IntN(len(names))]
			if _, ok := doms[name]; !ok && !lockedInstances(n.rapi.State())[name] {
				what, target = "ganeti start", name
				po.answered(name)
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
				n.startAgain(name)
			}
		case r < 65:
			what = "restart pass"
			before := po.pending()
			checkRestarted(steps, n.restartPassOver(doms), before)
			if _, ok := doms["scratch"]; !ok {
				n.startAgain("scratch")
			}
		case r < 70:
			// The master's watcher of another node's instances: it reads
			// the status now, and each restart job it queues runs a few
			// steps later, behind the job holding the instance.
			what = "status read"
			for _, name := range errorDown(n.rapi.State(), doms) {
				if !queued.add(name) {
					// One restart per instance and watcher round, and
					// rounds do not overlap: the job of the last one
					// has not run yet.
					continue
				}
				at := int64(steps + 1 + rng.IntN(5))
				restarts.Add(1)
				go func() {
					defer restarts.Done()
					defer queued.remove(name)
					for step.Load() < at {
						time.Sleep(time.Millisecond)
					}
					ok, refusal, err := n.watcherRestart(hook, name, po)
					switch {
					case err != nil:
						restartErrs <- restartError{name, err}
					case ok:
						restarted.Add(1)
					case strings.Contains(refusal, "not marked down yet"):
						refusedBefore.Add(1)
					case refusal != "":
						refusedAfter.Add(1)
					}
				}()
			}
		case r < 83:
			what = "detect --mark-down"
			runs++
			_, errs, code := n.run(n.detect, "--mark-down")
			if code != 0 && code != 1 {
				fail(steps, "", "userdown-detect --mark-down: exit %d: %s", code, errs)
			}
			spentRemoved += strings.Count(errs, "spent intent removed")
		case r < 96:
			what = "destroy"
			runs++
			_, errs, code := n.run(n.destroy)
			if code != 0 {
				fail(steps, "", "userdown-destroy: exit %d: %s", code, errs)
			}
			spentRemoved += strings.Count(errs, "spent intent removed")
		default:
			what = "watcher"
			runs++
			before := po.pending()
			checkRestarted(steps, n.watcher(), before)
		}
		if what == "" {
			// Nothing to act on (every domain down): Ganeti restarts.
			what = "restart pass"
			before := po.pending()
			checkRestarted(steps, n.restartPassOver(doms), before)
		}
		h.add(steps, stepStart, what, target, doms)
		counts[what]++
		checkJobs(steps)
		spent[what] += time.Since(stepStart)
	}
	if d.daemon != nil {
		stopDaemon(steps)
	}
	// Let reapers, reboots, restarts and jobs still running finish, then
	// check everything.
	step.Store(1 << 62)
	restarts.Wait()
	reboots.Wait()
	waitFor(t, func() bool {
		for _, j := range n.rapi.State().Jobs {
			if !ganetiJobDone(j) {
				return false
			}
		}
		return true
	})
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-rebootErrs:
		fail(steps, "", "ganeti reboot: %v", err)
	case e := <-restartErrs:
		fail(steps, e.instance, "%v", e.err)
	default:
	}
	checkJobs(steps)
	calls := n.calls()
	live, err := simlog.LiveDestroys(calls)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range live {
		fail(steps, e.Destroyed.Name, "%s destroyed %s (domid %d) while it was %s", strings.Join(e.Argv, " "), e.Destroyed.Name, e.Destroyed.ID, e.Destroyed.State)
	}
	var destroys int
	for _, e := range calls {
		if e.Destroyed != nil {
			destroys++
		}
	}
	st := n.rapi.State()
	deferred, stopRefused := 0, 0
	for _, j := range st.Jobs {
		if fromUserdown(j) && j.Status == "canceled" {
			deferred++
		}
		if j.Status == "error" && strings.Contains(string(j.Result), detect.StopRefused) {
			stopRefused++
		}
	}
	var whats []string
	for what := range spent {
		whats = append(whats, what)
	}
	sort.Strings(whats)
	for _, what := range whats {
		t.Logf("%-20s %5d steps %9s total %7s each", what, counts[what], spent[what].Round(time.Millisecond), (spent[what] / time.Duration(counts[what])).Round(100*time.Microsecond))
	}
	t.Logf("%d steps (%.0f/s), %d detect/destroy/watcher runs, %d destroys, %d mark-down jobs (%d deferred, %d of domains shut down by a toolstack call older than them), %d simulator calls",
		steps, float64(steps)/budget.Seconds(), runs, destroys, len(checked), deferred, unlisted, len(calls))
	t.Logf("shutdown jobs refused by the stop guard: %d; intents their failed jobs left behind removed: %d by detect and destroy, %d by userdown-watchd",
		stopRefused, spentRemoved, strings.Count(d.log(), `msg="spent intent removed"`))
	dlog := d.log()
	daemonMarked, daemonDestroyed := strings.Count(dlog, `msg="marked down"`), strings.Count(dlog, "msg=destroyed ")
	t.Logf("userdown-watchd: started %d times, stopped %d, running %s of %s; it marked down %d instances and destroyed %d domains",
		daemonStarts, daemonStops, daemonOn.Round(time.Millisecond), budget, daemonMarked, daemonDestroyed)
	// Thousands of guest actions in those seconds: a daemon that ran
	// for 5 s and never acted is not watching.
	if daemonOn > 5*time.Second && daemonMarked+daemonDestroyed == 0 {
		t.Errorf("userdown-watchd ran %s and acted on nothing:\n%s", daemonOn.Round(time.Millisecond), daemonLogTail(dlog, 40))
	}
	t.Logf("user poweroffs %d; watcher restarts from an older status: %d started, refused by the start guard %d before the mark-down (row 4) and %d after it (row 5); %d guest actions on a vanished domain skipped",
		po.count(), restarted.Load(), refusedBefore.Load(), refusedAfter.Load(), vanished.Load())
	// On an idle 2-core machine the budget gives a few thousand steps; a
	// loaded one gives fewer, but a run this short means a broken loop.
	if steps < 100 {
		t.Errorf("only %d steps within %s", steps, budget)
	}
}

// guestAct plays the guest's side of domain d: it powers off, reboots,
// crashes or hits its watchdog, by domid. It reports whether the action
// happened. When it did not because the domain no longer runs (a reaper
// or a Ganeti job got there first) or vanished (a concurrent Ganeti
// reboot replaced it), that is counted in vanished; any other failure
// fails the test.
func guestAct(t *testing.T, n *node, what string, d xen.Domain, vanished *atomic.Int64) bool {
	t.Helper()
	_, errs, code := n.run(n.sim, "sim", what, strconv.Itoa(d.ID))
	if code == 0 {
		return true
	}
	if now, ok := n.domainByID(d.ID); !ok || now.UUID != d.UUID || !now.State.Alive() {
		vanished.Add(1)
		return false
	}
	t.Fatalf("sim %s %s (domain %d, still running): exit %d: %s", what, d.Name, d.ID, code, errs)
	return false
}

// domainByID returns the domain with domid id, if present.
func (n *node) domainByID(id int) (xen.Domain, bool) {
	for _, d := range n.domains() {
		if d.ID == id {
			return d, true
		}
	}
	return xen.Domain{}, false
}

// restartError is a failed or wrong watcher restart of instance.
type restartError struct {
	instance string
	err      error
}

// poweroffs tracks, per instance of policy down, the domain its user
// powered off that no operator action has answered since: the watcher
// must not start that instance again.
type poweroffs struct {
	mu      sync.Mutex
	down    map[string]bool // instances of policy down
	pend    map[string]int  // instance -> powered-off domid
	asked   map[int]bool    // domids a toolstack shutdown was asked for
	counter int
}

func newPoweroffs(names []string, tags map[string][]string) *poweroffs {
	p := &poweroffs{down: map[string]bool{}, pend: map[string]int{}, asked: map[int]bool{}}
	for _, name := range names {
		if len(tags[name]) == 0 { // default policy down; d and e are tagged restart and ignore
			p.down[name] = true
		}
	}
	return p
}

// shutdownAsked records that an operator asked the toolstack to shut
// down these domains: a poweroff of one of them is not its user's alone.
func (p *poweroffs) shutdownAsked(ids ...int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		p.asked[id] = true
	}
}

// poweredOff records that d's guest powered it off.
func (p *poweroffs) poweredOff(d xen.Domain) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down[d.Name] && !p.asked[d.ID] {
		p.pend[d.Name] = d.ID
		p.counter++
	}
}

// answered records that an operator acted on the instances: what happens
// to them next is the operator's.
func (p *poweroffs) answered(names ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, name := range names {
		delete(p.pend, name)
	}
}

// pending returns the unanswered poweroffs: instance -> domid.
func (p *poweroffs) pending() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[string]int, len(p.pend))
	for k, v := range p.pend {
		m[k] = v
	}
	return m
}

func (p *poweroffs) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counter
}

// operatorJobOn reports an operator's Ganeti stop or reboot of instance
// that has not ended: what happens to its domain next is that job's.
func operatorJobOn(st ganetifake.State, instance string) bool {
	for _, j := range st.Jobs {
		if j.Instance != instance || ganetiJobDone(j) || fromUserdown(j) {
			continue
		}
		if j.OpID == "OP_INSTANCE_SHUTDOWN" || j.OpID == "OP_INSTANCE_REBOOT" {
			return true
		}
	}
	return false
}

// nameSet is a set of names safe for concurrent use.
type nameSet struct {
	mu sync.Mutex
	m  map[string]bool
}

// add adds name and reports whether it was absent.
func (s *nameSet) add(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[name] {
		return false
	}
	s.m[name] = true
	return true
}

func (s *nameSet) remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, name)
}

// errorDown returns the instances the master's watcher would restart
// from this status: admin up, on this node, with no running domain (a
// powered-off or crashed domain reads as ERROR_down in Ganeti 3.0.2).
func errorDown(st ganetifake.State, doms map[string]xen.Domain) []string {
	var out []string
	for _, in := range st.Instances {
		if in.PrimaryNode != nodeName || in.AdminState != "up" {
			continue
		}
		if d, ok := doms[in.Name]; !ok || !d.State.Alive() && d.State.Class() != xen.ClassInFlight {
			out = append(out, in.Name)
		}
	}
	sort.Strings(out)
	return out
}

// watcherRestart plays the restart job (OP_INSTANCE_STARTUP, reason
// gnt:watcher) the master's watcher queued from an older status, as
// Ganeti 3.0 runs it: it waits for the instance lock, runs the
// instance-start pre hooks with the admin state of that moment and
// GANETI_FORCE=False (a refusal aborts the job: ok false), marks the
// instance up, creates the domain from the stored config (a domain
// already there makes it a no-op), runs the post hooks (whose failure
// Ganeti only warns about). A creation while
// the instance's user poweroff is unanswered is an error: the poweroff
// undone. refusal is the start guard's message when it refused.
func (n *node) watcherRestart(hook, name string, po *poweroffs) (ok bool, refusal string, err error) {
	var id int64
	deadline := time.Now().Add(30 * time.Second)
	for {
		var held bool
		id, held, err = n.rapi.Engine.TryHoldLock(name, "OP_INSTANCE_STARTUP")
		if err != nil {
			return false, "", err
		}
		if held {
			break
		}
		if time.Now().After(deadline) {
			return false, "", fmt.Errorf("watcher restart of %s: the instance lock stayed held for 30s", name)
		}
		time.Sleep(2 * time.Millisecond)
	}
	defer func() {
		status := "success"
		if !ok || err != nil {
			status = "error"
		}
		if ferr := n.rapi.Engine.Finish(id, status, nil); ferr != nil && err == nil {
			err = ferr
		}
	}()
	var in *ganetifake.Instance
	st := n.rapi.State()
	for i := range st.Instances {
		if st.Instances[i].Name == name {
			in = &st.Instances[i]
		}
	}
	if in == nil || in.AdminState == "offline" {
		return false, "", nil
	}
	hookEnv := func(phase string) []string {
		return []string{
			"GANETI_HOOKS_PATH=instance-start", "GANETI_HOOKS_PHASE=" + phase, "GANETI_HOOKS_VERSION=2",
			"GANETI_OP_CODE=OP_INSTANCE_STARTUP", "GANETI_OBJECT_TYPE=INSTANCE", "GANETI_FORCE=False",
			"GANETI_INSTANCE_NAME=" + name, "GANETI_INSTANCE_PRIMARY=" + nodeName, "GANETI_INSTANCE_SECONDARIES=",
			"GANETI_INSTANCE_HYPERVISOR=xen-pvm", "GANETI_INSTANCE_STATUS=" + in.AdminState,
			"GANETI_INSTANCE_TAGS=" + strings.Join(in.Tags, " "), "GANETI_INSTANCE_DISK_TEMPLATE=diskless",
			"GANETI_CLUSTER=cluster.example.com", "GANETI_MASTER=" + nodeName,
		}
	}
	preOut, code, err := n.runJobStep(20*time.Second, hookEnv("pre"), hook)
	if out := preOut; err != nil {
		return false, "", fmt.Errorf("watcher restart of %s: pre hook: %v: %s", name, err, out)
	} else if code != 0 {
		if !strings.HasPrefix(out, "ganeti-userdown: not starting "+name+":") {
			return false, "", fmt.Errorf("watcher restart of %s: pre hook exit %d without the start guard's message: %s", name, code, out)
		}
		return false, strings.SplitN(out, "\n", 2)[0], nil
	}
	if err := n.rapi.Update(func(st *ganetifake.State) error {
		for i := range st.Instances {
			if st.Instances[i].Name == name {
				st.Instances[i].AdminState, st.Instances[i].AdminStateSource = "up", ""
			}
		}
		return nil
	}); err != nil {
		return false, "", err
	}
	pend := po.pending()
	out, code, err := n.runJobStep(20*time.Second, nil, n.sim, "create", filepath.Join(n.xenDir, name))
	switch {
	case err != nil:
		return false, "", fmt.Errorf("watcher restart of %s: create: %v", name, err)
	case code != 0 && strings.Contains(out, "already exists"):
		return true, "", nil // running: Ganeti's start is a no-op
	case code != 0:
		return false, "", fmt.Errorf("watcher restart of %s: create: exit %d: %s", name, code, out)
	}
	if id, ok := pend[name]; ok {
		return true, "", fmt.Errorf("the user's poweroff of %s (domain %d) was undone by the watcher's restart from an older status (instance was admin %s when the job ran); its pre hook said:\n%s", name, id, in.AdminState, preOut)
	}
	// A failing post hook is only a warning to Ganeti (the domain may be
	// gone again already: a guest's action, a reaper); only one that
	// cannot run fails.
	if out, _, err := n.runJobStep(20*time.Second, hookEnv("post"), hook); err != nil {
		return true, "", fmt.Errorf("watcher restart of %s: post hook: %v: %s", name, err, out)
	}
	return true, "", nil
}

// runJobStep runs one command of a Ganeti job played by the test, with
// the node's environment plus env, bounded by timeout, and returns its
// output as Ganeti reports a hook's (stdout, then stderr) and its exit
// code.
func (n *node) runJobStep(timeout time.Duration, env []string, prog string, args ...string) (string, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = append(n.env(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	text := out.String() + errb.String()
	if ee, ok := err.(*exec.ExitError); ok {
		return text, ee.ExitCode(), nil
	}
	return text, 0, err
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

// ganetiJobDone reports a job that ended (or was cancelled).
func ganetiJobDone(j ganetifake.Job) bool {
	return j.Status == "success" || j.Status == "error" || j.Status == "canceled"
}

// span is a time interval.
type span struct{ from, to time.Time }

// reasonTexts returns the texts of a job's reason trail.
func reasonTexts(j ganetifake.Job) []string {
	var out []string
	for _, r := range j.Reason {
		out = append(out, r.Text)
	}
	return out
}

// markDownDomain reads the domid ganeti-userdown's reason names:
// "... (domain N, state ...".
var markDownDomain = regexp.MustCompile(`\(domain (\d+), state `)

// checkMarkDownJob checks one finished mark-down job against the
// simulator's call log and returns what is wrong, or "":
//   - the domain it was decided on went down by its guest's poweroff, not
//     through a shutdown asked while it ran, a crash or a watchdog;
//   - while the job ran, its shutdown found the domain dead (no shutdown
//     request reached a running guest) and its destroy removed a dead
//     domain.
func checkMarkDownJob(j ganetifake.Job, calls []simlog.Entry, shimRuns []span) string {
	domid := -1
	for _, r := range j.Reason {
		if m := markDownDomain.FindStringSubmatch(r.Text); m != nil {
			domid, _ = strconv.Atoi(m[1])
		}
	}
	if domid < 0 {
		return "its reason names no domain"
	}
	switch c := shutdownCause(calls, domid, shimRuns); c {
	case "user":
	case "host-unlisted":
		return "" // counted by the caller, see shutdownCause
	default:
		return fmt.Sprintf("domain %d was shut down by %q, not by its user", domid, c)
	}
	if j.Started == 0 {
		return "" // cancelled before it ran: it did nothing
	}
	start := time.Unix(0, int64(j.Started*1e9)).Add(-time.Millisecond)
	end := time.Unix(0, int64(j.Ended*1e9)).Add(time.Millisecond)
	for _, e := range calls {
		if e.Time.Before(start) || e.Time.After(end) {
			continue
		}
		switch {
		case slices.Equal(e.Argv, []string{"shutdown", "-w", j.Instance}):
			for _, ev := range e.Events {
				if ev.What == "shutdown-request" {
					return fmt.Sprintf("it asked running domain %d (%s) to shut down", ev.Domain.ID, ev.Domain.State)
				}
			}
		case slices.Equal(e.Argv, []string{"destroy", j.Instance}) && e.Destroyed != nil:
			// The simulator's own judgement, not ganeti-userdown's.
			if stopped, err := simlog.StoppedForGood(e.Flavour, e.Destroyed.State); err != nil || !stopped {
				return fmt.Sprintf("it destroyed domain %d while it was %s", e.Destroyed.ID, e.Destroyed.State)
			}
		}
	}
	return ""
}

// shutdownCause says from the call log why domain domid stopped: "host"
// when a shutdown was asked through the toolstack while it ran, else the
// first of its guest's poweroff ("user", from `sim poweroff`), "crash" or
// "watchdog"; "" when it never stopped.
//
// "host-unlisted" is a shutdown asked by a shim run (one of shimRuns)
// that began before the domain existed: `xl shutdown -a` (or a name) while a Ganeti
// reboot created the domain again. The shim records its intents for the
// domains it lists before running the real shutdown, so this domain has
// none and looks exactly like a user's poweroff: a known gap of the shim,
// counted and logged by the test, not one detect can close.
func shutdownCause(calls []simlog.Entry, domid int, shimRuns []span) string {
	var created time.Time
	for _, e := range calls {
		for _, ev := range e.Events {
			if ev.Domain.ID != domid {
				continue
			}
			switch ev.What {
			case "create", "restart":
				created = ev.Time
			case "shutdown-request":
				for _, r := range shimRuns {
					if !e.Time.Before(r.from) && !e.Time.After(r.to) && created.After(r.from) {
						return "host-unlisted"
					}
				}
				return "host"
			case "poweroff":
				if len(e.Argv) >= 2 && e.Argv[0] == "sim" && e.Argv[1] == "poweroff" {
					return "user"
				}
				return "poweroff during " + strings.Join(e.Argv, " ")
			case "crash", "watchdog":
				return ev.What
			}
		}
	}
	return ""
}

// callsAbout renders the last max simulator calls that name instance
// (or, with instance "", every call), with their events.
func callsAbout(calls []simlog.Entry, instance string, max int) string {
	var lines []string
	for _, e := range calls {
		about := instance == "" || slices.Contains(e.Argv, instance)
		var evs []string
		for _, ev := range e.Events {
			if ev.Domain.Name == instance {
				about = true
			}
			evs = append(evs, fmt.Sprintf("%s %s/%d %s", ev.What, ev.Domain.Name, ev.Domain.ID, ev.Domain.State))
		}
		if !about {
			continue
		}
		line := fmt.Sprintf("  %s %s", e.Time.Format("15:04:05.000"), e)
		if len(evs) > 0 {
			line += " [" + strings.Join(evs, "; ") + "]"
		}
		lines = append(lines, line)
	}
	if len(lines) > max {
		lines = lines[len(lines)-max:]
	}
	return "simulator calls about " + instance + ":\n" + strings.Join(lines, "\n")
}

// ageIntent rewrites one hook intent of stateDir, chosen with rng, as
// recorded five minutes ago (through the store, under its lock), and
// returns its instance ("" when there was none).
func ageIntent(t *testing.T, stateDir string, rng *rand.Rand) string {
	t.Helper()
	st := state.Open(stateDir)
	now := time.Now().UTC()
	live, _ := st.Intents(now)
	var hooks []state.Intent
	for _, it := range live {
		if it.Instance != "" {
			hooks = append(hooks, it)
		}
	}
	if len(hooks) == 0 {
		return ""
	}
	it := hooks[rng.IntN(len(hooks))]
	it.Created = now.Add(-5 * time.Minute)
	it.Expires = it.Created.Add(time.Hour)
	if err := st.RecordIntent(it); err != nil {
		t.Fatalf("age intent %s/%s: %v", it.Instance, it.Op, err)
	}
	return it.Instance
}

// daemonLogTail returns the last max lines of userdown-watchd's log.
func daemonLogTail(log string, max int) string {
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	if len(lines) > max {
		lines = lines[len(lines)-max:]
	}
	return "userdown-watchd log (last lines):\n" + strings.Join(lines, "\n")
}

// jobsAbout lists the last max Ganeti jobs about instance (all when ""),
// with their times, for failure messages.
func jobsAbout(st ganetifake.State, instance string, max int) string {
	at := func(ts float64) string {
		if ts == 0 {
			return "-"
		}
		return time.Unix(0, int64(ts*1e9)).UTC().Format("15:04:05.000")
	}
	var lines []string
	for _, j := range st.Jobs {
		if instance != "" && j.Instance != instance {
			continue
		}
		lines = append(lines, fmt.Sprintf("  job %d %s %s %s received %s started %s ended %s reason %q result %s",
			j.ID, j.OpID, j.Instance, j.Status, at(j.Received), at(j.Started), at(j.Ended), reasonTexts(j), j.Result))
	}
	if len(lines) > max {
		lines = lines[len(lines)-max:]
	}
	return "Ganeti jobs about " + instance + ":\n" + strings.Join(lines, "\n")
}

// history keeps the last steps of a randomized run for failure messages.
type history struct {
	lines []string
}

func (h *history) add(step int, at time.Time, what, target string, doms map[string]xen.Domain) {
	var ds []string
	for _, d := range doms {
		if !d.IsDom0() {
			ds = append(ds, fmt.Sprintf("%s/%d:%s", strings.TrimSuffix(d.Name, ".example.com"), d.ID, d.State.Letters))
		}
	}
	sort.Strings(ds)
	line := fmt.Sprintf("  %5d %s %-18s %-14s before: %s", step, at.Format("15:04:05.000"), what, strings.TrimSuffix(target, ".example.com"), strings.Join(ds, " "))
	h.lines = append(h.lines, line)
	if len(h.lines) > 30 {
		h.lines = h.lines[len(h.lines)-30:]
	}
}

func (h *history) String() string {
	return "last steps (step, start time, action, target, domains as listed at its start):\n" + strings.Join(h.lines, "\n")
}

// ganetiReboot plays a Ganeti reboot job (--type=full) holding job id's
// lock on instance name, as Ganeti 3.0 runs it: the pre hooks (ours
// records an intent), `xl shutdown -w` through the shim bounded by the
// shutdown timeout, `xl destroy`, `xl create` of the instance's config,
// the post hooks (ours clears the intent), then the job ends. It runs
// beside the test's steps and returns errors instead of failing the test.
func (n *node) ganetiReboot(hook, shim, name string, id int64, po *poweroffs) (err error) {
	defer func() {
		status := "success"
		if err != nil {
			status = "error"
		}
		if ferr := n.rapi.Engine.Finish(id, status, nil); ferr != nil && err == nil {
			err = ferr
		}
	}()
	run := n.runJobStep
	hookEnv := func(phase string) []string {
		return []string{
			"GANETI_HOOKS_PATH=instance-reboot", "GANETI_HOOKS_PHASE=" + phase, "GANETI_HOOKS_VERSION=2",
			"GANETI_OP_CODE=OP_INSTANCE_REBOOT", "GANETI_OBJECT_TYPE=INSTANCE", "GANETI_REBOOT_TYPE=full",
			"GANETI_INSTANCE_NAME=" + name, "GANETI_INSTANCE_PRIMARY=" + nodeName,
			"GANETI_INSTANCE_HYPERVISOR=xen-pvm", "GANETI_INSTANCE_STATUS=up",
			"GANETI_CLUSTER=cluster.example.com", "GANETI_MASTER=" + nodeName,
		}
	}
	if out, code, err := run(20*time.Second, hookEnv("pre"), hook); err != nil || code != 0 {
		return fmt.Errorf("%s: pre hook: exit %d, %v: %s", name, code, err, out)
	}
	// Ganeti's `timeout N xl shutdown -w`: a failure or timeout falls
	// through to destroy.
	run(5*time.Second, nil, shim, "shutdown", "-w", name)
	if out, code, err := run(20*time.Second, nil, shim, "destroy", name); err != nil || (code != 0 && !strings.Contains(out, "not exist") && !strings.Contains(out, "invalid domain")) {
		return fmt.Errorf("%s: destroy: exit %d, %v: %s", name, code, err, out)
	}
	cfg := filepath.Join(n.xenDir, name)
	if out, code, err := run(20*time.Second, nil, n.sim, "create", cfg); err != nil || code != 0 {
		return fmt.Errorf("%s: create: exit %d, %v: %s", name, code, err, out)
	}
	po.answered(name) // an operator's reboot starts it again
	if out, code, err := run(20*time.Second, hookEnv("post"), hook); err != nil || code != 0 {
		return fmt.Errorf("%s: post hook: exit %d, %v: %s", name, code, err, out)
	}
	return nil
}

// TestGuestActionOnReplacedDomain replays the race of the randomized
// test that once failed it: a guest action aimed at a domain a
// concurrent Ganeti reboot had just replaced (destroyed, then created
// again under the same name). The action is counted and skipped, and it
// does not reach the new domain, which was not the one chosen.
func TestGuestActionOnReplacedDomain(t *testing.T) {
	const name = "a.example.com"
	n := newNode(t, xen.XL, []instance{{name: name, admin: "up"}}, "")
	n.start(name)
	old, ok := n.domain(name)
	if !ok {
		t.Fatal("no domain")
	}
	n.xl("destroy", strconv.Itoa(old.ID))
	n.startAgain(name)
	var vanished atomic.Int64
	if guestAct(t, n, "poweroff", old, &vanished) {
		t.Fatal("a poweroff of the replaced domain reported done")
	}
	if vanished.Load() != 1 {
		t.Errorf("vanished = %d, want 1", vanished.Load())
	}
	now, ok := n.domain(name)
	if !ok || now.ID == old.ID || !now.State.Alive() {
		t.Fatalf("the new domain was touched: %+v", now)
	}
	if !guestAct(t, n, "poweroff", now, &vanished) || vanished.Load() != 1 {
		t.Fatalf("a poweroff of the running domain: vanished %d", vanished.Load())
	}
	if d, _ := n.domain(name); !d.State.UserPoweredOff() {
		t.Errorf("after its guest's poweroff: %s", d.State.Letters)
	}
}
