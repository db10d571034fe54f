package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

type grammar struct {
	JSON    bool             `name:"json" help:"Print JSON."`
	Count   int              `name:"count" help:"How many."`
	Version kong.VersionFlag `help:"Print the version and exit."`
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		done     bool
		code     int
		stdout   string
		errSub   string
		wantJSON bool
	}{
		{name: "flags", args: []string{"--json"}, wantJSON: true},
		{name: "help is printed and ends with 0", args: []string{"--help"}, done: true, code: 0, stdout: "Print JSON."},
		{name: "version", args: []string{"--version"}, done: true, code: 0, stdout: "1.2.3"},
		{name: "unknown flag is a usage error", args: []string{"--nope"}, done: true, code: ExitUsage, errSub: "--nope"},
		{name: "bad value is a usage error", args: []string{"--count=many"}, done: true, code: ExitUsage, errSub: "count"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g grammar
			var stdout, stderr bytes.Buffer
			out := Parse("prog", &g, tc.args, &stdout, &stderr, kong.Vars{"version": "1.2.3"})
			if out.Done != tc.done || out.Code != tc.code {
				t.Fatalf("Parse(%q) = done %v code %d (err %v), want done %v code %d", tc.args, out.Done, out.Code, out.Err, tc.done, tc.code)
			}
			if tc.stdout != "" && !strings.Contains(stdout.String(), tc.stdout) {
				t.Errorf("stdout %q does not contain %q", stdout.String(), tc.stdout)
			}
			if tc.errSub != "" && (out.Err == nil || !strings.Contains(out.Err.Error(), tc.errSub)) {
				t.Errorf("err = %v, want it to mention %q", out.Err, tc.errSub)
			}
			if !tc.done && (out.Context == nil || g.JSON != tc.wantJSON) {
				t.Errorf("not parsed: ctx %v, json %v", out.Context, g.JSON)
			}
		})
	}
}
