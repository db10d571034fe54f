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
	"testing"
	"time"

	"ganeti-userdown/internal/xen"
	"ganeti-userdown/testdata/ganetifake"
	"ganeti-userdown/testdata/xensim/simlog"
)

// TestRandomized interleaves guest actions (poweroff, reboot, crash,
// watchdog), shutdowns through the shim (waiting or not, single or -a),
// Ganeti's own stops and starts, Ganeti reboot jobs running concurrently
// (hook intent, shutdown through the shim, start again, intent cleared),
// and detect/destroy/watcher runs, for thousands of steps within a time
// bound, and checks the safety rules throughout against the simulator's
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
	n := newNode(t, xen.XL, insts, "")
	shim := n.installShim()
	hook := n.hookBinary()
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

	h := &history{}
	fail := func(step int, instance string, format string, args ...any) {
		t.Helper()
		t.Errorf("step %d (seed %d): %s", step, seed, fmt.Sprintf(format, args...))
		t.Log(h.String())
		t.Log(callsAbout(n.calls(), instance, 40))
		t.FailNow()
	}

	// Ganeti reboot jobs run concurrently with the steps; their errors
	// are collected and reported at the next step.
	var reboots sync.WaitGroup
	rebootErrs := make(chan error, 64)
	defer reboots.Wait()

	checked := map[int64]bool{}
	// Only mark-downs are judged here: the crash restarts that
	// ganeti-userdown also submits (OP_INSTANCE_STARTUP) name it too.
	unlisted := 0
	var shimRuns []span // the test's own shutdowns through the shim
	checkJobs := func(step int) {
		var fresh []ganetifake.Job
		for _, j := range n.rapi.State().Jobs {
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

	deadline := time.Now().Add(budget)
	steps, runs := 0, 0
	counts := map[string]int{}
	spent := map[string]time.Duration{}
	for ; time.Now().Before(deadline) && steps < 20000; steps++ {
		select {
		case err := <-rebootErrs:
			fail(steps, "", "ganeti reboot: %v", err)
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
		r := rng.IntN(100)
		switch {
		case r < 18:
			if d, ok := pick(alive); ok {
				what, target = "poweroff", d.Name
				guest(n, "poweroff", d.Name)
			}
		case r < 25:
			if d, ok := pick(alive); ok {
				what, target = "reboot", d.Name
				guest(n, "reboot", d.Name)
			}
		case r < 31:
			if d, ok := pick(alive); ok {
				what, target = "crash", d.Name
				guest(n, "crash", d.Name)
			}
		case r < 34:
			if d, ok := pick(alive); ok {
				what, target = "watchdog", d.Name
				guest(n, "watchdog", d.Name)
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
				n.run(shim, args...)
				shimRuns = append(shimRuns, span{from, time.Now()})
				if args[1] == "-w" {
					// The caller waited; now it destroys the domain, as
					// Ganeti's node daemon does (without -w the reaper
					// does it).
					n.run(shim, "destroy", strconv.Itoa(d.ID))
				}
			}
		case r < 44:
			what = "shim shutdown -a"
			from := time.Now()
			n.run(shim, "shutdown", "-a", "-w")
			shimRuns = append(shimRuns, span{from, time.Now()})
		case r < 50:
			name := names[rng.IntN(len(names))]
			what, target = "ganeti stop", name
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
					err = n.ganetiReboot(hook, shim, name, id)
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
		case r < 70:
			what = "restart pass"
			n.restartPassOver(doms)
			if _, ok := doms["scratch"]; !ok {
				n.startAgain("scratch")
			}
		case r < 83:
			what = "detect --mark-down"
			runs++
			if _, errs, code := n.run(n.detect, "--mark-down"); code != 0 && code != 1 {
				fail(steps, "", "userdown-detect --mark-down: exit %d: %s", code, errs)
			}
		case r < 96:
			what = "destroy"
			runs++
			if _, errs, code := n.run(n.destroy); code != 0 {
				fail(steps, "", "userdown-destroy: exit %d: %s", code, errs)
			}
		default:
			what = "watcher"
			runs++
			n.watcher()
		}
		if what == "" {
			// Nothing to act on (every domain down): Ganeti restarts.
			what = "restart pass"
			n.restartPassOver(doms)
		}
		h.add(steps, stepStart, what, target, doms)
		counts[what]++
		checkJobs(steps)
		spent[what] += time.Since(stepStart)
	}
	// Let reapers, reboots and jobs still running finish, then check
	// everything.
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
	deferred := 0
	for _, j := range st.Jobs {
		if fromUserdown(j) && j.Status == "canceled" {
			deferred++
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
func (n *node) ganetiReboot(hook, shim, name string, id int64) (err error) {
	defer func() {
		status := "success"
		if err != nil {
			status = "error"
		}
		if ferr := n.rapi.Engine.Finish(id, status, nil); ferr != nil && err == nil {
			err = ferr
		}
	}()
	run := func(timeout time.Duration, env []string, prog string, args ...string) (string, int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, prog, args...)
		cmd.Env = append(n.env(), env...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return out.String(), ee.ExitCode(), nil
		}
		return out.String(), 0, err
	}
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
	if out, code, err := run(20*time.Second, hookEnv("post"), hook); err != nil || code != 0 {
		return fmt.Errorf("%s: post hook: exit %d, %v: %s", name, code, err, out)
	}
	return nil
}
