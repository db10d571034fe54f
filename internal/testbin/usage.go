package testbin

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Run is a binary's main function as its tests call it: arguments,
// stdout, stderr and the environment in, exit status out.
type Run func(args []string, stdout, stderr io.Writer, getenv func(string) string) int

// UsageAndConfigErrors checks what every binary owes its caller: --help
// explains it and exits 0 (its text mentioning help), and an unknown
// flag, a missing --config file and a bad configuration value each exit
// 2, naming the problem.
func UsageAndConfigErrors(t *testing.T, run Run, help string) {
	t.Helper()
	bad := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(bad, []byte("[policy]\ndefault = \"sometimes\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string // in stdout+stderr
	}{
		{[]string{"--help"}, 0, help},
		{[]string{"--no-such-flag"}, 2, "unknown flag --no-such-flag"},
		{[]string{"--config", filepath.Join(t.TempDir(), "absent.toml")}, 2, "absent.toml"},
		{[]string{"--config", bad}, 2, "[policy] default"},
	} {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb, func(string) string { return "" })
		if code != tc.code || !strings.Contains(out.String()+errb.String(), tc.want) {
			t.Errorf("%v: exit %d, output %q%q; want exit %d mentioning %q", tc.args, code, out.String(), errb.String(), tc.code, tc.want)
		}
	}
}
