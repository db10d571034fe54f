package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/testbin"
	"ganeti-userdown/internal/xen"
	"ganeti-userdown/testdata/ganetifake"
)

// daemonNode is a node with the xenstored simulator, which the Xen
// simulator notifies of every shutdown, crash and destroy, and
// userdown-watchd configured to watch it.
type daemonNode struct {
	*node
	xsSocket string
	xsBin    string
	xs       *exec.Cmd
	watchd   string
	daemon   *exec.Cmd
	daemonWG sync.WaitGroup
	exitCode int
	logPath  string
	textfile string
	proxy    *rapiProxy
}

// daemonOptions configure newDaemonNode.
type daemonOptions struct {
	rescan string // [events] rescan, default 1h: only events act
	extra  string // more configuration
	proxy  bool   // reach the RAPI fake through a proxy the test can cut
}

func newDaemonNode(t testing.TB, instances []instance, o daemonOptions) *daemonNode {
	t.Helper()
	if o.rescan == "" {
		o.rescan = "1h"
	}
	dir := scratchDir(t)
	d := &daemonNode{
		xsSocket: filepath.Join(dir, "xenstored.socket"),
		xsBin:    testbin.Build(t, "ganeti-userdown/testdata/xenstored"),
		watchd:   testbin.Build(t, "ganeti-userdown/cmd/userdown-watchd"),
		logPath:  filepath.Join(dir, "watchd.log"),
		textfile: filepath.Join(dir, "node-exporter", "ganeti-userdown.prom"),
	}
	if err := os.MkdirAll(filepath.Dir(d.textfile), 0o755); err != nil {
		t.Fatal(err)
	}
	extra := fmt.Sprintf("%s\n[events]\nxenstore = %q\nrescan = %q\ndebounce = \"20ms\"\n\n[metrics]\ntextfile = %q\n",
		o.extra, d.xsSocket, o.rescan, d.textfile)
	d.node = newNode(t, xen.XL, instances, extra)
	n := d.node
	// The simulator tells xenstored of every domain event, as Xen does.
	n.simEnv = append(n.simEnv, "XENSTORED_PATH="+d.xsSocket)
	if err := n.rapi.Update(func(st *ganetifake.State) error {
		st.Toolstack.Env = n.simEnv
		st.Toolstack.ConfigDir = n.xenDir
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if o.proxy {
		d.proxy = startProxy(t, strings.TrimPrefix(n.rapi.URL, "https://"))
		cfg, err := os.ReadFile(n.config)
		if err != nil {
			t.Fatal(err)
		}
		cfg = bytes.Replace(cfg, []byte(fmt.Sprintf("rapi_url = %q", n.rapi.URL)), []byte(fmt.Sprintf("rapi_url = %q", "https://"+d.proxy.addr)), 1)
		if err := os.WriteFile(n.config, cfg, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d.startXenstored()
	t.Cleanup(func() {
		d.stopDaemon()
		d.stopXenstored()
	})
	return d
}

// startXenstored runs the xenstored simulator and waits until it listens.
func (d *daemonNode) startXenstored() {
	d.t.Helper()
	cmd := exec.Command(d.xsBin, "-socket", d.xsSocket)
	out, err := cmd.StdoutPipe()
	if err != nil {
		d.t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "listening") {
		d.t.Fatalf("xenstored simulator: %q, %v", line, err)
	}
	go io.Copy(io.Discard, out)
	d.xs = cmd
}

func (d *daemonNode) stopXenstored() {
	if d.xs == nil {
		return
	}
	d.xs.Process.Signal(syscall.SIGTERM)
	d.xs.Wait()
	d.xs = nil
}

// startDaemon runs userdown-watchd and waits until its first run is
// recorded.
func (d *daemonNode) startDaemon() {
	d.t.Helper()
	logf, err := os.OpenFile(d.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		d.t.Fatal(err)
	}
	cmd := exec.Command(d.watchd, "-v")
	cmd.Env = d.env()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	logf.Close()
	d.daemon = cmd
	d.daemonWG.Add(1)
	go func() {
		defer d.daemonWG.Done()
		cmd.Wait()
		d.exitCode = cmd.ProcessState.ExitCode()
	}()
	d.waitFor("the daemon's first run", func() bool {
		st, ok, _ := state.Open(d.stateDir).LoadDaemonStatus()
		return ok && st.PID == cmd.Process.Pid
	})
}

// stopDaemon sends SIGTERM and returns the exit code.
func (d *daemonNode) stopDaemon() int {
	if d.daemon == nil {
		return 0
	}
	d.daemon.Process.Signal(syscall.SIGTERM)
	d.daemonWG.Wait()
	d.daemon = nil
	return d.exitCode
}

func (d *daemonNode) log() string {
	b, _ := os.ReadFile(d.logPath)
	return string(b)
}

// waitFor polls cond for up to 20 seconds, failing with what it waited
// for and the daemon's log.
func (d *daemonNode) waitFor(what string, cond func() bool) {
	d.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			d.t.Fatalf("%s: not within 20s\ndaemon log:\n%s", what, d.log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// jobs returns the fake cluster's jobs of one op (OP_INSTANCE_SHUTDOWN,
// OP_INSTANCE_STARTUP) per instance.
func (d *daemonNode) jobs(op string) map[string]int {
	m := map[string]int{}
	for _, j := range d.rapi.State().Jobs {
		if j.OpID == op {
			m[j.Instance]++
		}
	}
	return m
}

// upInstances returns n admin-up instances vm000.example.com ... of this
// node.
func upInstances(n int) []instance {
	insts := make([]instance, n)
	for i := range insts {
		insts[i] = instance{name: fmt.Sprintf("vm%03d.example.com", i), admin: "up"}
	}
	return insts
}

// startAll starts the domains of insts.
func (d *daemonNode) startAll(insts []instance) {
	d.t.Helper()
	for _, in := range insts {
		d.start(in.name)
	}
}

// allDown reports whether every instance of the fake cluster is down.
func (d *daemonNode) allDown() bool {
	for _, in := range d.rapi.State().Instances {
		if in.AdminState != "down" {
			return false
		}
	}
	return true
}

// metric returns the value of one sample line of the textfile, or "".
func (d *daemonNode) metric(series string) string {
	b, _ := os.ReadFile(d.textfile)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			return v
		}
	}
	return ""
}

// Reference: doc/design.md, "Event daemon": a user's poweroff is marked
// down and its domain gone within seconds, without any watcher run.
func TestDaemonMarksDownAUserPoweroff(t *testing.T) {
	d := newDaemonNode(t, []instance{{name: "web1.example.com", admin: "up"}, {name: "db1.example.com", admin: "up"}}, daemonOptions{})
	d.start("web1.example.com")
	d.start("db1.example.com")
	d.startDaemon()
	off := time.Now()
	d.xl("sim", "poweroff", "web1.example.com")
	d.waitFor("web1 marked down and its domain gone", func() bool {
		_, there := d.domain("web1.example.com")
		return d.instanceState("web1.example.com") == "down" && !there
	})
	t.Logf("poweroff to marked down and gone: %s", time.Since(off))
	if s := d.instanceState("db1.example.com"); s != "up" {
		t.Errorf("db1 admin state %q, want up", s)
	}
	if dom, ok := d.domain("db1.example.com"); !ok || !dom.State.Alive() {
		t.Errorf("db1: %+v, %v; want running", dom, ok)
	}
	if got := d.jobs("OP_INSTANCE_SHUTDOWN"); got["web1.example.com"] != 1 || len(got) != 1 {
		t.Errorf("shutdown jobs %v, want one for web1", got)
	}
	d.waitFor("the mark-down as the daemon's last action", func() bool {
		st, _, err := state.Open(d.stateDir).LoadDaemonStatus()
		return err == nil && strings.Contains(st.LastActionWhat, "marked down web1.example.com")
	})
	d.waitFor("the metrics", func() bool {
		return d.metric(`ganeti_userdown_mark_downs_total{source="userdown-watchd"}`) == "1" &&
			d.metric(`ganeti_userdown_event_to_mark_down_seconds_count`) == "1"
	})
	if code := d.stopDaemon(); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0\n%s", code, d.log())
	}
}

// Reference: doc/design.md, "Event daemon": a crash is dumped, destroyed
// and the instance started again through Ganeti, in seconds.
func TestDaemonRestartsACrash(t *testing.T) {
	dumps := t.TempDir()
	d := newDaemonNode(t, []instance{{name: "db1.example.com", admin: "up"}}, daemonOptions{extra: "[crash]\ndump_dir = \"" + dumps + "\"\n"})
	d.start("db1.example.com")
	before, _ := d.domain("db1.example.com")
	d.startDaemon()
	crash := time.Now()
	d.xl("sim", "crash", "db1.example.com")
	d.waitFor("db1 running again under a new domid", func() bool {
		dom, ok := d.domain("db1.example.com")
		return ok && dom.State.Alive() && dom.ID != before.ID
	})
	t.Logf("crash to running again: %s", time.Since(crash))
	if s := d.instanceState("db1.example.com"); s != "up" {
		t.Errorf("admin state %q, want up", s)
	}
	if left := readDir(t, dumps); len(left) != 1 || !strings.HasPrefix(left[0], "db1.example.com.") {
		t.Errorf("dump dir holds %v, want one dump of db1", left)
	}
	var reason string
	for _, j := range d.rapi.State().Jobs {
		if j.OpID == "OP_INSTANCE_STARTUP" && j.Instance == "db1.example.com" {
			b, _ := json.Marshal(j.Reason)
			reason = string(b)
		}
	}
	if !strings.Contains(reason, "ganeti-userdown") {
		t.Errorf("start job reason %s does not name ganeti-userdown", reason)
	}
	d.waitFor("the metrics", func() bool {
		return d.metric(`ganeti_userdown_crash_restarts_total{source="userdown-watchd"}`) == "1" &&
			d.metric(`ganeti_userdown_destroys_total{source="userdown-watchd"}`) == "1"
	})
}

// Reference: doc/design.md, "Decisions", safety rule 3: a stop Ganeti
// asked for through the shim is never marked down, whoever looks first.
func TestDaemonLeavesAGanetiStopAlone(t *testing.T) {
	d := newDaemonNode(t, []instance{{name: "web1.example.com", admin: "up"}}, daemonOptions{})
	shim := d.installShim()
	d.start("web1.example.com")
	d.startDaemon()
	d.xl("sim", "set", "web1.example.com", "shutdown-delay=100ms")
	if _, gone := d.ganetiStop(shim, "web1.example.com", true, 10*time.Second); gone {
		t.Fatal("shutdown -w left no domain to look at")
	}
	// Let the daemon see the shutdown's events and decide.
	time.Sleep(500 * time.Millisecond)
	if got := d.jobs("OP_INSTANCE_SHUTDOWN"); len(got) != 0 {
		t.Errorf("shutdown jobs %v after a Ganeti stop, want none\n%s", got, d.log())
	}
	if s := d.instanceState("web1.example.com"); s != "up" {
		t.Errorf("admin state %q: the daemon marked a Ganeti stop down", s)
	}
}

// Reference: doc/design.md, "Event daemon": xenstored going away is
// retried with backoff and logged once; events after its return act.
func TestDaemonSurvivesAXenstoredRestart(t *testing.T) {
	d := newDaemonNode(t, []instance{{name: "web1.example.com", admin: "up"}, {name: "db1.example.com", admin: "up"}}, daemonOptions{})
	d.start("web1.example.com")
	d.start("db1.example.com")
	d.startDaemon()
	d.stopXenstored()
	// A poweroff while xenstored is away is seen at the reconnection.
	d.xl("sim", "poweroff", "web1.example.com")
	time.Sleep(1500 * time.Millisecond) // a few reconnection attempts
	d.startXenstored()
	d.waitFor("web1 marked down after the reconnection", func() bool { return d.instanceState("web1.example.com") == "down" })
	d.xl("sim", "poweroff", "db1.example.com")
	d.waitFor("db1 marked down on its event", func() bool { return d.instanceState("db1.example.com") == "down" })
	log := d.log()
	if n := strings.Count(log, "event source lost"); n != 1 {
		t.Errorf("%d 'event source lost' lines, want 1:\n%s", n, log)
	}
	if n := strings.Count(log, "level=WARN") + strings.Count(log, "level=ERROR"); n != 1 {
		t.Errorf("%d warnings and errors for one xenstored restart, want 1:\n%s", n, log)
	}
}

// Reference: doc/design.md, "Event daemon": a RAPI outage is retried
// with backoff; the poweroff is marked down once the master answers.
func TestDaemonRetriesARAPIOutage(t *testing.T) {
	d := newDaemonNode(t, []instance{{name: "web1.example.com", admin: "up"}}, daemonOptions{proxy: true})
	d.start("web1.example.com")
	d.startDaemon()
	d.proxy.set(false)
	d.xl("sim", "poweroff", "web1.example.com")
	// The proxy opens again only once the daemon has met the outage,
	// however long the event takes to arrive on a loaded machine.
	d.waitFor("the outage met", func() bool { return strings.Contains(d.log(), "run failed; retrying with backoff") })
	if s := d.instanceState("web1.example.com"); s != "up" {
		t.Fatalf("marked down through a closed proxy? %q", s)
	}
	d.proxy.set(true)
	d.waitFor("web1 marked down after the outage", func() bool { return d.instanceState("web1.example.com") == "down" })
	if n := strings.Count(d.log(), "run failed; retrying with backoff"); n != 1 {
		t.Errorf("the outage logged %d times, want once:\n%s", n, d.log())
	}
	d.waitFor("the failure counted", func() bool {
		return d.metric(`ganeti_userdown_failures_total{source="userdown-watchd",kind="unreadable"}`) != "0"
	})
}

// 100 domains powering off at once: every instance marked down once,
// every domain gone.
func TestDaemonHundredPoweroffsAtOnce(t *testing.T) {
	insts := upInstances(100)
	d := newDaemonNode(t, insts, daemonOptions{})
	d.startAll(insts)
	d.startDaemon()
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := i; j < len(insts); j += 4 {
				// Not d.xl: a test may not fail from another goroutine.
				if _, errs, code := d.run(d.sim, "sim", "poweroff", insts[j].name); code != 0 {
					t.Errorf("poweroff %s: exit %d: %s", insts[j].name, code, errs)
				}
			}
		}(i)
	}
	wg.Wait()
	d.waitFor("all 100 marked down and gone", func() bool {
		return d.allDown() && len(d.domains()) == 1 // dom0
	})
	t.Logf("100 poweroffs to all marked down: %s", time.Since(start))
	for name, n := range d.jobs("OP_INSTANCE_SHUTDOWN") {
		if n != 1 {
			t.Errorf("%s: %d shutdown jobs, want 1", name, n)
		}
	}
}

// Reference: doc/design.md, "Event daemon": the daemon and the watcher
// hook share the run lock; together they mark each poweroff down once.
func TestDaemonAndWatcherHookTogether(t *testing.T) {
	insts := upInstances(12)
	d := newDaemonNode(t, insts, daemonOptions{})
	d.startAll(insts)
	d.startDaemon()
	done := make(chan struct{})
	var hookRuns int
	go func() {
		defer close(done)
		for i := 0; i < 4; i++ {
			d.watcher()
			hookRuns++
		}
	}()
	for _, in := range insts {
		d.xl("sim", "poweroff", in.name)
		time.Sleep(20 * time.Millisecond)
	}
	<-done
	d.waitFor("every instance marked down", d.allDown)
	for name, n := range d.jobs("OP_INSTANCE_SHUTDOWN") {
		if n != 1 {
			t.Errorf("%s: %d shutdown jobs, want 1 (the hook and the daemon acted twice)", name, n)
		}
	}
	if strings.Contains(d.hookLogText(), "failed") {
		t.Errorf("the watcher hook logged failures:\n%s", d.hookLogText())
	}
}

// Reference: doc/design.md, "Event daemon": the watcher hook starts the
// daemon when it is enabled and not running, and only then.
func TestWatcherHookStartsTheDaemon(t *testing.T) {
	d := newDaemonNode(t, []instance{{name: "web1.example.com", admin: "up"}}, daemonOptions{})
	d.start("web1.example.com")
	detachedLog := filepath.Join(d.dir, "detached.log")
	hook := func() string {
		cmd := exec.Command(d.hook)
		cmd.Env = d.env(
			"USERDOWN_DETECT="+d.detect, "USERDOWN_DESTROY="+d.destroy,
			"USERDOWN_WATCHD="+d.watchd,
			// As on a node without systemd: started detached, logging
			// to a scratch file.
			"USERDOWN_SYSTEMD_DIR="+filepath.Join(d.dir, "no-systemd"),
			"USERDOWN_WATCHER_LOCK="+filepath.Join(d.dir, "watcher.lock"),
			"USERDOWN_WATCHER_LOG="+d.hookLog, "USERDOWN_WATCHER_TIMEOUT=60",
			"USERDOWN_WATCHD_LOG="+detachedLog,
		)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("watcher hook: %v: %s", err, out)
		}
		return d.hookLogText()
	}
	log := hook()
	s := state.Open(d.stateDir)
	if running, _ := s.DaemonRunning(); !running {
		t.Fatalf("no daemon after the watcher hook:\n%s", log)
	}
	st, _, _ := s.LoadDaemonStatus()
	d.waitFor("the started daemon's first run", func() bool {
		st, _, _ = s.LoadDaemonStatus()
		return st.PID != 0
	})
	t.Cleanup(func() {
		// The daemon the hook started: stopped before its files go.
		syscall.Kill(st.PID, syscall.SIGTERM)
		for i := 0; i < 500 && syscall.Kill(st.PID, 0) == nil; i++ {
			time.Sleep(10 * time.Millisecond)
		}
	})
	if !strings.Contains(log, "started it (pid") {
		t.Errorf("the hook's log does not say it started the daemon:\n%s", log)
	}
	// It works: a poweroff is marked down with no further hook run.
	d.xl("sim", "poweroff", "web1.example.com")
	d.waitFor("web1 marked down by the started daemon", func() bool { return d.instanceState("web1.example.com") == "down" })
	// A second hook run finds it running and starts nothing.
	log2 := hook()
	if strings.Count(log2, "started it (pid") != 1 {
		t.Errorf("a second daemon was started:\n%s", log2)
	}
	if st2, _, _ := s.LoadDaemonStatus(); st2.PID != st.PID {
		t.Errorf("daemon pid changed from %d to %d", st.PID, st2.PID)
	}
}

