package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/testbin"
	"ganeti-userdown/internal/xen"
	"ganeti-userdown/testdata/xensim/simlog"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// node is one simulated Xen node: a state file, a call log and the
// simulator built under the toolstack's name.
type node struct {
	t       *testing.T
	flavour xen.Flavour
	bin     string
	dir     string
	env     []string
}

func newNode(t *testing.T, f xen.Flavour) *node {
	t.Helper()
	dir := t.TempDir()
	n := &node{t: t, flavour: f, bin: testbin.BuildAs(t, "ganeti-userdown/testdata/xensim", string(f)), dir: dir}
	n.env = append(os.Environ(),
		"XENSIM_STATE="+filepath.Join(dir, "state.json"),
		"XENSIM_LOG="+filepath.Join(dir, "calls.log"),
		"XENSIM_FLAVOUR=",
		"XENSIM_SHUTDOWN_DELAY=",
		"XENSIM_DUMP_DIR=",
	)
	return n
}

type result struct {
	stdout, stderr string
	code           int
}

func (n *node) runEnv(ctx context.Context, env []string, args ...string) result {
	n.t.Helper()
	cmd := exec.CommandContext(ctx, n.bin, args...)
	cmd.Env = append(append([]string(nil), n.env...), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{out.String(), errb.String(), 0}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		n.t.Fatalf("%s %v: %v", n.flavour, args, err)
	}
	return r
}

func (n *node) run(args ...string) result {
	n.t.Helper()
	return n.runEnv(context.Background(), nil, args...)
}

