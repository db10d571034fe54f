package toolstack

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestAnalyzeCreate checks that the shim finds the config file `create`
// reads wherever it is on the command line.
// Reference: design.md, "Shim": "Before create … CFG it rewrites CFG".
func TestAnalyzeCreate(t *testing.T) {
	tests := []struct {
		args    string
		config  string
		problem string
	}{
		{"create /etc/xen/inst1", "/etc/xen/inst1", ""},
		{"create -p /etc/xen/inst1", "/etc/xen/inst1", ""},
		{"create /etc/xen/inst1 -p", "/etc/xen/inst1", ""},
		{"create -pcq -d -e -V -n -F -i -A /etc/xen/inst1", "/etc/xen/inst1", ""},
		{"create -f /etc/xen/inst1", "/etc/xen/inst1", ""},
		{"create -f/etc/xen/inst1", "/etc/xen/inst1", ""},
		{"create -pf /etc/xen/inst1 memory=512", "/etc/xen/inst1", ""},
		{"create -pf/etc/xen/inst1", "/etc/xen/inst1", ""},
		{"create --defconfig=/etc/xen/inst1", "/etc/xen/inst1", ""},
		{"create --defconfig /etc/xen/inst1", "/etc/xen/inst1", ""},
		{"create --defc=/etc/xen/inst1", "/etc/xen/inst1", ""},
		{"create --quiet --dryrun /etc/xen/inst1 name=x", "/etc/xen/inst1", ""},
		{"create memory=512 /etc/xen/inst1 vcpus=2", "/etc/xen/inst1", ""},
		{"create -p -- /etc/xen/inst1 memory=512", "/etc/xen/inst1", ""},
		{"create -- -odd-name", "-odd-name", ""},
		{"create /etc/xen/a -f /etc/xen/b", "/etc/xen/b", ""},                   // -f overrides the first argument
		{"create -p /etc/xen/a -f /etc/xen/b", "", "more than one config file"}, // xl refuses this one
		{"-v create /etc/xen/inst1", "/etc/xen/inst1", ""},
		{"-vf -N -- create /etc/xen/inst1", "/etc/xen/inst1", ""},
		{"cr /etc/xen/inst1", "/etc/xen/inst1", ""}, // xl takes unique prefixes
		{"crea -p /etc/xen/inst1", "/etc/xen/inst1", ""},
		{"create -f /etc/xen/a /etc/xen/b", "", "more than one config file"},
		{"create /etc/xen/a /etc/xen/b", "", "more than one config file"},
		{"create -p", "", "no config file"},
		{"create memory=5", "", "no config file"},
		{"create -f", "", "needs an argument"},
		{"create -x /etc/xen/inst1", "", "unknown option -x"},
		{"create --help /etc/xen/inst1", "", "--help"},
		{"create --d=/etc/xen/inst1", "", "ambiguous"},
		{"create --vnc /etc/xen/inst1", "", "ambiguous"},
		{"create --quiet=1 /etc/xen/inst1", "", "takes no argument"},
		{"-x create /etc/xen/inst1", "", "global options"},
		{"c /etc/xen/inst1", "", "unknown or ambiguous command"},
		{"", "", "no command"},
		{"-v", "", "no command"},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			args := strings.Fields(tt.args)
			p := Analyze("xl", args, false)
			if p.Config != tt.config {
				t.Errorf("Config = %q, want %q (problem %q)", p.Config, tt.config, p.Problem)
			}
			if !strings.Contains(p.Problem, tt.problem) || (tt.problem == "") != (p.Problem == "") {
				t.Errorf("Problem = %q, want %q", p.Problem, tt.problem)
			}
			if diff := cmp.Diff(args, p.Args); diff != "" {
				t.Errorf("Args changed (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAnalyzePosix: with POSIXLY_CORRECT, GNU getopt stops at the first
// operand, so an option after the file is a second operand.
func TestAnalyzePosix(t *testing.T) {
	args := []string{"create", "-p", "/etc/xen/a", "-q"}
	p := Analyze("xl", args, true)
	if p.Config != "" || !strings.Contains(p.Problem, "more than one config file") {
		t.Errorf("POSIXLY_CORRECT: Config %q, Problem %q; want the toolstack's own complaint", p.Config, p.Problem)
	}
	p = Analyze("xl", args, false)
	if p.Config != "/etc/xen/a" || p.Problem != "" {
		t.Errorf("GNU order: Config %q, Problem %q; want /etc/xen/a", p.Config, p.Problem)
	}
}

// TestAnalyzeVerbs checks the verb, domain and wait flag the seam for
// shutdown intents relies on.
// Reference: design.md, "Shim": "On shutdown it records a host-initiated
// intent for the domain ...; when the caller does not wait (-w absent ...)".
func TestAnalyzeVerbs(t *testing.T) {
	tests := []struct {
		flavour string
		args    string
		want    Plan
	}{
		{"xl", "shutdown -w inst1", Plan{Verb: "shutdown", Domain: "inst1", Wait: true}},
		{"xl", "shutdown inst1", Plan{Verb: "shutdown", Domain: "inst1"}},
		{"xl", "shutdown --wait -F 12", Plan{Verb: "shutdown", Domain: "12", Wait: true}},
		{"xl", "shutdown -a", Plan{Verb: "shutdown", All: true}},
		{"xl", "shu inst1 -w", Plan{Verb: "shutdown", Domain: "inst1", Wait: true}},
		{"xl", "reboot inst1", Plan{Verb: "reboot", Domain: "inst1"}},
		{"xl", "shutdown", Plan{Verb: "shutdown", Problem: "shutdown: no domain"}},
		{"xl", "list -v", Plan{Verb: "list"}},
		{"xl", "-t destroy 5", Plan{Verb: "destroy", VerbIndex: 1}},
		{"xl", "sh inst1", Plan{VerbIndex: 0, Problem: "unknown or ambiguous command sh"}},
		{"xm", "create /etc/xen/inst1", Plan{Verb: "create", Config: "/etc/xen/inst1"}},
		{"xm", "shutdown inst1", Plan{Verb: "shutdown", Domain: "inst1"}},
		{"xm", "list", Plan{Verb: "list"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.flavour)+" "+tt.args, func(t *testing.T) {
			args := strings.Fields(tt.args)
			got := Analyze(tt.flavour, args, false)
			tt.want.Args = args
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}
