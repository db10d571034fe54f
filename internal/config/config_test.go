package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestEmptyFileGivesDefaults(t *testing.T) {
	c, err := Parse("empty.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Path = "empty.toml"
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("empty config (-want +got):\n%s", diff)
	}
}

func TestDesignExampleParses(t *testing.T) {
	// The TOML block of design.md, section "Configuration".
	doc := `
[xen]
toolstack  = "xm"
command    = "/usr/lib/ganeti-userdown/real/xm"
config_dir = "/etc/xen"

[actions]
on_poweroff = "preserve"
on_crash    = "coredump-destroy"
on_shutdown = ""

[cluster]
backend  = "cli"
node     = "node1.example.com"
rapi_url = "https://master.example.com:5080"
timeout  = "45s"

[policy]
default = "restart"
settle  = "90s"

[crash]
dump_dir = "/var/lib/xen/dump"
keep     = 5

[state]
dir = "/run/userdown"
`
	c, err := Parse("x.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if c.Xen.Toolstack != "xm" || c.Cluster.Backend != "cli" || c.Policy.Settle.Duration != 90*time.Second ||
		c.Cluster.Timeout.Duration != 45*time.Second || c.Crash.Keep != 5 || c.State.Dir != "/run/userdown" {
		t.Errorf("values not decoded: %+v", c)
	}
	// Keys absent from the file keep their defaults.
	if c.Cluster.GntDebug != "/usr/sbin/gnt-debug" {
		t.Errorf("gnt_debug default lost: %q", c.Cluster.GntDebug)
	}
	got := c.Actions.ActionList()
	want := []KeyValue{{"on_poweroff", "preserve"}, {"on_crash", "coredump-destroy"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ActionList (-want +got):\n%s", diff)
	}
}

func TestBadInputNamesFileAndKey(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"unknown key", "[xen]\ntoolstak = \"xl\"\n", []string{"bad.toml", "xen.toolstak"}},
		{"unknown table", "[xenn]\nx = 1\n", []string{"bad.toml", "xenn"}},
		{"bad toolstack", "[xen]\ntoolstack = \"kvm\"\n", []string{"bad.toml", "[xen] toolstack", `"kvm"`}},
		{"bad duration", "[cluster]\ntimeout = \"soon\"\n", []string{"bad.toml", "timeout", "soon"}},
		{"zero shutdown timeout", "[cluster]\nshutdown_timeout = \"0s\"\n", []string{"bad.toml", "[cluster] shutdown_timeout"}},
		{"bad action", "[actions]\non_crash = \"explode\"\n", []string{"[actions] on_crash", "explode"}},
		{"bad policy", "[policy]\ndefault = \"maybe\"\n", []string{"[policy] default", "maybe"}},
		{"relative dir", "[state]\ndir = \"state\"\n", []string{"[state] dir", "absolute"}},
		{"syntax", "[xen]\ntoolstack = xl\n", []string{"bad.toml", "line 2"}},
		{"wrong type", "[crash]\nkeep = \"three\"\n", []string{"bad.toml", "keep"}},
		{"keep zero", "[crash]\nkeep = 0\n", []string{"[crash] keep"}},
		{"http url", "[cluster]\nrapi_url = \"http://m:5080\"\n", []string{"[cluster] rapi_url"}},
		{"relative xenstore", "[events]\nxenstore = \"socket\"\n", []string{"[events] xenstore", "absolute"}},
		{"rescan too short", "[events]\nrescan = \"10ms\"\n", []string{"[events] rescan", "10ms"}},
		{"negative debounce", "[events]\ndebounce = \"-1s\"\n", []string{"[events] debounce"}},
		{"enabled not a bool", "[events]\nenabled = \"yes\"\n", []string{"bad.toml", "enabled"}},
		{"textfile not .prom", "[metrics]\ntextfile = \"/var/lib/x.txt\"\n", []string{"[metrics] textfile", ".prom"}},
		{"relative textfile", "[metrics]\ntextfile = \"x.prom\"\n", []string{"[metrics] textfile", "absolute"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("bad.toml", []byte(tc.doc))
			if err == nil {
				t.Fatalf("no error for %q", tc.doc)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestResolveAndLoad(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if p, explicit := Resolve("", getenv); p != DefaultPath || explicit {
		t.Errorf("Resolve() = %q, %v", p, explicit)
	}
	env[EnvVar] = "/from/env.toml"
	if p, explicit := Resolve("", getenv); p != "/from/env.toml" || !explicit {
		t.Errorf("Resolve(env) = %q, %v", p, explicit)
	}
	if p, _ := Resolve("/flag.toml", getenv); p != "/flag.toml" {
		t.Errorf("flag does not win: %q", p)
	}

	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.toml")
	if _, err := Load(missing, true); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("explicit missing file: err = %v", err)
	}
	c, err := Load(missing, false)
	if err != nil || c.Xen.Toolstack != "xl" {
		t.Errorf("implicit missing file: %v, %+v", err, c.Xen)
	}
	p := filepath.Join(dir, "u.toml")
	if err := os.WriteFile(p, []byte("[policy]\nsettle = \"1m\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err = Load(p, true)
	if err != nil || c.Policy.Settle.Duration != time.Minute || c.Path != p {
		t.Errorf("Load: %v, %+v", err, c)
	}
}

func TestLoadFrom(t *testing.T) {
	p := filepath.Join(t.TempDir(), "u.toml")
	if err := os.WriteFile(p, []byte("[crash]\nkeep = 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{EnvVar: p}
	c, err := LoadFrom("", func(k string) string { return env[k] })
	if err != nil || c.Crash.Keep != 7 {
		t.Errorf("LoadFrom(env): %v, keep %d", err, c.Crash.Keep)
	}
	if _, err := LoadFrom(filepath.Join(t.TempDir(), "absent.toml"), func(string) string { return "" }); err == nil {
		t.Error("LoadFrom(absent flag): no error")
	}
}

func TestEventsAndMetrics(t *testing.T) {
	d := Default()
	if !d.Events.Enabled || d.Events.XenStore != "" || d.Events.Rescan.Duration != time.Minute || d.Events.Debounce.Duration <= 0 {
		t.Errorf("[events] defaults: %+v", d.Events)
	}
	if d.Metrics.Textfile != "/var/lib/prometheus/node-exporter/ganeti-userdown.prom" {
		t.Errorf("[metrics] textfile default %q", d.Metrics.Textfile)
	}
	c, err := Parse("e.toml", []byte("[events]\nenabled = false\nxenstore = \"/run/x/socket\"\nrescan = \"5m\"\ndebounce = \"0s\"\n[metrics]\ntextfile = \"\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Events{Enabled: false, XenStore: "/run/x/socket", Rescan: Duration{5 * time.Minute}, Debounce: Duration{0}}
	if diff := cmp.Diff(want, c.Events); diff != "" {
		t.Errorf("[events] (-want +got):\n%s", diff)
	}
	if c.Metrics.Textfile != "" {
		t.Errorf("an empty textfile turns the metrics off, got %q", c.Metrics.Textfile)
	}
}