// ok runs a command that must succeed and returns its stdout.
func (n *node) ok(args ...string) string {
	n.t.Helper()
	r := n.run(args...)
	if r.code != 0 {
		n.t.Fatalf("%s %s: exit %d\n%s", n.flavour, strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// config writes a domain config and returns its path.
func (n *node) config(name string, lines ...string) string {
	n.t.Helper()
	p := filepath.Join(n.dir, name+".cfg")
	src := fmt.Sprintf("name = '%s'\nmemory = 128\nvcpus = 1\n%s\n", name, strings.Join(lines, "\n"))
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		n.t.Fatal(err)
	}
	return p
}

// domains lists the node through ganeti-userdown's own client.
func (n *node) domains() map[string]xen.Domain {
	n.t.Helper()
	args := []string{"list"}
	if n.flavour == xen.XL {
		args = append(args, "-v")
	}
	doms, err := xen.ParseList(n.flavour, []byte(n.ok(args...)))
	if err != nil {
		n.t.Fatal(err)
	}
	m := map[string]xen.Domain{}
	for _, d := range doms {
		m[d.Name] = d
	}
	return m
}

func (n *node) log() []simlog.Entry {
	n.t.Helper()
	es, err := simlog.Read(filepath.Join(n.dir, "calls.log"))
	if err != nil {
		n.t.Fatal(err)
	}
	return es
}

func TestCreateListDestroyXL(t *testing.T) {
	n := newNode(t, xen.XL)
	cfg := n.config("web1.example.com", "on_poweroff = 'preserve'", "uuid = '5C7C8EA0-1B2D-4E5F-8A9B-0C1D2E3F4A5B'")
	r := n.run("create", cfg)
	if r.code != 0 || r.stderr != "Parsing config from "+cfg+"\n" || r.stdout != "" {
		t.Fatalf("create: %+v", r)
	}
	doms := n.domains()
	web := doms["web1.example.com"]
	if web.ID != 1 || web.UUID != "5c7c8ea0-1b2d-4e5f-8a9b-0c1d2e3f4a5b" || web.State.Letters != "-b----" || web.MemMiB != 128 {
		t.Errorf("web1: %+v", web)
	}
	if d0 := doms["Domain-0"]; d0.ID != 0 || d0.State.Letters != "r-----" {
		t.Errorf("dom0: %+v", d0)
	}
	// A name that exists is refused, whatever its state.
	r = n.run("create", cfg)
	if r.code != 3 || !strings.Contains(r.stderr, `Domain with name "web1.example.com" already exists.`) {
		t.Errorf("second create: %+v", r)
	}
	// Extra key=value arguments are config lines; -p starts paused.
	n.ok("create", "-p", cfg, "name='db1.example.com'", "memory=512")
	db := n.domains()["db1.example.com"]
	if db.ID != 2 || db.MemMiB != 512 || db.State.Letters != "--p---" {
		t.Errorf("db1: %+v", db)
	}
	// Domids are never reused.
	n.ok("destroy", "2")
	n.ok("create", cfg, "name='db2.example.com'")
	if id := n.domains()["db2.example.com"].ID; id != 3 {
		t.Errorf("db2 got domid %d, want 3", id)
	}
	if _, ok := n.domains()["db1.example.com"]; ok {
		t.Errorf("db1 not destroyed")
	}
	// `list DOM` by name and by domid.
	one := n.ok("list", "-v", "1")
	if got, err := xen.ParseList(xen.XL, []byte(one)); err != nil || len(got) != 1 || got[0].Name != "web1.example.com" {
		t.Errorf("list -v 1: %v %+v", err, got)
	}
	if got, err := xen.ParseList(xen.XL, []byte(n.ok("list", "web1.example.com"))); err != nil || len(got) != 1 || got[0].ID != 1 {
		t.Errorf("list web1: %v %+v", err, got)
	}
}

func TestCreateErrors(t *testing.T) {
	n := newNode(t, xen.XL)
	bad := filepath.Join(n.dir, "bad.cfg")
	os.WriteFile(bad, []byte("name = 'x'\nmemory = \n"), 0o644)
	noname := filepath.Join(n.dir, "noname.cfg")
	os.WriteFile(noname, []byte("memory = 128\n"), 0o644)
	badact := n.config("act.example.com", "on_poweroff = 'explode'")
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"create", bad}, 1, "Failed to parse config: Invalid argument\n"},
		{[]string{"create", noname}, 1, "Domain name must be specified.\n"},
		{[]string{"create", badact}, 1, "Unknown on_poweroff action \"explode\" specified\n"},
		{[]string{"create", filepath.Join(n.dir, "missing.cfg")}, 3, "Failed to read config file: " + filepath.Join(n.dir, "missing.cfg") + ": no such file or directory\n"},
		{[]string{"create", "-x", bad}, 2, "option `x' not supported.\n"},
	} {
		r := n.run(tc.args...)
		if r.code != tc.code || !strings.HasSuffix(r.stderr, tc.stderr) {
			t.Errorf("%v: exit %d stderr %q; want %d, ending %q", tc.args, r.code, r.stderr, tc.code, tc.stderr)
		}
	}
	if doms := n.domains(); len(doms) != 1 {
		t.Errorf("failed creates left domains: %v", doms)
	}
}

