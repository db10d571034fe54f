package xenstore_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/testbin"
	"ganeti-userdown/internal/xenstore"
	"ganeti-userdown/testdata/xenstored/xstest"
)

func TestMain(m *testing.M) { testbin.Main(m) }

func dial(t testing.TB, d *xstest.Daemon) *xenstore.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := xenstore.Dial(ctx, d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// next returns the next event, failing the test after a few seconds.
func next(t testing.TB, c *xenstore.Conn) xenstore.Event {
	t.Helper()
	select {
	case ev, ok := <-c.Events():
		if !ok {
			t.Fatalf("events closed: %v", c.Err())
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no watch event within 5s")
	}
	return xenstore.Event{}
}

// quiet fails the test when an event arrives within d.
func quiet(t testing.TB, c *xenstore.Conn, d time.Duration) {
	t.Helper()
	select {
	case ev := <-c.Events():
		t.Fatalf("unexpected event %+v", ev)
	case <-time.After(d):
	}
}

// expect fails the test unless the next event is want.
func expect(t testing.TB, c *xenstore.Conn, want xenstore.Event) {
	t.Helper()
	if diff := cmp.Diff(want, next(t, c)); diff != "" {
		t.Errorf("event (-want +got):\n%s", diff)
	}
}

// watch sets a watch and takes the event xenstored fires on
// registration.
func watch(t testing.TB, c *xenstore.Conn, path, token string) {
	t.Helper()
	if err := c.Watch(testCtx(t), path, token); err != nil {
		t.Fatal(err)
	}
	expect(t, c, xenstore.Event{Path: path, Token: token})
}

func TestReadWriteDirectory(t *testing.T) {
	d := xstest.Start(t)
	c := dial(t, d)
	ctx := testCtx(t)
	for _, kv := range [][2]string{{"/vm/a/name", "inst1"}, {"/vm/a/empty", ""}, {"/vm/b", "x\x00y"}} {
		if err := c.Write(ctx, kv[0], []byte(kv[1])); err != nil {
			t.Fatal(err)
		}
	}
	for _, kv := range [][2]string{{"/vm/a/name", "inst1"}, {"/vm/a/empty", ""}, {"/vm/b", "x\x00y"}, {"/vm/a", ""}} {
		got, err := c.Read(ctx, kv[0])
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != kv[1] {
			t.Errorf("Read(%s) = %q, want %q", kv[0], got, kv[1])
		}
	}
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"/vm", []string{"a", "b"}},
		{"/vm/a", []string{"name", "empty"}},
		{"/vm/b", nil},
		{"/local/domain/0", []string{"name", "domid"}},
	} {
		got, err := c.Directory(ctx, tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("Directory(%s) (-want +got):\n%s", tc.path, diff)
		}
	}
	// Relative paths are dom0's, under /local/domain/0.
	if got, err := c.Read(ctx, "name"); err != nil || string(got) != "Domain-0" {
		t.Errorf("Read(name) = %q, %v; want Domain-0", got, err)
	}
}

func TestErrors(t *testing.T) {
	d := xstest.Start(t)
	c := dial(t, d)
	ctx := testCtx(t)

	_, err := c.Read(ctx, "/nope")
	if got, want := fmt.Sprint(err), "xenstore: read /nope: ENOENT"; got != want {
		t.Errorf("error %q, want %q", got, want)
	}
	var xe *xenstore.Error
	if !errors.As(err, &xe) || xe.Errno != "ENOENT" {
		t.Errorf("errors.As(%v, *Error) = %v, %+v; want ENOENT", err, errors.As(err, &xe), xe)
	}
	if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.EINVAL) {
		t.Errorf("errors.Is(%v): ErrNotExist %v, ENOENT %v, EINVAL %v; want true true false", err,
			errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.EINVAL))
	}
	if _, err := c.Directory(ctx, "/nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Directory(/nope) = %v, want ENOENT", err)
	}
	if err := c.Write(ctx, "/bad//path", nil); fmt.Sprint(err) != "xenstore: write /bad//path: EINVAL" {
		t.Errorf("Write(/bad//path) = %v, want EINVAL", err)
	}
	if err := c.Unwatch(ctx, "/never", "t"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("Unwatch of no watch = %v, want ENOENT", err)
	}
	// Refused before sending: xenstored would drop the connection.
	if err := c.Write(ctx, "/big", make([]byte, xenstore.PayloadMax)); err == nil || !strings.Contains(err.Error(), "exceeds 4096") {
		t.Errorf("Write of a payload over 4096 bytes = %v, want an error naming the limit", err)
	}
	for _, p := range []string{"", "/a\x00b"} {
		if _, err := c.Read(ctx, p); err == nil {
			t.Errorf("Read(%q) succeeded", p)
		}
	}
	// The connection is still good after all of these.
	if err := c.Write(ctx, "/ok", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if c.Err() != nil {
		t.Fatalf("Err() = %v while the connection runs", c.Err())
	}
}

