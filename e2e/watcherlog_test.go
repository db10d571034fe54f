package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runWatcherHook runs the watcher hook script with trivial binaries
// (detect prints its arguments) and the given syslog socket, logging to
// syslog (USERDOWN_WATCHER_LOG unset); it returns the fallback log.
func runWatcherHook(t *testing.T, socket string) string {
	t.Helper()
	if _, err := exec.LookPath("logger"); err != nil {
		t.Fatal("logger not found: apt-get install -y bsdutils")
	}
	hook, err := filepath.Abs("../packaging/watcher/50-userdown")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	fallback := filepath.Join(dir, "fallback.log")
	cmd := exec.Command(hook)
	cmd.Env = []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		"USERDOWN_DETECT=/bin/echo", "USERDOWN_DESTROY=/bin/true",
		"USERDOWN_WATCHER_LOCK=" + filepath.Join(dir, "watcher.lock"),
		"USERDOWN_WATCHER_TIMEOUT=30",
		"USERDOWN_SYSLOG_SOCKET=" + socket,
		"USERDOWN_WATCHER_FALLBACK_LOG=" + fallback,
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("watcher hook: %v: %s", err, out)
	}
	b, err := os.ReadFile(fallback)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// listenSyslog makes a syslog socket (datagrams, as /dev/log).
func listenSyslog(t *testing.T) (string, *net.UnixConn) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "log")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	return sock, l
}

// The watcher hook's lines reach syslog when its socket takes them, and
// the fallback file when there is no socket or nobody reads it (util-linux
// logger exits 0 then, which lost every line).
//
// Reference: doc/design.md, "Hooks": the watcher hook logs to syslog, or
// to its log file.
func TestWatcherHookLogFallsBack(t *testing.T) {
	const line = "userdown-detect: --mark-down"
	t.Run("no socket", func(t *testing.T) {
		got := runWatcherHook(t, filepath.Join(t.TempDir(), "no-such-socket"))
		if !strings.Contains(got, line) {
			t.Errorf("fallback log lacks %q:\n%s", line, got)
		}
	})
	t.Run("socket nobody reads", func(t *testing.T) {
		sock, l := listenSyslog(t)
		l.Close() // the socket file stays, with no reader behind it
		got := runWatcherHook(t, sock)
		if !strings.Contains(got, line) {
			t.Errorf("fallback log lacks %q:\n%s", line, got)
		}
	})
	t.Run("syslog", func(t *testing.T) {
		sock, l := listenSyslog(t)
		defer l.Close()
		got := make(chan string, 16)
		go func() {
			buf := make([]byte, 4096)
			for {
				n, err := l.Read(buf)
				if err != nil {
					close(got)
					return
				}
				got <- string(buf[:n])
			}
		}()
		if fb := runWatcherHook(t, sock); fb != "" {
			t.Errorf("fallback log written although syslog took the lines:\n%s", fb)
		}
		select {
		case msg := <-got:
			if !strings.Contains(msg, "ganeti-userdown") || !strings.Contains(msg, line) {
				t.Errorf("syslog message %q lacks the tag or %q", msg, line)
			}
		case <-time.After(5 * time.Second):
			t.Error("no message reached the syslog socket")
		}
	})
}