// TestUnknownDomains checks the exit codes and messages of the toolstack
// for domains that do not exist, by name and by domid.
func TestUnknownDomains(t *testing.T) {
	xl := newNode(t, xen.XL)
	xm := newNode(t, xen.XM)
	for _, tc := range []struct {
		n      *node
		args   []string
		code   int
		stderr string
	}{
		{xl, []string{"destroy", "nope"}, 1, "nope is an invalid domain identifier (rc=-6)\n"},
		{xl, []string{"destroy", "42"}, 1, "destroy failed (rc=-21)\n"},
		{xl, []string{"destroy", "0"}, 1, "Not destroying domain 0; use -f to force.\nThis can only be done when using a disaggregated hardware domain and toolstack.\n\n"},
		{xl, []string{"list", "nope"}, 1, "nope is an invalid domain identifier (rc=-6)\n"},
		{xl, []string{"list", "-v", "42"}, 1, "Error: Domain '42' does not exist.\n"},
		{xl, []string{"shutdown", "nope"}, 1, "nope is an invalid domain identifier (rc=-6)\n"},
		{xl, []string{"shutdown", "-w", "42"}, 1, "shutdown failed (rc=-3)\n"},
		{xl, []string{"shutdown"}, 1, "You must specify -a or a domain id.\n\n"},
		{xl, []string{"reboot", "nope"}, 1, "nope is an invalid domain identifier (rc=-6)\n"},
		{xl, []string{"dump-core", "nope", "/tmp/x"}, 1, "nope is an invalid domain identifier (rc=-6)\n"},
		{xl, []string{"rename", "nope", "other"}, 1, "nope is an invalid domain identifier (rc=-6)\n"},
		{xl, []string{"destroy"}, 2, "'xl destroy' requires at least 1 argument.\n\n"},
		{xl, []string{"frobnicate"}, 1, "command not implemented\n"},
		{xm, []string{"destroy", "nope"}, 1, "Error: Domain 'nope' does not exist.\n"},
		{xm, []string{"destroy", "42"}, 1, "Error: Domain '42' does not exist.\n"},
		{xm, []string{"list", "nope"}, 1, "Error: Domain 'nope' does not exist.\n"},
		{xm, []string{"shutdown", "nope"}, 1, "Error: Domain 'nope' does not exist.\n"},
		{xm, []string{"list", "-v"}, 1, "xm list -v is deprecated.  Please use xm vcpu-list.\n"},
	} {
		r := tc.n.run(tc.args...)
		if r.code != tc.code || !strings.HasSuffix(r.stderr, tc.stderr) {
			t.Errorf("%s %v: exit %d stderr %q; want %d, ending %q", tc.n.flavour, tc.args, r.code, r.stderr, tc.code, tc.stderr)
		}
	}
	// The client recognises "does not exist" as a gone domain.
	c := xen.NewClient(xen.XL, xl.bin, 10*time.Second)
	t.Setenv("XENSIM_STATE", filepath.Join(xl.dir, "state.json"))
	if d, found, err := c.Lookup(context.Background(), 42); err != nil || found {
		t.Errorf("Lookup(42) = %+v %v %v", d, found, err)
	}
}

// TestGuestActions plays every guest event against every action and checks
// the result Xen would leave.
// Reference: design.md, "Tests and fakes": the simulator "applies a
// domain's configured actions when the test makes its guest power off,
// reboot, crash or hit the watchdog"; and "Xen facts" for the letters.
func TestGuestActions(t *testing.T) {
	type outcome struct {
		gone     bool   // the old domain is no longer listed
		letters  string // the old domain's state when kept
		code     int    // its reason code (xl -v), -1 when not shown
		restart  bool   // a new domain of the same name runs
		renamed  bool   // the old domain was renamed (rename-restart)
		dumpFile bool
	}
	events := []struct {
		verb, key string
		code      int
	}{{"poweroff", "on_poweroff", 0}, {"reboot", "on_reboot", 1}, {"crash", "on_crash", 3}, {"watchdog", "on_watchdog", 4}}
	xlLetters := map[int]string{0: "---s--", 1: "---sr-", 3: "---sc-", 4: "---sw-"}
	xmLetters := map[int]string{0: "---s--", 1: "---s--", 3: "----c-", 4: "---s--"}
	for _, f := range []xen.Flavour{xen.XL, xen.XM} {
		n := newNode(t, f)
		for _, ev := range events {
			if f == xen.XM && ev.key == "on_watchdog" {
				ev.key = "on_poweroff" // xm has no on_watchdog: a watchdog shutdown looks like a poweroff
			}
			for _, action := range []string{"destroy", "restart", "rename-restart", "preserve", "coredump-destroy", "coredump-restart"} {
				name := fmt.Sprintf("%s-%s", ev.verb, action)
				t.Run(fmt.Sprintf("%s/%s", f, name), func(t *testing.T) {
					n.t = t
					n.ok("create", n.config(name, fmt.Sprintf("%s = '%s'", ev.key, action)))
					before := n.domains()[name]
					n.ok("sim", ev.verb, name)
					var want outcome
					letters := xlLetters
					if f == xen.XM {
						letters = xmLetters
					}
					switch action {
					case "destroy":
						want = outcome{gone: true}
					case "restart":
						want = outcome{gone: true, restart: true}
					case "rename-restart":
						want = outcome{renamed: true, restart: true, letters: letters[ev.code]}
					case "preserve":
						want = outcome{letters: letters[ev.code]}
					case "coredump-destroy":
						want = outcome{gone: true, dumpFile: true}
					case "coredump-restart":
						want = outcome{gone: true, restart: true, dumpFile: true}
					}
					want.code = -1
					if f == xen.XL && want.letters != "" {
						want.code = ev.code
					}
					doms := n.domains()
					var got outcome
					got.code = -1
					var old *xen.Domain
					for _, d := range doms {
						if d.ID == before.ID {
							old = &d
						}
					}
					got.gone = old == nil
					if old != nil {
						got.letters = old.State.Letters
						got.code = old.State.Code
						got.renamed = old.Name != name
						if got.renamed && !strings.HasPrefix(old.Name, name+"-") {
							t.Errorf("renamed to %q", old.Name)
						}
					}
					if nd, ok := doms[name]; ok && nd.ID != before.ID {
						got.restart = true
						if nd.ID <= before.ID || nd.State.Letters != "-b----" || nd.UUID != before.UUID {
							t.Errorf("restarted domain %+v (before %+v)", nd, before)
						}
					}
					_, err := os.Stat(filepath.Join(n.dir, "dump", name))
					got.dumpFile = err == nil
					if diff := cmp.Diff(want, got, cmp.AllowUnexported(outcome{})); diff != "" {
						t.Errorf("(-want +got):\n%s", diff)
					}
					// The guest of a dead domain cannot act again.
					if old != nil && !old.State.Alive() {
						if r := n.run("sim", ev.verb, old.Name); r.code != 1 {
							t.Errorf("sim %s on a dead domain: %+v", ev.verb, r)
						}
					}
				})
			}
		}
	}
}

