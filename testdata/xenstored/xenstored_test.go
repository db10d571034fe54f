package main

// The simulator against Debian's real xenstore clients (package
// xenstore-utils), pointed at it with XENSTORED_PATH, and the Xen
// simulator telling it about domains as the hypervisor tells xenstored.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/testbin"
	"ganeti-userdown/testdata/xenstored/xslog"
	"ganeti-userdown/testdata/xenstored/xstest"
	"ganeti-userdown/testdata/xenstored/xswire"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// debian runs one of Debian's xenstore clients against the simulator.
type debian struct {
	t   *testing.T
	env []string
}

func newDebian(t *testing.T, d *xstest.Daemon) *debian {
	t.Helper()
	for _, tool := range []string{"xenstore-read", "xenstore-write", "xenstore-watch", "xenstore-ls", "xenstore-list", "xenstore-rm", "xenstore-exists"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: apt-get install -y xenstore-utils", tool)
		}
	}
	return &debian{t: t, env: append(os.Environ(), d.Env())}
}

// run returns the tool's stdout, stderr and exit code.
func (c *debian) run(tool string, args ...string) (string, string, int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Env = c.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	case err != nil:
		c.t.Fatalf("%s %v: %v", tool, args, err)
	}
	return out.String(), errb.String(), 0
}

func (c *debian) ok(tool string, args ...string) string {
	c.t.Helper()
	out, errs, code := c.run(tool, args...)
	if code != 0 {
		c.t.Fatalf("%s %s: exit %d: %s", tool, strings.Join(args, " "), code, errs)
	}
	return out
}

// watcher is a running xenstore-watch; lines carries what it prints.
type watcher struct {
	lines chan string
	cmd   *exec.Cmd
}

// watch starts xenstore-watch on path and waits for its first line (the
// firing on registration), so that it is registered when watch returns.
func (c *debian) watch(path string, extra ...string) *watcher {
	c.t.Helper()
	cmd := exec.Command("xenstore-watch", append(extra, path)...)
	cmd.Env = c.env
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	w := &watcher{lines: make(chan string, 100), cmd: cmd}
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			w.lines <- s.Text()
		}
		close(w.lines)
	}()
	c.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if got := w.next(c.t); got != path {
		c.t.Fatalf("xenstore-watch %s: first line %q, want the watched path", path, got)
	}
	return w
}

func (w *watcher) next(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-w.lines:
		if !ok {
			t.Fatal("xenstore-watch ended")
		}
		return l
	case <-time.After(5 * time.Second):
		t.Fatal("xenstore-watch printed nothing within 5s")
	}
	return ""
}

// expect fails the test unless xenstore-watch prints want next.
func (w *watcher) expect(t *testing.T, want string) {
	t.Helper()
	if got := w.next(t); got != want {
		t.Errorf("xenstore-watch printed %q, want %q", got, want)
	}
}

func (w *watcher) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case l, ok := <-w.lines:
		if ok {
			t.Fatalf("xenstore-watch printed %q, want nothing", l)
		}
	case <-time.After(d):
	}
}

func TestDebianClientsReadWrite(t *testing.T) {
	d := xstest.Start(t)
	c := newDebian(t, d)
	c.ok("xenstore-write", "/vm/web1/name", "web1.example.com", "/vm/web1/memory", "128")
	if got := c.ok("xenstore-read", "/vm/web1/name", "/vm/web1/memory"); got != "web1.example.com\n128\n" {
		t.Errorf("xenstore-read = %q", got)
	}
	// Relative paths are dom0's.
	c.ok("xenstore-write", "data/x", "1")
	if got := c.ok("xenstore-read", "/local/domain/0/data/x"); got != "1\n" {
		t.Errorf("xenstore-read of a relative write = %q", got)
	}
	if got := c.ok("xenstore-list", "/vm/web1"); got != "name\nmemory\n" {
		t.Errorf("xenstore-list = %q", got)
	}
	want := `local = ""
 domain = ""
  0 = ""
   name = "Domain-0"
   domid = "0"
   data = ""
    x = "1"
tool = ""
vm = ""
 web1 = ""
  name = "web1.example.com"
  memory = "128"
`
	if diff := cmp.Diff(want, c.ok("xenstore-ls", "/")); diff != "" {
		t.Errorf("xenstore-ls / (-want +got):\n%s", diff)
	}
	if _, errs, code := c.run("xenstore-read", "/vm/nope"); code != 1 || !strings.Contains(errs, "couldn't read path /vm/nope") {
		t.Errorf("xenstore-read of a missing node: exit %d, %q", code, errs)
	}
	c.ok("xenstore-rm", "/vm/web1")
	if _, _, code := c.run("xenstore-exists", "/vm/web1/name"); code != 1 {
		t.Errorf("xenstore-exists after rm: exit %d, want 1", code)
	}
	c.ok("xenstore-exists", "/vm")
	// xenstored refuses a removal whose parent is missing too.
	if _, _, code := c.run("xenstore-rm", "/no/such"); code != 1 {
		t.Errorf("xenstore-rm /no/such: exit %d, want 1", code)
	}
}

