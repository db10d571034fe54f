//go:build itest

package itest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/detect"
	"ganeti-userdown/internal/ganeti"
	"ganeti-userdown/internal/state"
	"ganeti-userdown/watcher"
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "itest: needs root (it creates network namespaces and mounts): run `make itest` as root")
		return 1
	}
	var missing []string
	for _, tool := range []string{"gnt-cluster", "ganeti-watcher", "sshd", "socat", "fping", "nsenter", "unshare", "ip", "dpkg", "ssh-keygen"} {
		if !haveTool(tool) {
			missing = append(missing, tool)
		}
	}
	if _, err := os.Stat("/usr/lib/xen-common/bin/xen-utils-wrapper"); err != nil {
		missing = append(missing, "xen-utils-wrapper (xen-utils-4.17)")
	}
	if len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "itest: missing %s; install with:\n  %s xen-utils-4.17\n", strings.Join(missing, ", "), packagesHint)
		return 1
	}
	deb := os.Getenv("ITEST_DEB")
	if _, err := os.Stat(deb); deb == "" || err != nil {
		fmt.Fprintf(os.Stderr, "itest: ITEST_DEB=%q must name the package `make deb` built (`make itest` sets it)\n", deb)
		return 1
	}
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		fmt.Fprintln(os.Stderr, "itest: systemd runs here: Ganeti's daemon-util would hand the daemons to it, outside the namespaces")
		return 1
	}
	tmp, err := os.MkdirTemp("", "userdown-itest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "itest:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	xensim := filepath.Join(tmp, "xensim")
	build := exec.Command("go", "build", "-o", xensim, "ganeti-userdown/testdata/xensim")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "itest: go build xensim: %v\n%s", err, out)
		return 1
	}

	// A run killed outright leaves its namespaces: clean them first.
	for _, err := range tearDown() {
		fmt.Fprintln(os.Stderr, "itest: cleaning up an earlier run:", err)
	}
	before := hostSnapshot()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "itest: %v: tearing down\n", s)
		for _, err := range tearDown() {
			fmt.Fprintln(os.Stderr, "itest: teardown:", err)
		}
		os.Exit(1)
	}()

	// go test's own -timeout would panic past the teardown: this one
	// tears down first.
	limit := 30 * time.Minute
	if v := os.Getenv("ITEST_TIMEOUT"); v != "" {
		if limit, err = time.ParseDuration(v); err != nil {
			fmt.Fprintf(os.Stderr, "itest: ITEST_TIMEOUT=%q: %v\n", v, err)
			return 1
		}
	}
	watchdog := time.AfterFunc(limit, func() { sigs <- timeoutSignal{limit} })
	defer watchdog.Stop()

	code := 1
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	err = setUpNodes(ctx, deb, xensim)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "itest: setting up the nodes:", err)
	} else {
		fmt.Printf("itest: nodes set up in %.1fs\n", time.Since(start).Seconds())
		code = m.Run()
	}
	signal.Stop(sigs)
	for _, err := range tearDown() {
		fmt.Fprintln(os.Stderr, "itest: teardown:", err)
		code = 1
	}
	if diff := cmp.Diff(before, hostSnapshot()); diff != "" {
		fmt.Fprintf(os.Stderr, "itest: the machine outside the namespaces changed (-before +after):\n%s", diff)
		code = 1
	}
	fmt.Printf("itest: %.1fs in all\n", time.Since(start).Seconds())
	return code
}

// timeoutSignal is the suite running past ITEST_TIMEOUT, handled like an
// interrupt.
type timeoutSignal struct{ limit time.Duration }

func (s timeoutSignal) String() string { return fmt.Sprintf("running past ITEST_TIMEOUT=%v", s.limit) }
func (timeoutSignal) Signal()          {}

// haveTool looks for a command in PATH and in the sbin directories, which
// a non-login root shell may lack in PATH.
func haveTool(name string) bool {
	if _, err := exec.LookPath(name); err == nil {
		return true
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return true
		}
	}
	return false
}

// trials is how often each race scenario runs (ITEST_TRIALS, default 20).
func trials(t *testing.T) int {
	n := 20
	if v := os.Getenv("ITEST_TRIALS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("ITEST_TRIALS=%q: want a positive number", v)
		}
	}
	return n
}