// TestActionsThroughClient reads the live actions of simulated domains
// with ganeti-userdown's client: xl's JSON leaves destroy out, xm prints
// S-expressions.
func TestActionsThroughClient(t *testing.T) {
	for _, f := range []xen.Flavour{xen.XL, xen.XM} {
		t.Run(string(f), func(t *testing.T) {
			n := newNode(t, f)
			n.ok("create", n.config("web1", "on_poweroff = 'preserve'", "on_crash = 'coredump-restart'", "on_reboot = 'rename-restart'"))
			n.ok("create", n.config("web2"))
			long := n.ok("list", "-l", "web2")
			if f == xen.XL && (strings.Contains(long, "on_poweroff") || !strings.Contains(long, `"on_reboot": "restart"`)) {
				t.Errorf("xl list -l: defaults wrong:\n%s", long)
			}
			t.Setenv("XENSIM_STATE", filepath.Join(n.dir, "state.json"))
			c := xen.NewClient(f, n.bin, 10*time.Second)
			got1, err := c.Actions(context.Background(), "web1")
			if err != nil {
				t.Fatal(err)
			}
			got2, err := c.Actions(context.Background(), "2")
			if err != nil {
				t.Fatal(err)
			}
			want1 := map[string]string{"on_poweroff": "preserve", "on_reboot": "rename-restart", "on_crash": "coredump-restart", "on_watchdog": "destroy", "on_soft_reset": "soft-reset"}
			want2 := map[string]string{"on_poweroff": "destroy", "on_reboot": "restart", "on_crash": "destroy", "on_watchdog": "destroy", "on_soft_reset": "soft-reset"}
			if f == xen.XM {
				want1 = map[string]string{"on_poweroff": "preserve", "on_reboot": "rename-restart", "on_crash": "coredump-restart"}
				want2 = map[string]string{"on_poweroff": "destroy", "on_reboot": "restart", "on_crash": "restart"}
			}
			if diff := cmp.Diff(want1, got1); diff != "" {
				t.Errorf("web1 (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want2, got2); diff != "" {
				t.Errorf("web2 (-want +got):\n%s", diff)
			}
			doms, err := c.List(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(doms) != 3 || doms[1].UUID == "" || doms[2].UUID == "" || doms[1].UUID == doms[2].UUID {
				t.Errorf("List: %+v", doms)
			}
			d, ok, err := c.Lookup(context.Background(), 2)
			if err != nil || !ok || d.Name != "web2" || d.UUID != doms[2].UUID {
				t.Errorf("Lookup(2) = %+v %v %v", d, ok, err)
			}
		})
	}
}

// TestShutdownRealistic: a guest takes its shutdown-delay to act on a
// shutdown request, then its on_poweroff action applies; `shutdown` returns
// at once, `shutdown -w` waits; a guest that ignores the request holds
// `shutdown -w` until its caller gives up.
// Reference: design.md, "Xen facts": "`xl shutdown` returns at once; `-w`
// waits for shutdown or death."
func TestShutdownRealistic(t *testing.T) {
	n := newNode(t, xen.XL)
	n.ok("create", n.config("web1", "on_poweroff = 'preserve'"))
	n.ok("create", n.config("web2")) // on_poweroff destroy
	n.ok("sim", "set", "web1", "shutdown-delay=400ms")

	start := time.Now()
	r := n.run("shutdown", "web1")
	if r.code != 0 || r.stderr != "Shutting down domain 1\n" {
		t.Fatalf("shutdown: %+v", r)
	}
	if d := n.domains()["web1"]; d.State.Letters != "-b----" && time.Since(start) < 400*time.Millisecond {
		t.Errorf("web1 shut down before its delay: %s", d.State.Letters)
	}
	time.Sleep(450 * time.Millisecond)
	if d := n.domains()["web1"]; d.State.Letters != "---s--" || d.State.Code != 0 {
		t.Errorf("web1 after its delay: %+v", d.State)
	}

	// -w waits for the delay; the environment default applies to web2.
	start = time.Now()
	r = n.runEnv(context.Background(), []string{"XENSIM_SHUTDOWN_DELAY=300ms"}, "shutdown", "-w", "web2")
	if el := time.Since(start); r.code != 0 || el < 300*time.Millisecond {
		t.Errorf("shutdown -w: %+v after %v", r, el)
	}
	if !strings.HasSuffix(r.stderr, "Waiting for 1 domains\nDomain 2 has been destroyed\n") {
		t.Errorf("shutdown -w stderr: %q", r.stderr)
	}
	if _, ok := n.domains()["web2"]; ok {
		t.Errorf("web2 (on_poweroff destroy) still listed")
	}

	// A hung guest: -w is killed at the caller's timeout, the domain runs
	// on; released, it completes the shutdown it was asked for.
	n.ok("create", n.config("web3", "on_poweroff = 'preserve'"))
	n.ok("sim", "set", "web3", "ignore-shutdown=true")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	r = n.runEnv(ctx, nil, "shutdown", "-w", "web3")
	if r.code == 0 {
		t.Errorf("shutdown -w of a hung guest returned: %+v", r)
	}
	if d := n.domains()["web3"]; !d.State.Alive() {
		t.Errorf("hung guest shut down: %+v", d.State)
	}
	n.ok("sim", "set", "web3", "ignore-shutdown=false")
	if d := n.domains()["web3"]; !d.State.UserPoweredOff() {
		t.Errorf("released guest: %+v", d.State)
	}
	// The killed call is in the log, unfinished.
	var unfinished []string
	for _, e := range n.log() {
		if !e.Finished {
			unfinished = append(unfinished, e.String())
		}
	}
	if diff := cmp.Diff([]string{"xl shutdown -w web3 (unfinished)"}, unfinished); diff != "" {
		t.Errorf("unfinished calls (-want +got):\n%s", diff)
	}

	// reboot applies on_reboot (restart: a new domid).
	n.ok("create", n.config("web4"))
	n.ok("reboot", "web4")
	if d := n.domains()["web4"]; d.ID == 4 || !d.State.Alive() {
		t.Errorf("web4 after reboot: %+v", d)
	}
	// shutdown -a spares dom0.
	n.ok("shutdown", "-a", "-w")
	doms := n.domains()
	if _, ok := doms["Domain-0"]; !ok || !doms["web1"].State.Dead() || !doms["web3"].State.Dead() {
		t.Errorf("after shutdown -a: %+v", doms)
	}
	if _, ok := doms["web4"]; ok {
		t.Errorf("web4 (on_poweroff destroy) survived shutdown -a")
	}
}

// TestXMStates: xm prints a crashed domain as ----c- and a poweroff like
// a reboot in flight.
// Reference: design.md, "Xen facts": "with xm a crashed domain shows
// `----c-` (the shutdown flag is cleared) and a watchdog shutdown looks
// exactly like a poweroff."
func TestXMStates(t *testing.T) {
	n := newNode(t, xen.XM)
	r := n.run("create", n.config("web1", "on_poweroff = 'preserve'", "on_crash = 'preserve'"))
	if r.code != 0 || r.stdout != "Using config file \""+filepath.Join(n.dir, "web1.cfg")+"\".\nStarted domain web1 (id=1)\n" {
		t.Fatalf("xm create: %+v", r)
	}
	n.ok("create", n.config("web2", "on_poweroff = 'preserve'", "on_crash = 'preserve'"))
	n.ok("sim", "crash", "web1")
	n.ok("sim", "poweroff", "web2")
	doms := n.domains()
	if s := doms["web1"].State; s.Letters != "----c-" || !s.Crashed() {
		t.Errorf("xm crashed: %+v", s)
	}
	if s := doms["web2"].State; s.Letters != "---s--" || !s.UserPoweredOff() {
		t.Errorf("xm powered off: %+v", s)
	}
	infos, err := xen.ParseXMLong([]byte(n.ok("list", "-l")))
	if err != nil || len(infos) != 3 || infos[1].Name != "web1" || !uuidRE.MatchString(infos[1].UUID) || infos[1].Actions["on_crash"] != "preserve" {
		t.Errorf("xm list -l: %v %+v", err, infos)
	}
}

func TestDumpCoreRenamePause(t *testing.T) {
	n := newNode(t, xen.XL)
	n.ok("create", n.config("web1", "on_crash = 'preserve'"))
	n.ok("sim", "crash", "web1")
	core := filepath.Join(n.dir, "cores", "web1.core")
	n.ok("dump-core", "1", core)
	if b, err := os.ReadFile(core); err != nil || !strings.Contains(string(b), "domid=1") {
		t.Errorf("core: %q %v", b, err)
	}
	n.ok("create", n.config("web2"))
	r := n.run("rename", "web2", "web1")
	if r.code != 1 || !strings.HasSuffix(r.stderr, "Can't rename domain 'web2'.\n") {
		t.Errorf("rename onto an existing name: %+v", r)
	}
	n.ok("rename", "web2", "web3")
	n.ok("pause", "web3")
	if s := n.domains()["web3"].State.Letters; s != "--p---" {
		t.Errorf("paused: %s", s)
	}
	// A paused guest does not act on a shutdown request until unpaused.
	n.ok("shutdown", "web3")
	if s := n.domains()["web3"].State.Letters; s != "--p---" {
		t.Errorf("paused guest shut down: %s", s)
	}
	n.ok("unpause", "web3")
	if _, ok := n.domains()["web3"]; ok {
		t.Errorf("unpaused guest did not complete its shutdown (on_poweroff destroy)")
	}
	// sim set state= forces a race state for tests of other packages.
	n.ok("create", n.config("web4"))
	n.ok("sim", "set", "web4", "state=--psc-")
	if s := n.domains()["web4"].State; s.Letters != "--psc-" || s.Code != 3 {
		t.Errorf("forced state: %+v", s)
	}
	if r := n.run("sim", "set", "web4", "state=--"); r.code != 2 {
		t.Errorf("bad forced state accepted: %+v", r)
	}
}

// TestLiveDestroysInLog: the call log records the state each destroyed
// domain had, so tests can prove no running domain was destroyed.
// Reference: design.md, "Decisions", safety rule 1: "Never destroy a
// domain that is not shut down or crashed."
func TestLiveDestroysInLog(t *testing.T) {
	n := newNode(t, xen.XL)
	n.ok("create", n.config("dead", "on_poweroff = 'preserve'"))
	n.ok("create", n.config("alive"))
	n.ok("sim", "poweroff", "dead")
	n.ok("destroy", "1")
	n.ok("destroy", "alive")
	es := n.log()
	live, err := simlog.LiveDestroys(es)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range live {
		got = append(got, fmt.Sprintf("%s %s", e.Destroyed.Name, e.Destroyed.State))
	}
	if diff := cmp.Diff([]string{"alive -b----"}, got); diff != "" {
		t.Errorf("live destroys (-want +got):\n%s", diff)
	}
	if ds := simlog.Calls(es, "destroy"); len(ds) != 2 || ds[0].Destroyed.State != "---s--" || ds[0].Destroyed.ID != 1 {
		t.Errorf("destroy calls: %+v", ds)
	}
}

// TestListLayoutMatchesXLInfoC checks the simulator's `xl list` and
// `xl list -v` against the column layout of tools/xl/xl_info.c
// list_domains, position by position: "%-40s %5d %5lu %5d     %c%c%c%c%c%c
// %8.1f", then for -v " %s" (uuid), " %8x" or " %8s" ("-"), " %16s"
// (label). The parser is thereby tested against the real format, not only
// against its own printer.
func TestListLayoutMatchesXLInfoC(t *testing.T) {
	n := newNode(t, xen.XL)
	n.ok("create", n.config("web1.example.com", "on_poweroff = 'preserve'"))
	n.ok("create", n.config("a-name-that-is-exactly-forty-chars-long1", "on_crash = 'preserve'", "memory = 65536", "vcpus = 16"))
	n.ok("sim", "poweroff", "web1.example.com")
	n.ok("sim", "crash", "2")
	n.ok("sim", "set", "Domain-0", "state=rb----")
	for _, verbose := range []bool{false, true} {
		args := []string{"list"}
		header := "Name                                        ID   Mem VCPUs\tState\tTime(s)"
		if verbose {
			args = append(args, "-v")
			header += "   UUID                            Reason-Code\tSecurity Label"
		}
		out := n.ok(args...)
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if lines[0] != header {
			t.Errorf("header %q, want %q", lines[0], header)
		}
		col := func(l string, from, to int) string {
			if len(l) < to {
				return ""
			}
			return l[from:to]
		}
		type row struct{ name, id, mem, vcpus, gap, state, gap2, time, uuid, code, label string }
		var rows []row
		for _, l := range lines[1:] {
			r := row{
				name: col(l, 0, 40), id: col(l, 40, 46), mem: col(l, 46, 52), vcpus: col(l, 52, 58),
				gap: col(l, 58, 63), state: col(l, 63, 69), gap2: col(l, 69, 71), time: col(l, 71, 79),
			}
			want := 79
			if verbose {
				r.uuid, r.code, r.label = col(l, 79, 116), col(l, 116, 125), col(l, 125, 142)
				want = 142
			}
			if len(l) != want {
				t.Errorf("line %q: length %d, want %d", l, len(l), want)
			}
			rows = append(rows, r)
		}
		wantRows := []row{
			{"Domain-0                                ", "     0", "  2048", "     2", "     ", "rb----", "  ", "", "", "        -", "                -"},
			{"web1.example.com                        ", "     1", "   128", "     1", "     ", "---s--", "  ", "", "", "        0", "                -"},
			{"a-name-that-is-exactly-forty-chars-long1", "     2", " 65536", "    16", "     ", "---sc-", "  ", "", "", "        3", "                -"},
		}
		for i := range rows {
			if !regexp.MustCompile(`^ *[0-9]+\.[0-9]$`).MatchString(rows[i].time) || len(rows[i].time) != 8 {
				t.Errorf("row %d: time column %q is not %%8.1f", i, rows[i].time)
			}
			rows[i].time = ""
			if verbose {
				if !regexp.MustCompile(`^ [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`).MatchString(rows[i].uuid) {
					t.Errorf("row %d: uuid column %q", i, rows[i].uuid)
				}
				rows[i].uuid = ""
			} else {
				wantRows[i].code, wantRows[i].label = "", ""
			}
		}
		if diff := cmp.Diff(wantRows, rows, cmp.AllowUnexported(row{})); diff != "" {
			t.Errorf("verbose=%v columns (-want +got):\n%s\n%s", verbose, diff, out)
		}
		doms, err := xen.ParseList(xen.XL, []byte(out))
		if err != nil || len(doms) != 3 || !doms[1].State.UserPoweredOff() || !doms[2].State.Crashed() || !doms[0].State.Alive() {
			t.Errorf("parse: %v %+v", err, doms)
		}
	}
	// xm's layout: "%-40s %5s %5d %5d %10s %8.1f".
	m := newNode(t, xen.XM)
	out := m.ok("list")
	want := `^Name {40}ID {3}Mem VCPUs {6}State {3}Time\(s\)\nDomain-0 {32} {5}0  2048 {5}2 {5}r----- +[0-9]+\.[0-9]\n$`
	if !regexp.MustCompile(want).MatchString(out) {
		t.Errorf("xm list:\n%q\ndoes not match %s", out, want)
	}
}

// TestConcurrentCalls runs many simulator processes at once (creating,
// shutting down, playing guests and listing) and checks the state they
// leave is consistent: every domain created exactly once, domids unique
// and never reused, every call logged and finished, every listing parsable.
func TestConcurrentCalls(t *testing.T) {
	n := newNode(t, xen.XL)
	const workers, per = 6, 4
	cfg := n.config("template", "on_poweroff = 'preserve'", "on_crash = 'restart'")
	errs := make(chan error, workers*per*3)
	done := make(chan struct{})
	for w := 0; w < workers; w++ {
		go func(w int) {
			defer func() { done <- struct{}{} }()
			for i := 0; i < per; i++ {
				name := fmt.Sprintf("vm-%d-%d", w, i)
				for _, args := range [][]string{
					{"create", cfg, "name='" + name + "'"},
					{"list", "-v"},
					{"shutdown", name},
					{"sim", "crash", "Domain-0"}, // refused: dom0 cannot be played
				} {
					cmd := exec.Command(n.bin, args...)
					cmd.Env = n.env
					out, err := cmd.Output()
					switch {
					case args[0] == "sim":
						if err == nil {
							errs <- fmt.Errorf("sim crash Domain-0 succeeded")
						}
					case err != nil:
						errs <- fmt.Errorf("%v: %v", args, err)
					case args[0] == "list":
						if _, perr := xen.ParseList(xen.XL, out); perr != nil {
							errs <- perr
						}
					}
				}
			}
		}(w)
	}
	for w := 0; w < workers; w++ {
		<-done
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var st state
	b, err := os.ReadFile(filepath.Join(n.dir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	ids := map[int]bool{}
	names := map[string]bool{}
	for _, d := range st.Domains {
		if ids[d.ID] || names[d.Name] {
			t.Errorf("duplicate domain %s/%d", d.Name, d.ID)
		}
		ids[d.ID], names[d.Name] = true, true
		if d.ID != 0 && d.letters(flavourXL) != "---s--" {
			t.Errorf("%s: state %s, want ---s-- (shut down, preserved)", d.Name, d.letters(flavourXL))
		}
	}
	if len(st.Domains) != workers*per+1 || st.NextID != workers*per+1 {
		t.Errorf("%d domains, next id %d; want %d and %d", len(st.Domains), st.NextID, workers*per+1, workers*per+1)
	}
	es := n.log()
	if len(es) != workers*per*4 {
		t.Errorf("%d calls logged, want %d", len(es), workers*per*4)
	}
	for _, e := range es {
		if !e.Finished {
			t.Errorf("unfinished call %v", e)
		}
	}
}

// BenchmarkListCall measures one `xl list -v` call of the simulator on a
// node of 50 domains: process start, lock, state load and save, print.
func BenchmarkListCall(b *testing.B) {
	dir := b.TempDir()
	bin := testbin.BuildAs(b, "ganeti-userdown/testdata/xensim", "xl")
	env := append(os.Environ(), "XENSIM_STATE="+filepath.Join(dir, "state.json"), "XENSIM_LOG=")
	cfg := filepath.Join(dir, "vm.cfg")
	os.WriteFile(cfg, []byte("memory = 128\n"), 0o644)
	for i := 0; i < 50; i++ {
		cmd := exec.Command(bin, "create", "-q", cfg, fmt.Sprintf("name='vm%02d'", i))
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	}
	for b.Loop() {
		cmd := exec.Command(bin, "list", "-v")
		cmd.Env = env
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
	}
}