func TestDebianClientWatch(t *testing.T) {
	d := xstest.Start(t)
	c := newDebian(t, d)
	w := c.watch("/vm")
	c.ok("xenstore-write", "/local/other", "x")
	c.ok("xenstore-write", "/vm/web1/name", "web1")
	w.expect(t, "/vm/web1/name")
	c.ok("xenstore-rm", "/vm/web1")
	w.expect(t, "/vm/web1")
	// A removal above the watched path fires the watch with its own path.
	below := c.watch("/vm/web2/name")
	c.ok("xenstore-write", "/vm/web2/name", "web2")
	below.expect(t, "/vm/web2/name")
	c.ok("xenstore-rm", "/vm")
	below.expect(t, "/vm/web2/name")
	for _, want := range []string{"/vm/web2/name", "/vm"} {
		w.expect(t, want)
	}

	// -n: exit after that many events, the registration's included.
	rel := c.watch("@releaseDomain", "-n", "2")
	d.Release(t)
	rel.expect(t, "@releaseDomain")
	if err := rel.cmd.Wait(); err != nil {
		t.Errorf("xenstore-watch -n 2 @releaseDomain: %v", err)
	}
	w.quiet(t, 100*time.Millisecond)
}

// xl is the Xen simulator, told to notify the xenstored simulator.
type xl struct {
	t   *testing.T
	bin string
	dir string
	env []string
}

func newXL(t *testing.T, d *xstest.Daemon) *xl {
	dir := t.TempDir()
	return &xl{t: t, bin: testbin.BuildAs(t, "ganeti-userdown/testdata/xensim", "xl"), dir: dir,
		env: append(os.Environ(), "XENSIM_STATE="+filepath.Join(dir, "state.json"), "XENSIM_LOG=",
			"XENSIM_FLAVOUR=", "XENSIM_SHUTDOWN_DELAY=", "XENSIM_DUMP_DIR=", d.Env())}
}

