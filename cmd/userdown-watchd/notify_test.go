package main

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// The datagram protocol of sd_notify(3), checked against a socket of our
// own as systemd listens on it.
func TestNotifySendsDatagrams(t *testing.T) {
	for _, abstract := range []bool{false, true} {
		name := filepath.Join(t.TempDir(), "notify")
		env := name
		if abstract {
			name = "\x00userdown-test-" + strconv.Itoa(os.Getpid())
			env = "@" + name[1:]
		}
		l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		n := newNotifier(func(k string) string {
			if k == "NOTIFY_SOCKET" {
				return env
			}
			return ""
		})
		for _, msg := range []string{"READY=1\nSTATUS=watching", "WATCHDOG=1", "STOPPING=1"} {
			if err := n.send(msg); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 256)
			l.SetReadDeadline(time.Now().Add(5 * time.Second))
			k, err := l.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			if string(buf[:k]) != msg {
				t.Errorf("received %q, want %q", buf[:k], msg)
			}
		}
		l.Close()
	}
	if err := newNotifier(func(string) string { return "" }).send("READY=1"); err != nil {
		t.Errorf("without NOTIFY_SOCKET: %v", err)
	}
	if err := newNotifier(func(string) string { return "relative" }).send("READY=1"); err == nil {
		t.Error("a relative NOTIFY_SOCKET was accepted")
	}
}

func TestWatchdogInterval(t *testing.T) {
	pid := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		usec, pid string
		want      time.Duration
		bad       bool
	}{
		{"", "", 0, false},
		{"300000000", "", 150 * time.Second, false},
		{"300000000", pid, 150 * time.Second, false},
		{"300000000", "1", 0, false},
		{"soon", "", 0, true},
		{"0", "", 0, true},
	} {
		got, err := watchdogInterval(func(k string) string {
			return map[string]string{"WATCHDOG_USEC": tc.usec, "WATCHDOG_PID": tc.pid}[k]
		})
		if got != tc.want || (err != nil) != tc.bad {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: %s, %v; want %s, error %v", tc.usec, tc.pid, got, err, tc.want, tc.bad)
		}
	}
}
