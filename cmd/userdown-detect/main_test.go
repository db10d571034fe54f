package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ganeti-userdown/internal/testbin"

	"ganeti-userdown/internal/cli"
	"ganeti-userdown/internal/state"
)

func noenv(string) string { return "" }

// Every binary explains itself with --help (exit 0) and exits 2 on a usage
// or configuration error, naming the problem.
func TestUsageAndConfigErrors(t *testing.T) {
	testbin.UsageAndConfigErrors(t, run, "Exit status: 0 ok, 1")
}

// A run lock that another run holds for all of --lock-wait is not "state
// unreadable" (3): the run does nothing and exits 1, saying why.
// Reference: doc/design.md, "Exit codes".
func TestBusyRunLockExits1(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "userdown.toml")
	src := "[xen]\ncommand = \"" + filepath.Join(dir, "no-such-xl") + "\"\n[cluster]\nnode = \"node1.example.com\"\n[state]\ndir = \"" + filepath.Join(dir, "state") + "\"\n"
	if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	held, err := state.Open(filepath.Join(dir, "state")).LockRun(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock()
	var out, errb bytes.Buffer
	code := run([]string{"--config", cfg, "--lock-wait", "50ms"}, &out, &errb, noenv)
	if code != cli.ExitFailed || !strings.Contains(errb.String(), "another run holds the lock") || out.Len() != 0 {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and the lock named in the log", code, out.String(), errb.String())
	}
}