func (x *xl) ok(args ...string) {
	x.t.Helper()
	cmd := exec.Command(x.bin, args...)
	cmd.Env = x.env
	if out, err := cmd.CombinedOutput(); err != nil {
		x.t.Fatalf("xl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (x *xl) create(name string, actions ...string) {
	x.t.Helper()
	p := filepath.Join(x.dir, name+".cfg")
	src := fmt.Sprintf("name = '%s'\nmemory = 128\n%s\n", name, strings.Join(actions, "\n"))
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		x.t.Fatal(err)
	}
	x.ok("create", p)
}

// Every shutdown, crash and destroy of the Xen simulator fires
// @releaseDomain, and every new domain @introduceDomain, to Debian's
// xenstore-watch.
func TestXensimNotifies(t *testing.T) {
	d := xstest.Start(t)
	c := newDebian(t, d)
	x := newXL(t, d)
	rel := c.watch("@releaseDomain")
	intro := c.watch("@introduceDomain")

	x.create("web1", "on_poweroff = 'preserve'", "on_crash = 'restart'")
	intro.expect(t, "@introduceDomain")
	rel.quiet(t, 100*time.Millisecond)

	for _, step := range []struct {
		args          []string
		releases      int
		introductions int
	}{
		{[]string{"sim", "poweroff", "web1"}, 1, 0}, // preserved: shut down, not gone
		{[]string{"destroy", "web1"}, 1, 0},
		{[]string{"create", filepath.Join(x.dir, "web1.cfg")}, 0, 1},
		// on_crash restart: the crash, the destroy of the old domain,
		// the new one.
		{[]string{"sim", "crash", "web1"}, 2, 1},
		{[]string{"shutdown", "-w", "web1"}, 1, 0},
	} {
		x.ok(step.args...)
		for range step.releases {
			rel.expect(t, "@releaseDomain")
		}
		for range step.introductions {
			intro.expect(t, "@introduceDomain")
		}
		rel.quiet(t, 50*time.Millisecond)
		intro.quiet(t, 0)
	}
	// A guest asked to shut down acts later: the event comes with the
	// call that sees it happen, here `xl list`.
	x.create("web2", "on_poweroff = 'preserve'")
	intro.expect(t, "@introduceDomain")
	x.env = append(x.env, "XENSIM_SHUTDOWN_DELAY=0.2s")
	x.ok("shutdown", "web2")
	rel.quiet(t, 50*time.Millisecond)
	time.Sleep(250 * time.Millisecond)
	x.ok("list")
	rel.expect(t, "@releaseDomain")
}

// Without a simulator listening the Xen simulator still works, and
// notes the missed notification in its call log.
func TestXensimWithoutXenstored(t *testing.T) {
	d := xstest.Start(t)
	x := newXL(t, d)
	d.Stop(t)
	logPath := filepath.Join(x.dir, "calls.log")
	x.env = append(x.env, "XENSIM_LOG="+logPath)
	x.create("web1", "on_poweroff = 'preserve'")
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"what":"xenstored-missed"`)) {
		t.Errorf("call log has no xenstored-missed event:\n%s", b)
	}
}

// What the simulator does with a debian that breaks the protocol, as
// xenstored does: a payload over 4096 bytes drops the connection, an
// unknown type is EINVAL.
func TestProtocolViolations(t *testing.T) {
	d := xstest.Start(t)
	conn := func() *bufio.ReadWriter {
		nc, err := net.Dial("unix", d.Socket)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		return bufio.NewReadWriter(bufio.NewReader(nc), bufio.NewWriter(nc))
	}
	rw := conn()
	xswire.Send(rw, 99, 7, 0, nil)
	rw.Flush()
	m, err := xswire.Receive(rw)
	if err != nil || m.Type != xswire.Error || m.ReqID != 7 || string(m.Body) != "EINVAL\x00" {
		t.Errorf("reply to type 99: %+v, %v; want ERROR EINVAL for request 7", m, err)
	}
	rw = conn()
	xswire.Send(rw, xswire.Write, 1, 0, make([]byte, 4097))
	rw.Flush()
	if m, err := xswire.Receive(rw); err == nil {
		t.Errorf("reply to a 4097-byte payload: %+v, want the connection dropped", m)
	}
}

// The request log says who watches what, and forgets a watcher once it
// is gone or the simulator restarted.
func TestRequestLog(t *testing.T) {
	d := xstest.Start(t)
	c := newDebian(t, d)
	if xslog.Watching(d.Log(t), "@releaseDomain") {
		t.Fatal("watching before any client")
	}
	w := c.watch("@releaseDomain")
	d.WaitWatching(t, "@releaseDomain", 5*time.Second)
	c.ok("xenstore-write", "/vm/a", "1")
	// The simulator notes the writer's going away when it sees it.
	log := d.Log(t)
	for deadline := time.Now().Add(5 * time.Second); log[len(log)-1].Op != "disconnect" && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		log = d.Log(t)
	}
	var got []string
	for _, e := range log {
		got = append(got, fmt.Sprintf("%s %d %q %s %d", e.Op, e.Client, e.Args, e.Error, e.Watchers))
	}
	want := []string{
		`connect 1 []  0`,
		`WATCH 1 ["@releaseDomain" "@releaseDomain"]  0`,
		`connect 2 []  0`,
		`fire 0 ["/vm/a"]  0`,
		`WRITE 2 ["/vm/a" "1"]  0`,
		`disconnect 2 []  0`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request log (-want +got):\n%s", diff)
	}
	w.cmd.Process.Kill()
	w.cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for xslog.Watching(d.Log(t), "@releaseDomain") {
		if time.Now().After(deadline) {
			t.Fatal("still watching after the watcher was killed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.watch("@releaseDomain")
	d.Restart(t)
	if xslog.Watching(d.Log(t), "@releaseDomain") {
		t.Error("watching after a restart")
	}
}