func TestWatch(t *testing.T) {
	d := xstest.Start(t)
	c := dial(t, d)
	other := dial(t, d)
	ctx := testCtx(t)

	watch(t, c, "/vm", "vms")
	// Changes by another client at or under the path, not elsewhere.
	if err := other.Write(ctx, "/local/x", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := other.Write(ctx, "/vm/a/b", []byte("1")); err != nil {
		t.Fatal(err)
	}
	expect(t, c, xenstore.Event{Path: "/vm/a/b", Token: "vms"})
	// Replies keep flowing while events wait unread.
	if err := other.Write(ctx, "/vm/c", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(ctx, "/vm/a/b"); err != nil {
		t.Fatal(err)
	}
	expect(t, c, xenstore.Event{Path: "/vm/c", Token: "vms"})

	watch(t, c, "@releaseDomain", "rel")
	d.Release(t)
	expect(t, c, xenstore.Event{Path: "@releaseDomain", Token: "rel"})

	if err := c.Unwatch(ctx, "/vm", "vms"); err != nil {
		t.Fatal(err)
	}
	if err := other.Write(ctx, "/vm/d", nil); err != nil {
		t.Fatal(err)
	}
	quiet(t, c, 200*time.Millisecond)
}

func TestClose(t *testing.T) {
	d := xstest.Start(t)
	c := dial(t, d)
	ctx := testCtx(t)
	if err := c.Watch(ctx, "@releaseDomain", "rel"); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close() = %v", err)
	}
	// The registration event was never taken: dropped, and the channel
	// closed.
	select {
	case _, ok := <-c.Events():
		if ok {
			t.Fatal("an event after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Events not closed after Close")
	}
	if !errors.Is(c.Err(), xenstore.ErrClosed) {
		t.Errorf("Err() = %v, want ErrClosed", c.Err())
	}
	if _, err := c.Read(ctx, "/"); !errors.Is(err, xenstore.ErrClosed) {
		t.Errorf("Read after Close = %v, want ErrClosed", err)
	}
}

// A restart of xenstored ends the connection: Events is closed, Err says
// so, and a new Dial works once it is back.
func TestDaemonGoesAway(t *testing.T) {
	d := xstest.Start(t)
	c := dial(t, d)
	ctx := testCtx(t)
	watch(t, c, "@releaseDomain", "rel")
	d.Stop(t)
	select {
	case _, ok := <-c.Events():
		if ok {
			t.Fatal("an event from a stopped daemon")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Events not closed when xenstored went away")
	}
	if err := c.Err(); err == nil || errors.Is(err, xenstore.ErrClosed) || !strings.Contains(err.Error(), d.Socket) {
		t.Errorf("Err() = %v, want the connection lost, naming %s", err, d.Socket)
	}
	if _, err := c.Read(ctx, "/"); err == nil {
		t.Error("Read on a lost connection succeeded")
	}
	if _, err := xenstore.Dial(ctx, d.Socket); err == nil {
		t.Error("Dial succeeded with xenstored stopped")
	}
	d.Restart(t)
	c2 := dial(t, d)
	watch(t, c2, "@releaseDomain", "rel")
}

// Many goroutines share one connection; each gets its own replies.
func TestConcurrentRequests(t *testing.T) {
	d := xstest.Start(t)
	c := dial(t, d)
	ctx := testCtx(t)
	if err := c.Watch(ctx, "/c", "w"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				p := fmt.Sprintf("/c/%d/%d", g, i)
				v := fmt.Sprintf("v%d.%d", g, i)
				if err := c.Write(ctx, p, []byte(v)); err != nil {
					errs <- err
					return
				}
				got, err := c.Read(ctx, p)
				if err != nil {
					errs <- err
					return
				}
				if string(got) != v {
					errs <- fmt.Errorf("Read(%s) = %q, want %q", p, got, v)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// 400 writes fired the watch while nobody read Events: the backlog
	// kept at most Backlog+1 of them (coalesced), and the last write's
	// event or its watch's collapsed one is among them.
	n := 0
	for {
		select {
		case <-c.Events():
			n++
			continue
		case <-time.After(300 * time.Millisecond):
		}
		break
	}
	if n == 0 || n > xenstore.Backlog+1 {
		t.Errorf("%d events waited, want 1..%d", n, xenstore.Backlog+1)
	}
}

func TestContext(t *testing.T) {
	d := xstest.Start(t)
	c := dial(t, d)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Read(ctx, "/"); !errors.Is(err, context.Canceled) {
		t.Errorf("Read with a cancelled context = %v, want context.Canceled", err)
	}
	if err := c.Watch(ctx, "/", "t"); !errors.Is(err, context.Canceled) {
		t.Errorf("Watch with a cancelled context = %v, want context.Canceled", err)
	}
	dctx, dcancel := context.WithCancel(context.Background())
	dcancel()
	if _, err := xenstore.Dial(dctx, d.Socket); !errors.Is(err, context.Canceled) {
		t.Errorf("Dial with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestDefaultPath(t *testing.T) {
	t.Setenv("XENSTORED_PATH", "/x/socket")
	t.Setenv("XENSTORED_RUNDIR", "/rundir")
	if got := xenstore.DefaultPath(); got != "/x/socket" {
		t.Errorf("DefaultPath() = %q with XENSTORED_PATH set, want it", got)
	}
	t.Setenv("XENSTORED_PATH", "")
	if got := xenstore.DefaultPath(); got != "/rundir/socket" {
		t.Errorf("DefaultPath() = %q with XENSTORED_RUNDIR set, want /rundir/socket", got)
	}
	t.Setenv("XENSTORED_RUNDIR", "")
	want := "/var/run/xenstored/socket"
	if _, err := os.Stat("/run/xenstored/socket"); err == nil {
		want = "/run/xenstored/socket"
	}
	if got := xenstore.DefaultPath(); got != want {
		t.Errorf("DefaultPath() = %q, want %q", got, want)
	}
}

// xenstoreTool runs one of Debian's xenstore clients (xenstore-utils)
// against d and returns its stdout.
func xenstoreTool(t *testing.T, d *xstest.Daemon, tool string, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Fatalf("%s is missing: apt-get install -y xenstore-utils", tool)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Env = append(os.Environ(), d.Env())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		err = fmt.Errorf("%s %s: %w: %s", tool, strings.Join(args, " "), err, stderr.String())
	}
	return string(out), err
}

// Differential check: Debian's clients and this package, on one
// simulator, see the same store.
func TestAgreesWithDebianClients(t *testing.T) {
	d := xstest.Start(t)
	c := dial(t, d)
	ctx := testCtx(t)
	must := func(out string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	// Theirs written, ours read, and the other way round.
	must(xenstoreTool(t, d, "xenstore-write", "/vm/web1/name", "web1.example.com", "/vm/web1/on_poweroff", "preserve"))
	if err := c.Write(ctx, "/vm/web2/name", []byte("web2 example")); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Read(ctx, "/vm/web1/name"); err != nil || string(got) != "web1.example.com" {
		t.Errorf("our Read of xenstore-write's value = %q, %v", got, err)
	}
	if got := must(xenstoreTool(t, d, "xenstore-read", "/vm/web2/name")); got != "web2 example\n" {
		t.Errorf("xenstore-read of our Write = %q", got)
	}
	for _, p := range []string{"/", "/vm", "/vm/web1", "/local/domain/0"} {
		ours, err := c.Directory(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		theirs := strings.Fields(must(xenstoreTool(t, d, "xenstore-list", p)))
		if diff := cmp.Diff(theirs, ours); diff != "" {
			t.Errorf("Directory(%s) against xenstore-list (-theirs +ours):\n%s", p, diff)
		}
	}
	if _, err := xenstoreTool(t, d, "xenstore-read", "/vm/none"); err == nil {
		t.Error("xenstore-read of a missing node succeeded")
	}
	if _, err := c.Read(ctx, "/vm/none"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("our Read of a missing node = %v, want ENOENT", err)
	}

	// Their writes fire our watch.
	watch(t, c, "/vm", "vms")
	must(xenstoreTool(t, d, "xenstore-write", "/vm/web3/name", "web3"))
	expect(t, c, xenstore.Event{Path: "/vm/web3/name", Token: "vms"})
	// Our writes fire theirs: xenstore-watch -n 2 prints the registration
	// and our write, then exits.
	watchOut := make(chan string, 1)
	go func() {
		out, err := xenstoreTool(t, d, "xenstore-watch", "-n", "2", "/vm/web4")
		if err != nil {
			out = err.Error()
		}
		watchOut <- out
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		// Until xenstore-watch has registered, writes are not seen: write
		// again until it has both lines.
		if err := c.Write(ctx, "/vm/web4/name", []byte("web4")); err != nil {
			t.Fatal(err)
		}
		select {
		case out := <-watchOut:
			if out != "/vm/web4\n/vm/web4/name\n" {
				t.Errorf("xenstore-watch printed %q", out)
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("xenstore-watch saw none of our writes within 5s")
		}
	}
}

// A guest's poweroff on the Xen simulator reaches a watcher of
// @releaseDomain, as on a node.
func TestReleaseDomainFromXensim(t *testing.T) {
	d := xstest.Start(t)
	c := dial(t, d)
	watch(t, c, "@releaseDomain", "rel")
	dir := t.TempDir()
	xl := testbin.BuildAs(t, "ganeti-userdown/testdata/xensim", "xl")
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(xl, args...)
		cmd.Env = append(os.Environ(), "XENSIM_STATE="+filepath.Join(dir, "state.json"), "XENSIM_LOG=", "XENSIM_SHUTDOWN_DELAY=", d.Env())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("xl %v: %v\n%s", args, err, out)
		}
	}
	cfg := filepath.Join(dir, "web1.cfg")
	if err := os.WriteFile(cfg, []byte("name = 'web1'\nmemory = 128\non_poweroff = 'preserve'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run("create", cfg)
	quiet(t, c, 100*time.Millisecond)
	run("sim", "poweroff", "web1")
	expect(t, c, xenstore.Event{Path: "@releaseDomain", Token: "rel"})
	quiet(t, c, 100*time.Millisecond)
}