// TestRealGaneti runs every scenario on one cluster, in order: first as
// a single-node cluster, then with node2 joined.
func TestRealGaneti(t *testing.T) {
	diagnoseOnFailure(t)
	step := func(name string, f func(t *testing.T)) bool {
		start := time.Now()
		ok := t.Run(name, f)
		t.Logf("%s: %.1fs", name, time.Since(start).Seconds())
		return ok
	}
	if !step("single/init", func(t *testing.T) { initCluster(t) }) {
		t.Fatal("no cluster: the other scenarios cannot run")
	}
	step("single/user-poweroff", testSingleNodePoweroff)
	step("single/stop-reboot-remove", testStopRebootRemove)
	if !step("two/add-node", func(t *testing.T) { addNode2(t) }) {
		t.Fatal("no second node: the other scenarios cannot run")
	}
	step("two/poweroff-race", testPoweroffRace)
	step("two/crash-other-node", testCrashOnOtherNode)
	step("two/failover-migrate", testFailoverMigrate)
	step("two/add-beside-preserved", testAddBesidePreserved)
	step("two/forced-start", testForcedStart)
	step("two/operator-start-after-mark-down", testOperatorStartAfterMarkDown)
}

// Reference: doc/design.md, "Why each part exists" 3. On one node the
// watcher's own hook marks the instance down before the restart pass.
func testSingleNodePoweroff(t *testing.T) {
	addInstance(t, "s1.example.com", node1)
	since := lastJob(t)
	node1.run(t, "xl", "sim", "poweroff", "s1.example.com")
	runWatchers(t, node1)
	waitJobs(t, since)
	if got := instances(t)["s1.example.com"]; got.Status != "ADMIN_down" {
		t.Errorf("after a user poweroff and a watcher run: %v, want ADMIN_down", got)
	}
	if d, ok := node1.domains(t)["s1.example.com"]; ok {
		t.Errorf("the powered-off domain is still there: %v", d)
	}
	js := jobsAfter(t, since)
	if countJobs(js, "INSTANCE_SHUTDOWN(s1.example.com)", "success") != 1 || countJobs(js, "INSTANCE_STARTUP(s1.example.com)", "success") != 0 {
		t.Errorf("jobs: %v, want one successful mark-down and no start", js)
	}
	checkJobs(t, js, nil)
	checkNoLiveDestroy(t)
}

// Reference: doc/design.md, "Decisions", safety rule 3: what Ganeti or
// an operator asked for is never marked down, and a watcher run right
// after each operation changes nothing.
func testStopRebootRemove(t *testing.T) {
	const name = "s1.example.com"
	ensureRunning(t, name)
	check := func(op string, wantStatus string) {
		t.Helper()
		since := lastJob(t)
		runWatchers(t, node1)
		waitJobs(t, since)
		got := instances(t)[name]
		if got.Status != wantStatus {
			t.Errorf("after %s and a watcher run: %v, want %s", op, got, wantStatus)
		}
		if js := jobsAfter(t, since); len(js) != 0 {
			t.Errorf("after %s the watcher run made jobs: %v", op, js)
		}
		d, ok := node1.domains(t)[name]
		if wantStatus == "running" && (!ok || !d.alive()) {
			t.Errorf("after %s: domain %v (found %v), want it running", op, d, ok)
		}
		if wantStatus != "running" && ok {
			t.Errorf("after %s: domain %v still there", op, d)
		}
		checkNoLiveDestroy(t)
	}
	master.run(t, "gnt-instance", "shutdown", name)
	check("gnt-instance shutdown", "ADMIN_down")
	master.run(t, "gnt-instance", "startup", name)
	check("gnt-instance startup", "running")
	for _, typ := range []string{"soft", "hard", "full"} {
		before := node1.domains(t)[name]
		master.run(t, "gnt-instance", "reboot", "--type="+typ, name)
		check("reboot --type="+typ, "running")
		if after := node1.domains(t)[name]; after.ID == before.ID {
			t.Errorf("reboot --type=%s: domain id still %d: the guest did not reboot", typ, after.ID)
		}
	}
	checkStopGuardRefusal(t, name, node1)
	master.run(t, "gnt-instance", "remove", "-f", name)
	if got, ok := instances(t)[name]; ok {
		t.Errorf("after gnt-instance remove: %v", got)
	}
	if d, ok := node1.domains(t)[name]; ok {
		t.Errorf("after gnt-instance remove: domain %v", d)
	}
	runWatchers(t, node1)
	checkNoLiveDestroy(t)
}

