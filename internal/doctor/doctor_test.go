package doctor

import (
	"encoding/json"
	"path"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/config"
)

const realDir = "/usr/lib/ganeti-userdown/real"

// healthy returns the facts of a protected xl node with two running
// domains.
func healthy() Facts {
	cfg := config.Default()
	cfg.Xen.Command = realDir + "/xl"
	f := Facts{
		ConfigPath:  config.DefaultPath,
		ConfigFound: true,
		Config:      cfg,
		RealDir:     realDir,
		Shims: []ShimLink{
			{Name: "xl",
				File:      File{Path: "/usr/sbin/xl", Exists: true, Link: "userdown-hvconfig", Resolved: true, Regular: true, Perm: 0o755, Shim: true},
				Diversion: Diversion{Known: true, By: Package, To: realDir + "/xl"}},
			{Name: "xm", File: File{Path: "/usr/sbin/xm"}, Diversion: Diversion{Known: true}},
		},
		Toolstack:    File{Path: realDir + "/xl", Exists: true, Link: "../lib/xen-common/bin/xen-utils-wrapper", Resolved: true, Regular: true, Perm: 0o755},
		ToolstackRun: Probe{Tried: true, Detail: "3 domains"},
		Watcher:      File{Path: "/etc/ganeti/hooks/watcher/50-userdown", Exists: true, Resolved: true, Regular: true, Perm: 0o755},
		Credentials:  File{Path: "/etc/ganeti/userdown-rapi.secret", Exists: true, Resolved: true, Regular: true, Perm: 0o600},
		Master:       Probe{Tried: true, Detail: "2 instances with primary node node1.example.com"},
		Domains: []Domain{
			{Name: "Domain-0", ID: 0, Alive: true, Actions: map[string]string{"on_poweroff": "destroy"}},
			{Name: "web1", ID: 3, Alive: true, Actions: map[string]string{"on_poweroff": "preserve", "on_crash": "preserve", "on_reboot": "restart"}},
			{Name: "db1", ID: 4, Alive: true, Actions: map[string]string{"on_poweroff": "preserve", "on_crash": "preserve", "on_reboot": "restart"}},
		},
	}
	f.Daemon = runningDaemon()
	for _, d := range HookDirs {
		f.Hooks = append(f.Hooks, File{Path: path.Join("/etc/ganeti/hooks", d, HookName), Exists: true, Link: "/usr/sbin/userdown-hook", Resolved: true, Regular: true, Perm: 0o755})
	}
	return f
}

type line struct {
	Check  string
	Status Status
}

func lines(r Report) []line {
	var ls []line
	for _, c := range r.Checks {
		ls = append(ls, line{c.Check, c.Status})
	}
	return ls
}

func TestHealthyNode(t *testing.T) {
	r := Check(healthy())
	want := []line{
		{"config", OK}, {"shim", OK}, {"toolstack", OK}, {"hooks", OK},
		{"watcher-hook", OK}, {"credentials", OK}, {"state-dir", OK}, {"master", OK},
		{"domains", OK}, {"daemon", OK},
	}
	if d := cmp.Diff(want, lines(r)); d != "" {
		t.Errorf("checks (-want +got):\n%s\n%s", d, r.Text())
	}
	if !r.OK {
		t.Errorf("a healthy node is reported unprotected:\n%s", r.Text())
	}
	if !strings.Contains(r.Text(), "this node is protected") {
		t.Errorf("text lacks the verdict:\n%s", r.Text())
	}
}

