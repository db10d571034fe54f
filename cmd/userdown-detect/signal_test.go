package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"ganeti-userdown/internal/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// TestSIGTERMStopsARun checks that SIGTERM stops a run that waits on the
// toolstack (and releases the run lock), instead of being ignored until
// SIGKILL.
// Reference: issue 14, point 5.
func TestSIGTERMStopsARun(t *testing.T) {
	dir := t.TempDir()
	xl := filepath.Join(dir, "xl")
	if err := os.WriteFile(xl, []byte("#!/bin/sh\nexec sleep 600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "userdown.toml")
	src := "[xen]\ncommand = \"" + xl + "\"\ntimeout = \"10m\"\n[cluster]\nnode = \"node1.example.com\"\n[state]\ndir = \"" + filepath.Join(dir, "state") + "\"\n"
	if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testbin.Build(t, "ganeti-userdown/cmd/userdown-detect"), "--config", cfg)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(stderr.String(), "terminated signal received") {
			t.Errorf("after SIGTERM: %v, stderr %q; want a failed run saying it was cancelled", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("userdown-detect still running 10s after SIGTERM")
	}
}
