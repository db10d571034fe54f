package main

import (
	"bytes"
	"testing"

	"ganeti-userdown/internal/testbin"
)

func noenv(string) string { return "" }

// Every binary explains itself with --help (exit 0) and exits 2 on a usage
// or configuration error, naming the problem.
func TestUsageAndConfigErrors(t *testing.T) {
	testbin.UsageAndConfigErrors(t, run, "Exit status: 0 ok, 1")
}

// Reaper mode needs a domid and a uuid; its options need it.
func TestReapUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--reap", "5"},
		{"--reap", "0", "--uuid", "u"},
		{"--uuid", "u"},
		{"--wait", "1s"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb, noenv); code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, errb.String())
		}
	}
}