// TestFindings changes one fact of a healthy node at a time: the check
// concerned must say so (and only it), with the status an operator must
// see.
func TestFindings(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Facts)
		check  string
		status Status
		says   string
	}{
		{"config does not parse", func(f *Facts) { f.ConfigErr = "config /etc/ganeti/userdown.toml: line 3 (key xen.toolstack): bad" },
			"config", Fail, "line 3"},
		{"no config file", func(f *Facts) { f.ConfigFound = false }, "config", Warn, "built-in defaults"},
		{"xl not the shim (package removed by hand)", func(f *Facts) {
			f.Shims[0].File = File{Path: "/usr/sbin/xl", Exists: true, Link: "../lib/xen-common/bin/xen-utils-wrapper", Resolved: true, Regular: true, Perm: 0o755}
		}, "shim", Fail, "not the shim"},
		{"xl missing", func(f *Facts) { f.Shims[0].File = File{Path: "/usr/sbin/xl"} }, "shim", Fail, "does not exist"},
		{"xl diverted by someone else", func(f *Facts) {
			f.Shims[0].Diversion = Diversion{Known: true, By: "LOCAL", To: "/usr/sbin/xl.distrib"}
		}, "shim", Fail, "diverted to /usr/sbin/xl.distrib by LOCAL"},
		{"xl not diverted", func(f *Facts) { f.Shims[0].Diversion = Diversion{Known: true} }, "shim", Fail, "not diverted"},
		{"no dpkg-divert", func(f *Facts) { f.Shims[0].Diversion = Diversion{Err: "dpkg-divert: not found"} }, "shim", Warn, "could not be checked"},
		{"command is the shim", func(f *Facts) { f.Toolstack = f.Shims[0].File }, "toolstack", Fail, "the shim itself"},
		{"command missing", func(f *Facts) { f.Toolstack = File{Path: realDir + "/xl"} }, "toolstack", Fail, "does not exist"},
		{"command a dangling link", func(f *Facts) { f.Toolstack.Resolved = false }, "toolstack", Fail, "does not resolve"},
		{"command not executable", func(f *Facts) { f.Toolstack.Perm = 0o644 }, "toolstack", Fail, "not an executable"},
		{"command fails", func(f *Facts) { f.ToolstackRun = Probe{Tried: true, Err: "exit status 1: cannot init xl context"} }, "toolstack", Fail, "cannot init xl context"},
		{"a hook link missing", func(f *Facts) { f.Hooks[3] = File{Path: f.Hooks[3].Path} }, "hooks", Fail, "50-userdown missing in instance-stop-post.d (under /etc/ganeti/hooks)"},
		{"a hook link dangles", func(f *Facts) { f.Hooks[0].Resolved = false }, "hooks", Fail, "does not resolve"},
		{"a hook not executable", func(f *Facts) { f.Hooks[12].Perm = 0o644 }, "hooks", Fail, "not executable in instance-add-pre.d"},
		{"a hook with a name Ganeti skips", func(f *Facts) { f.Hooks[1].Path = "/etc/ganeti/hooks/instance-start-post.d/50-userdown.sh" }, "hooks", Fail, "Ganeti skips it (outside [a-zA-Z0-9_-]) instance-start-post.d/50-userdown.sh"},
		{"watcher hook missing", func(f *Facts) { f.Watcher = File{Path: f.Watcher.Path} }, "watcher-hook", Fail, "missing"},
		{"watcher hook not executable", func(f *Facts) { f.Watcher.Perm = 0o644 }, "watcher-hook", Fail, "not an executable"},
		{"credentials missing", func(f *Facts) { f.Credentials = File{Path: f.Credentials.Path} }, "credentials", Fail, "does not exist"},
		{"credentials readable by others", func(f *Facts) { f.Credentials.Perm = 0o644 }, "credentials", Fail, "mode 0644"},
		{"credentials readable by the group", func(f *Facts) { f.Credentials.Perm = 0o640 }, "credentials", Fail, "mode 0640"},
		{"credentials read-only for root is fine", func(f *Facts) { f.Credentials.Perm = 0o400 }, "credentials", OK, "0400"},
		{"cli backend needs no credentials", func(f *Facts) {
			f.Config.Cluster.Backend = "cli"
			f.Credentials = File{Path: f.Credentials.Path}
		}, "credentials", OK, "needs no RAPI credentials"},
		// Reference: doc/design.md, "State files": a state dir another
		// user can write in is refused; doctor says so.
		{"state dir writable by others", func(f *Facts) {
			f.StateProblems = []string{"state dir /var/lib/ganeti-userdown: owner 0, mode 0777: group or others may write in it; fix: chmod 0700 /var/lib/ganeti-userdown"}
		}, "state-dir", Fail, "mode 0777"},
		{"master does not answer", func(f *Facts) { f.Master = Probe{Tried: true, Err: "dial tcp 192.0.2.1:5080: connection refused"} }, "master", Fail, "connection refused"},
		{"master not asked", func(f *Facts) { f.Master = Probe{Skipped: "the configuration does not parse"} }, "master", Warn, "not asked"},
		{"domain without preserve", func(f *Facts) {
			f.Domains[2].Actions = map[string]string{"on_poweroff": "destroy", "on_crash": "restart"}
		}, "domains", Warn, "1 of 2 running domains run without the configured actions: db1 (on_crash=restart, on_poweroff=destroy)"},
		{"Ganeti 3.x's own config: preserve but on_crash restart", func(f *Facts) {
			f.Domains[1].Actions["on_crash"] = "restart"
		}, "domains", Warn, "web1 (on_crash=restart)"},
		{"dead domains are not running ones", func(f *Facts) {
			f.Domains[2].Alive = false
			f.Domains[2].Actions = map[string]string{"on_poweroff": "destroy"}
		}, "domains", OK, "all 1 running domains"},
		{"domain actions unreadable", func(f *Facts) { f.Domains[1].Err = "list -l: exit status 1" }, "domains", Fail, "web1"},
		{"domains unreadable", func(f *Facts) { f.DomainsErr = "xl list: exit status 1" }, "domains", Fail, "cannot list"},
	}
	base := lines(Check(healthy()))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := healthy()
			tt.change(&f)
			r := Check(f)
			want := make([]line, len(base))
			copy(want, base)
			for i := range want {
				if want[i].Check == tt.check {
					want[i].Status = tt.status
				}
			}
			if d := cmp.Diff(want, lines(r)); d != "" {
				t.Errorf("checks (-want +got):\n%s\n%s", d, r.Text())
			}
			for _, c := range r.Checks {
				if c.Check == tt.check && !strings.Contains(c.Message, tt.says) {
					t.Errorf("%s says %q, want it to mention %q", c.Check, c.Message, tt.says)
				}
				if c.Status != OK && c.Fix == "" && c.Check == tt.check && tt.status == Fail {
					t.Errorf("%s fails without saying what to do", c.Check)
				}
			}
			if r.OK != (tt.status != Fail) {
				t.Errorf("report OK = %v with a %s", r.OK, tt.status)
			}
		})
	}
}

