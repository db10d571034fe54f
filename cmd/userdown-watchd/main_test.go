package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ganeti-userdown/internal/state"
)

func noenv(string) string { return "" }

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "userdown.toml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// The binary explains itself with --help (exit 0) and exits 2 on a usage
// or configuration error, naming the problem.
func TestUsageAndConfigErrors(t *testing.T) {
	bad := writeConfig(t, "[events]\nrescan = \"1ms\"\n")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--help"}, 0, "@releaseDomain"},
		{[]string{"--no-such-flag"}, 2, "unknown flag --no-such-flag"},
		{[]string{"--config", filepath.Join(t.TempDir(), "absent.toml")}, 2, "absent.toml"},
		{[]string{"--config", bad}, 2, "[events] rescan"},
		{[]string{"--config", bad, "--ensure-running"}, 2, "[events] rescan"},
	} {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb, noenv)
		if code != tc.code || !strings.Contains(out.String()+errb.String(), tc.want) {
			t.Errorf("%v: exit %d, output %q%q; want exit %d mentioning %q", tc.args, code, out.String(), errb.String(), tc.code, tc.want)
		}
	}
}

// [events] enabled = false: the daemon says so (to systemd too) and exits
// 0; --ensure-running starts nothing.
func TestDisabled(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, "[events]\nenabled = false\n[state]\ndir = \""+dir+"\"\n")
	sock := filepath.Join(t.TempDir(), "notify")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	env := func(k string) string {
		if k == "NOTIFY_SOCKET" {
			return sock
		}
		return ""
	}
	var out, errb bytes.Buffer
	if code := run([]string{"--config", cfg}, &out, &errb, env); code != 0 || !strings.Contains(errb.String(), "enabled is false") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
	var got []string
	buf := make([]byte, 512)
	for i := 0; i < 2; i++ {
		l.SetReadDeadline(time.Now().Add(5 * time.Second))
		k, err := l.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(buf[:k]))
	}
	if !strings.HasPrefix(got[0], "READY=1\n") || got[1] != "STOPPING=1" {
		t.Errorf("notifications %q", got)
	}
	out.Reset()
	if code := run([]string{"--config", cfg, "--ensure-running"}, &out, &errb, noenv); code != 0 || out.Len() != 0 {
		t.Errorf("--ensure-running when disabled: exit %d, stdout %q", code, out.String())
	}
}

// One daemon per state dir: a second one exits 1 naming the lock, and
// --ensure-running leaves a running daemon alone.
func TestOneDaemonPerStateDir(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, "[state]\ndir = \""+dir+"\"\n")
	lock, err := state.Open(dir).LockDaemon(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()
	var out, errb bytes.Buffer
	if code := run([]string{"--config", cfg}, &out, &errb, noenv); code != 1 || !strings.Contains(errb.String(), "another userdown-watchd runs") {
		t.Errorf("second daemon: exit %d, stderr %q", code, errb.String())
	}
	out.Reset()
	if code := run([]string{"--config", cfg, "--ensure-running", "--systemctl", "/bin/false", "--systemd-dir", dir}, &out, &errb, noenv); code != 0 || out.Len() != 0 {
		t.Errorf("--ensure-running with a daemon running: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

// Under systemd --ensure-running asks systemctl to start the unit.
func TestEnsureRunningUnderSystemd(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, "[state]\ndir = \""+dir+"\"\n")
	calls := filepath.Join(t.TempDir(), "calls")
	systemctl := filepath.Join(t.TempDir(), "systemctl")
	if err := os.WriteFile(systemctl, []byte("#!/bin/sh\necho \"$@\" >> "+calls+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"--config", cfg, "--ensure-running", "--systemctl", systemctl, "--systemd-dir", dir}, &out, &errb, noenv)
	if code != 0 || !strings.Contains(out.String(), "asked systemd to start userdown-watchd.service") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	b, _ := os.ReadFile(calls)
	if string(b) != "start --no-block userdown-watchd.service\n" {
		t.Errorf("systemctl called with %q", b)
	}
	if err := os.WriteFile(systemctl, []byte("#!/bin/sh\necho 'Unit userdown-watchd.service not found.' >&2\nexit 5\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	if code := run([]string{"--config", cfg, "--ensure-running", "--systemctl", systemctl, "--systemd-dir", dir}, &out, &errb, noenv); code != 1 || !strings.Contains(errb.String(), "not found") {
		t.Errorf("failing systemctl: exit %d, stderr %q", code, errb.String())
	}
}