// checkStopGuardRefusal: while a mark-down of name decided on a domain
// that is gone since is in flight (its record written as the watcher
// writes it), a Ganeti shutdown of the running instance is refused by the
// instance-stop pre hook, and the output of the real gnt-instance
// shutdown, read by the CLI backend's parser, is what the watcher takes
// for that refusal. The instance keeps running.
//
// Reference: doc/design.md, "The stop guard", row 2, and "The watcher
// recognises that text in the job's error".
func checkStopGuardRefusal(t *testing.T, name string, on *node) {
	t.Helper()
	d, ok := on.domains(t)[name]
	if !ok || !d.alive() {
		t.Fatalf("%s: domain %v (found %v), want it running", name, d, ok)
	}
	rec, err := json.Marshal(state.MarkDown{Instance: name, DomID: d.ID + 1000, State: "---s--", Submitted: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const dir = "/var/lib/ganeti-userdown/start-guard"
	record := dir + "/inflight@" + name + ".json"
	if _, err := on.output(ctx, rec, "/bin/sh", "-ec", "umask 077; mkdir -p "+dir+"; cat >"+record); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if _, err := on.sh(ctx, "rm -f "+record); err != nil {
			t.Error(err)
		}
	}()
	since := lastJob(t)
	// As the CLI backend runs it (ganeti.ShutdownArgs), stdout and
	// stderr together.
	args := ganeti.ShutdownArgs("gnt-instance", 0, "ganeti-userdown itest", name)
	out, runErr := master.command(ctx, nil, args...).CombinedOutput()
	if runErr == nil {
		t.Fatalf("%s succeeded; want the stop guard to refuse it:\n%s", strings.Join(args, " "), out)
	}
	if !strings.Contains(string(out), detect.StopRefused+name+":") {
		t.Errorf("gnt-instance shutdown output lacks the refusal line %q:\n%s", detect.StopRefused+name+":", out)
	}
	_, err = ganeti.ParseShutdownOutput(name, out, runErr)
	if !watcher.RefusedByStopGuard(err) {
		t.Errorf("the CLI backend's reading of the refusal (%v) is not what the watcher takes for a stop guard refusal:\n%s", err, out)
	}
	waitJobs(t, since)
	if got := instances(t)[name]; got.Status != "running" {
		t.Errorf("after the refused shutdown: %v, want running", got)
	}
	if after, ok := on.domains(t)[name]; !ok || after.ID != d.ID || !after.alive() {
		t.Errorf("after the refused shutdown: domain %v (found %v), want domain %d running", after, ok, d.ID)
	}
	checkNoLiveDestroy(t)
}

// raceResult is how one user poweroff ended.
type raceResult int

const (
	held raceResult = iota
	undone
	other
)

// poweroffTrial powers off the guest of name (on its node), starts the
// watchers of both nodes together and reports how it ended.
func poweroffTrial(t *testing.T, name string, on *node) raceResult {
	t.Helper()
	ensureRunning(t, name)
	since := lastJob(t)
	on.run(t, "xl", "sim", "poweroff", name)
	runWatchers(t, node1, node2)
	// RAPI, not gnt-*: a Python start per query would double a trial's
	// time on two loaded cores. The series ends with gnt-instance list.
	js := waitJobs(t, since)
	got := rapiInstance(t, name)
	// The start pre hook may refuse the watcher's stale restart: the job
	// fails with HooksAbort and the watcher counts a failed attempt.
	checkJobs(t, js, map[string]string{"INSTANCE_STARTUP(" + name + ")": "error"})
	checkNoLiveDestroy(t)
	d, domOK := on.domains(t)[name]
	switch {
	case got.Status == "ADMIN_down" && got.Admin == "down":
		if domOK {
			t.Errorf("%s held, but its domain is still there: %v", name, d)
		}
		if n := countJobs(js, "INSTANCE_STARTUP("+name+")", "success"); n != 0 {
			t.Errorf("%s held, yet %d start jobs succeeded: %v", name, n, js)
		}
		return held
	case got.Status == "running" && got.Admin == "up":
		if !domOK || !d.alive() {
			t.Errorf("%s undone: Ganeti says running, the domain is %v (found %v)", name, d, domOK)
		}
		return undone
	}
	t.Errorf("after a user poweroff of %s: %v, jobs %v", name, got, js)
	return other
}

// Reference: issue "Every node of a multi-node cluster: a user's poweroff
// must never be undone". The watchers of both nodes start together, as
// cron starts them; on the master the hook marks down before the
// restart pass, on the other node only the start-hook guard can keep the
// master's stale restart from undoing the poweroff.
func testPoweroffRace(t *testing.T) {
	cases := []struct {
		node *node
		name string
	}{{node1, "m1.example.com"}, {node2, "o2.example.com"}}
	for _, c := range cases {
		addInstance(t, c.name, c.node)
	}
	n := trials(t)
	summary := []string{}
	for _, c := range cases {
		counts := map[raceResult]int{}
		start := time.Now()
		var last raceResult
		for i := 0; i < n; i++ {
			last = poweroffTrial(t, c.name, c.node)
			counts[last]++
		}
		line := fmt.Sprintf("user poweroff on %s (%s): undone %d/%d, held %d, other %d (%.1fs per trial)",
			c.node.name, map[bool]string{true: "master", false: "not master"}[c.node == master],
			counts[undone], n, counts[held], counts[other], time.Since(start).Seconds()/float64(n))
		if got := instances(t)[c.name]; got.Status != map[raceResult]string{held: "ADMIN_down", undone: "running"}[last] {
			t.Errorf("gnt-instance list after the last trial: %v, the trial found it %v", got, map[raceResult]string{held: "held", undone: "undone", other: "other"}[last])
		}
		summary = append(summary, line)
		fmt.Println("itest: race:", line)
		if counts[undone] != 0 {
			t.Errorf("%s: a user's poweroff was undone", line)
		}
	}
	if out := os.Getenv("ITEST_RACE_REPORT"); out != "" {
		os.WriteFile(out, []byte(strings.Join(summary, "\n")+"\n"), 0o644)
	}
}

// Reference: doc/design.md, "Decisions": a crash is the guest failing;
// the crashed domain is destroyed so that Ganeti restarts it, here on
// the node that is not the master.
func testCrashOnOtherNode(t *testing.T) {
	const name = "o2.example.com"
	ensureRunning(t, name)
	before := node2.domains(t)[name]
	since := lastJob(t)
	node2.run(t, "xl", "sim", "crash", name)
	runWatchers(t, node1, node2)
	waitJobs(t, since)
	got := instances(t)[name]
	d, ok := node2.domains(t)[name]
	if got.Status != "running" || !ok || !d.alive() || d.ID == before.ID {
		t.Errorf("after a crash and one watcher round: %v, domain %v (found %v, id before %d); want it restarted", got, d, ok, before.ID)
	}
	js := jobsAfter(t, since)
	if countJobs(js, "INSTANCE_SHUTDOWN("+name+")", "success") != 0 {
		t.Errorf("a crash was marked down: %v", js)
	}
	checkJobs(t, js, nil)
	checkNoLiveDestroy(t)
}

// failover and migrate of a diskless (externally mirrored) instance, both
// ways, each followed by a round of both watchers that must change
// nothing.
func testFailoverMigrate(t *testing.T) {
	const name = "o2.example.com"
	ensureRunning(t, name)
	for _, op := range []struct {
		args []string
		to   *node
	}{
		{[]string{"failover", "-f"}, node1},
		{[]string{"failover", "-f"}, node2},
		{[]string{"migrate", "-f"}, node1},
		{[]string{"migrate", "-f"}, node2},
	} {
		desc := fmt.Sprintf("gnt-instance %s to %s", strings.Join(op.args, " "), op.to.name)
		master.run(t, append(append([]string{"gnt-instance"}, op.args...), name)...)
		since := lastJob(t)
		runWatchers(t, node1, node2)
		waitJobs(t, since)
		got := instances(t)[name]
		if got.Status != "running" || got.PNode != op.to.name {
			t.Errorf("after %s and a watcher round: %v", desc, got)
		}
		for _, n := range nodes {
			d, ok := n.domains(t)[name]
			switch {
			case n == op.to && (!ok || !d.alive()):
				t.Errorf("after %s: on %s domain %v (found %v), want it running", desc, n.name, d, ok)
			case n != op.to && ok:
				t.Errorf("after %s: %s still has %v", desc, n.name, d)
			}
		}
		if js := jobsAfter(t, since); len(js) != 0 {
			t.Errorf("after %s the watchers made jobs: %v", desc, js)
		}
		checkNoLiveDestroy(t)
	}
}

// instance-add on a node that holds a preserved (user-powered-off)
// domain: the new instance starts, and the watchers then mark the
// powered-off one down.
func testAddBesidePreserved(t *testing.T) {
	const off, added = "o2.example.com", "a2.example.com"
	ensureRunning(t, off)
	node2.run(t, "xl", "sim", "poweroff", off)
	since := lastJob(t)
	addInstance(t, added, node2)
	if got := instances(t)[added]; got.Status != "running" {
		t.Errorf("instance added beside a preserved domain: %v", got)
	}
	if d := node2.domains(t)[off]; !d.Shutdown {
		t.Errorf("the add touched the preserved domain: %v", d)
	}
	// Only node2's watcher: the mark-down, not the race, is under test.
	runWatchers(t, node2)
	waitJobs(t, since)
	all := instances(t)
	if all[off].Status != "ADMIN_down" || all[added].Status != "running" {
		t.Errorf("after node2's watcher: %v; %v", all[off], all[added])
	}
	checkJobs(t, jobsAfter(t, since), nil)
	checkNoLiveDestroy(t)
	master.run(t, "gnt-instance", "remove", "-f", added)
}

// An operator's forced start after a user poweroff runs the instance,
// and the watchers afterwards leave it running: once after the
// poweroff was marked down (master's instance), once before any watcher
// saw it (the other node's instance, its domain still preserved).
func testForcedStart(t *testing.T) {
	for _, c := range []struct {
		node       *node
		name       string
		markedDown bool
	}{{node1, "m1.example.com", true}, {node2, "o2.example.com", false}} {
		ensureRunning(t, c.name)
		c.node.run(t, "xl", "sim", "poweroff", c.name)
		if c.markedDown {
			since := lastJob(t)
			runWatchers(t, c.node)
			waitJobs(t, since)
			if got := instances(t)[c.name]; got.Status != "ADMIN_down" {
				t.Errorf("%s: not marked down before the start: %v", c.name, got)
				continue
			}
		}
		since := lastJob(t)
		master.run(t, "gnt-instance", "startup", "--force", c.name)
		d, ok := c.node.domains(t)[c.name]
		if got := instances(t)[c.name]; got.Status != "running" || !ok || !d.alive() {
			t.Errorf("%s: after startup --force: %v, domain %v (found %v)", c.name, got, d, ok)
		}
		runWatchers(t, node1, node2)
		waitJobs(t, since)
		if got := instances(t)[c.name]; got.Status != "running" {
			t.Errorf("%s: the watchers after a forced start: %v", c.name, got)
		}
		checkJobs(t, jobsAfter(t, since), nil)
		checkNoLiveDestroy(t)
	}
}

// Reference: doc/design.md, "The start guard", row 5 and its first
// residual case: an operator's plain start right after our mark-down is
// refused once, with a message that says how to start it, and the start
// repeated works.
func testOperatorStartAfterMarkDown(t *testing.T) {
	const name = "m1.example.com"
	ensureRunning(t, name)
	node1.run(t, "xl", "sim", "poweroff", name)
	since := lastJob(t)
	runWatchers(t, node1)
	waitJobs(t, since)
	if got := instances(t)[name]; got.Status != "ADMIN_down" {
		t.Fatalf("not marked down: %v", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := master.output(ctx, nil, "gnt-instance", "startup", name)
	if err == nil || !strings.Contains(err.Error(), "ganeti-userdown: not starting "+name) || !strings.Contains(err.Error(), "start it again") {
		t.Errorf("the first plain start after the mark-down: %v (stdout %q); want the start guard's refusal", err, out)
	}
	if got := instances(t)[name]; got.Status != "ADMIN_down" {
		t.Errorf("after the refused start: %v", got)
	}
	master.run(t, "gnt-instance", "startup", name)
	if got := instances(t)[name]; got.Status != "running" {
		t.Errorf("the start repeated: %v", got)
	}
	checkNoLiveDestroy(t)
}
