// Package xstest runs the xenstored simulator (testdata/xenstored) for
// tests: built once per test process, listening on a socket in the
// test's temporary directory, stopped at the test's end.
package xstest

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"ganeti-userdown/internal/testbin"
	"ganeti-userdown/testdata/xenstored/xslog"
)

// Daemon is one running simulator.
type Daemon struct {
	// Socket is the path clients connect to (XENSTORED_PATH).
	Socket string
	// LogPath is the simulator's request log (package xslog), kept
	// across restarts.
	LogPath string
	bin     string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// Start builds and starts a simulator on a socket in a new temporary
// directory of t, and returns once it accepts connections. It is killed
// when t ends.
func Start(t testing.TB) *Daemon {
	t.Helper()
	// Unix socket paths are short (108 bytes): t.TempDir's may not be.
	dir := shortTempDir(t)
	d := &Daemon{
		Socket:  filepath.Join(dir, "socket"),
		LogPath: filepath.Join(dir, "requests.log"),
		bin:     testbin.Build(t, "ganeti-userdown/testdata/xenstored"),
	}
	d.start(t)
	t.Cleanup(d.kill)
	return d
}

func shortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "xenstored-")
	if err != nil {
		t.Fatalf("xstest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (d *Daemon) start(t testing.TB) {
	t.Helper()
	cmd := exec.Command(d.bin, "-socket", d.Socket, "-log", d.LogPath)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("xstest: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("xstest: starting %s: %v", d.bin, err)
	}
	d.cmd = cmd
	d.exited = make(chan struct{})
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- line
		cmd.Wait()
		close(d.exited)
	}()
	select {
	case line := <-ready:
		if !strings.HasPrefix(line, "listening ") {
			t.Fatalf("xstest: the simulator did not start listening (it printed %q)", line)
		}
	case <-time.After(10 * time.Second):
		d.kill()
		t.Fatal("xstest: the simulator did not start listening within 10s")
	}
}

// Stop ends the simulator (SIGTERM) and waits for it: its clients'
// connections end, and the socket is gone.
func (d *Daemon) Stop(t testing.TB) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("xstest: the simulator did not exit within 10s of SIGTERM")
	}
}

// Restart stops the simulator and starts a new one on the same socket,
// with a fresh tree and no watches, as a restart of Xen's store daemon.
func (d *Daemon) Restart(t testing.TB) {
	t.Helper()
	d.Stop(t)
	d.start(t)
}

// Release makes the simulator fire @releaseDomain, as xenstored does
// when a domain shuts down, crashes or is destroyed (SIGUSR1).
func (d *Daemon) Release(t testing.TB) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatalf("xstest: %v", err)
	}
}

// Log returns the request log of the running simulator (since its last
// start).
func (d *Daemon) Log(t testing.TB) []xslog.Entry {
	t.Helper()
	es, err := xslog.Read(d.LogPath)
	if err != nil {
		t.Fatalf("xstest: %v", err)
	}
	return xslog.SinceStart(es)
}

// WaitWatching waits until a connected client of the running simulator
// has a watch on path (a daemon under test has set its watch), failing
// the test after timeout.
func (d *Daemon) WaitWatching(t testing.TB, path string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !xslog.Watching(d.Log(t), path) {
		if time.Now().After(deadline) {
			t.Fatalf("xstest: no client watches %s after %v", path, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Env returns XENSTORED_PATH=<socket>, for the environment of Xen's
// clients and of the Xen simulator.
func (d *Daemon) Env() string { return "XENSTORED_PATH=" + d.Socket }

func (d *Daemon) kill() {
	if d.cmd != nil && d.cmd.Process != nil {
		d.cmd.Process.Kill()
		<-d.exited
	}
}
