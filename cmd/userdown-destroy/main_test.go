package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func noenv(string) string { return "" }

// Every binary explains itself with --help (exit 0) and exits 2 on a usage
// or configuration error, naming the problem.
func TestUsageAndConfigErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(bad, []byte("[policy]\ndefault = \"sometimes\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		code int
		want string // in stdout+stderr
	}{
		{[]string{"--help"}, 0, "Exit status: 0 ok, 1"},
		{[]string{"--no-such-flag"}, 2, "unknown flag --no-such-flag"},
		{[]string{"--config", filepath.Join(t.TempDir(), "absent.toml")}, 2, "absent.toml"},
		{[]string{"--config", bad}, 2, "[policy] default"},
	}
	for _, tc := range tests {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb, noenv)
		if code != tc.code || !strings.Contains(out.String()+errb.String(), tc.want) {
			t.Errorf("%v: exit %d, output %q%q; want exit %d mentioning %q", tc.args, code, out.String(), errb.String(), tc.code, tc.want)
		}
	}
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