// rapiProxy forwards TCP connections to the RAPI fake while on; off, it
// refuses them and cuts the open ones, as a master that went away does.
type rapiProxy struct {
	addr   string
	target string
	mu     sync.Mutex
	on     bool
	conns  []net.Conn
}

func startProxy(t testing.TB, target string) *rapiProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &rapiProxy{addr: l.Addr().String(), target: target, on: true}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			on := p.on
			if on {
				p.conns = append(p.conns, c)
			}
			p.mu.Unlock()
			if !on {
				c.Close()
				continue
			}
			go p.forward(c)
		}
	}()
	return p
}

func (p *rapiProxy) forward(c net.Conn) {
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, u)
	p.mu.Unlock()
	go func() { io.Copy(u, c); u.Close() }()
	io.Copy(c, u)
	c.Close()
}

// set turns the proxy on or off; off cuts every open connection.
func (p *rapiProxy) set(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.on = on
	if !on {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

// Reference: doc/design.md, "Event daemon": SIGHUP rereads the
// configuration; a bad file keeps the running one.
func TestDaemonReloadsOnSIGHUP(t *testing.T) {
	d := newDaemonNode(t, []instance{{name: "web1.example.com", admin: "up"}}, daemonOptions{})
	d.start("web1.example.com")
	d.startDaemon()
	good, err := os.ReadFile(d.config)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.config, append(append([]byte(nil), good...), "[policy]\ndefault = \"sometimes\"\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	d.daemon.Process.Signal(syscall.SIGHUP)
	d.waitFor("the failed reload logged", func() bool { return strings.Contains(d.log(), "reload failed") })
	if err := os.WriteFile(d.config, bytes.Replace(good, []byte(`debounce = "20ms"`), []byte(`debounce = "30ms"`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	d.daemon.Process.Signal(syscall.SIGHUP)
	d.waitFor("the reload logged", func() bool {
		return strings.Contains(d.log(), "configuration reloaded") && strings.Contains(d.log(), "debounce=30ms")
	})
	d.xl("sim", "poweroff", "web1.example.com")
	d.waitFor("web1 marked down after the reloads", func() bool { return d.instanceState("web1.example.com") == "down" })
	if code := d.stopDaemon(); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
}