// TestXMNode checks the xm flavour: the shim is xm, and an xl beside it
// that is not wrapped is only a warning.
func TestXMNode(t *testing.T) {
	f := healthy()
	f.Config.Xen.Toolstack = "xm"
	f.Config.Xen.Command = realDir + "/xm"
	f.Shims[1] = ShimLink{Name: "xm",
		File:      File{Path: "/usr/sbin/xm", Exists: true, Link: "userdown-hvconfig", Resolved: true, Regular: true, Perm: 0o755, Shim: true},
		Diversion: Diversion{Known: true, By: Package, To: realDir + "/xm"}}
	f.Shims[0] = ShimLink{Name: "xl",
		File:      File{Path: "/usr/sbin/xl", Exists: true, Resolved: true, Regular: true, Perm: 0o755},
		Diversion: Diversion{Known: true}}
	r := Check(f)
	var shims []Result
	for _, c := range r.Checks {
		if c.Check == "shim" {
			shims = append(shims, c)
		}
	}
	if len(shims) != 2 || shims[0].Status != Warn || shims[1].Status != OK {
		t.Errorf("shim lines: %+v", shims)
	}
	if !r.OK {
		t.Errorf("an unwrapped xl beside the configured xm fails the node:\n%s", r.Text())
	}
}

func TestReportJSON(t *testing.T) {
	f := healthy()
	f.Watcher = File{Path: f.Watcher.Path}
	b, err := json.Marshal(Check(f))
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		OK     bool `json:"ok"`
		Checks []struct {
			Check, Status, Message, Fix string
		} `json:"checks"`
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.OK || len(back.Checks) != 10 || back.Checks[4].Check != "watcher-hook" || back.Checks[4].Status != "fail" || back.Checks[4].Fix == "" {
		t.Errorf("JSON report: %s", b)
	}
}
