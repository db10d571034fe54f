package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/hooks"
	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/testbin"
	"ganeti-userdown/internal/xen"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// The PATH Ganeti gives hooks.
const ganetiPath = "PATH=/sbin:/bin:/usr/sbin:/usr/bin"

func capture(t *testing.T, name string) map[string]string {
	t.Helper()
	env, err := hooks.ReadEnvFile(testbin.Captures(t, "hooks", name))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func fixture(t *testing.T, name string) map[string]string {
	t.Helper()
	env, err := hooks.ReadEnvFile(filepath.Join(testbin.ModuleRoot(t), "testdata", "hookenv", name))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// node is one simulated Xen node: the simulator as toolstack, a config
// dir, a state dir and a configuration file naming them.
type node struct {
	t         *testing.T
	flavour   xen.Flavour
	dir       string
	hook      string
	xl        string // wrapper that runs the simulator with its state
	configDir string
	stateDir  string
	config    string
}

func newNode(t *testing.T, name string) *node {
	t.Helper()
	return newFlavourNode(t, name, xen.XL)
}

// newFlavourNode is newNode with the xl or xm toolstack.
func newFlavourNode(t *testing.T, name string, flavour xen.Flavour) *node {
	t.Helper()
	n := &node{t: t, dir: t.TempDir(), flavour: flavour}
	n.hook = testbin.Build(t, "ganeti-userdown/cmd/userdown-hook")
	sim := testbin.BuildAs(t, "ganeti-userdown/testdata/xensim", string(flavour))
	n.configDir = filepath.Join(n.dir, "xen")
	n.stateDir = filepath.Join(n.dir, "state")
	for _, d := range []string{n.configDir, n.stateDir, filepath.Join(n.dir, "bin")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Ganeti empties the hook's environment, so the toolstack the hook
	// runs must find its state without help: a wrapper named xl.
	n.xl = filepath.Join(n.dir, "bin", string(flavour))
	script := fmt.Sprintf("#!/bin/sh\nXENSIM_STATE=%s XENSIM_LOG=%s exec %s \"$@\"\n",
		filepath.Join(n.dir, "xen-state.json"), filepath.Join(n.dir, "xl-calls.log"), sim)
	if err := os.WriteFile(n.xl, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	n.config = filepath.Join(n.dir, "userdown.toml")
	toml := fmt.Sprintf(`[xen]
toolstack = %q
command = %q
config_dir = %q

[cluster]
node = %q

[state]
dir = %q
intent_ttl = "1h"
`, flavour, n.xl, n.configDir, name, n.stateDir)
	if err := os.WriteFile(n.config, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	return n
}

// xlRun runs the simulated toolstack as a test (or Ganeti) would.
func (n *node) xlRun(args ...string) string {
	n.t.Helper()
	out, err := exec.Command(n.xl, args...).CombinedOutput()
	if err != nil {
		n.t.Fatalf("xl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// domains lists the node's domains through the real client.
func (n *node) domains() map[string]xen.Domain {
	n.t.Helper()
	args := []string{"list", "-v"}
	if n.flavour == xen.XM {
		args = []string{"list"}
	}
	doms, err := xen.ParseList(n.flavour, []byte(n.xlRun(args...)))
	if err != nil {
		n.t.Fatal(err)
	}
	out := map[string]xen.Domain{}
	for _, d := range doms {
		out[d.Name] = d
	}
	return out
}

// create writes Ganeti's config for name (the real 3.0.2 one, renamed)
// and starts it directly on the toolstack, as Ganeti would without the
// shim.
func (n *node) create(name string) string {
	n.t.Helper()
	b, err := os.ReadFile(testbin.Captures(n.t, "xen-config-xen1.example.com.cfg"))
	if err != nil {
		n.t.Fatal(err)
	}
	cfg := filepath.Join(n.configDir, name)
	if err := os.WriteFile(cfg, bytes.ReplaceAll(b, []byte("xen1.example.com"), []byte(name)), 0o644); err != nil {
		n.t.Fatal(err)
	}
	n.xlRun("create", cfg)
	return cfg
}

// xlCalls counts the toolstack calls made so far (the simulator logs
// each one).
func (n *node) xlCalls() int {
	n.t.Helper()
	b, err := os.ReadFile(filepath.Join(n.dir, "xl-calls.log"))
	if err != nil {
		n.t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}

type result struct {
	code   int
	stdout string
	stderr string
}

// runHook runs the built hook with an environment emptied as Ganeti
// does: PATH, the GANETI_* variables and, as the one exception a test
// needs, USERDOWN_CONFIG. No arguments, stdin /dev/null, cwd /.
func (n *node) runHook(env map[string]string, args ...string) result {
	n.t.Helper()
	cmd := exec.Command(n.hook, args...)
	cmd.Dir = "/"
	cmd.Env = []string{ganetiPath, "USERDOWN_CONFIG=" + n.config}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.HasPrefix(k, "GANETI_") {
			cmd.Env = append(cmd.Env, k+"="+env[k])
		}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		n.t.Fatalf("run hook: %v", err)
	}
	return result{code, stdout.String(), stderr.String()}
}

func (n *node) intents() []state.Intent {
	n.t.Helper()
	live, problems := state.Open(n.stateDir).Intents(time.Now())
	if len(problems) > 0 {
		n.t.Fatal(problems)
	}
	return live
}

// stateFiles lists everything under the state dir.
func (n *node) stateFiles() []string {
	var out []string
	filepath.WalkDir(n.stateDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, strings.TrimPrefix(p, n.stateDir+"/"))
		}
		return nil
	})
	return out
}

func wantCode(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
}

// TestStartHooks runs the real instance-start captures against the
// simulator: pre destroys the user's preserved domain, post rewrites the
// stored config and fails with one line while the live domain lacks
// preserve, and passes once it has it.
//
// Reference: design.md, "Hooks": instance-start pre "destroy a preserved
// dead domain of this instance (the admin is starting it)"; post "rewrite
// /etc/xen/<instance>; verify the live domain's actions, exit 1 with a
// clear message if not preserve".
func TestStartHooks(t *testing.T) {
	n := newNode(t, "node1.example.com")
	const inst = "xen1.example.com"
	cfg := n.create(inst)
	n.create("other.example.com")
	n.xlRun("sim", "poweroff", inst)
	n.xlRun("sim", "poweroff", "other.example.com")
	if st := n.domains()[inst].State; !st.UserPoweredOff() {
		t.Fatalf("after poweroff: %s", st.Letters)
	}

	r := n.runHook(capture(t, "xen-instance-startup-after-user-down--instance-start-pre.d.env"))
	wantCode(t, r, 0)
	doms := n.domains()
	if d, ok := doms[inst]; ok {
		t.Fatalf("start pre left %s (%s)", inst, d.State.Letters)
	}
	if d := doms["other.example.com"]; !d.State.UserPoweredOff() {
		t.Fatalf("start pre touched another instance's preserved domain: %+v", d)
	}
	if !strings.Contains(r.stdout, "destroyed domain") {
		t.Errorf("stdout does not say what was destroyed:\n%s", r.stdout)
	}

	// Ganeti creates the domain from its own config: on_crash = 'restart'.
	n.xlRun("create", cfg)
	r = n.runHook(capture(t, "xen-instance-startup-after-user-down--instance-start-post.d.env"))
	wantCode(t, r, 1)
	wantLine := "userdown-hook: instance xen1.example.com runs with on_crash=restart (want preserve)"
	if !strings.Contains(r.stdout, wantLine) {
		t.Errorf("stdout lacks the clear line %q:\n%s", wantLine, r.stdout)
	}
	b, _ := os.ReadFile(cfg)
	if !strings.Contains(string(b), "on_crash = 'preserve'") || !strings.Contains(string(b), "# Automatically generated by Ganeti") {
		t.Errorf("stored config not rewritten losslessly:\n%s", b)
	}

	// Started again from the rewritten config, the domain is verified.
	id := n.domains()[inst].ID
	n.xlRun("destroy", fmt.Sprint(id))
	n.xlRun("create", cfg)
	r = n.runHook(capture(t, "xen-instance-startup--instance-start-post.d.env"))
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "runs with on_poweroff=preserve, on_crash=preserve") {
		t.Errorf("stdout:\n%s", r.stdout)
	}
}

// TestStartPreNeverDestroysRunning: the start's pre phase leaves a
// running domain of the instance alone.
//
// Reference: design.md, "Decisions", safety rule 1: "Never destroy a
// domain that is not shut down or crashed."
func TestStartPreNeverDestroysRunning(t *testing.T) {
	n := newNode(t, "node1.example.com")
	n.create("xen1.example.com")
	before := n.domains()["xen1.example.com"]
	r := n.runHook(capture(t, "watcher-restart--instance-start-pre.d.env")) // fake hypervisor: ignored
	wantCode(t, r, 0)
	r = n.runHook(capture(t, "xen-watcher-restart-usershutdown-disabled--instance-start-pre.d.env"))
	wantCode(t, r, 0)
	after, ok := n.domains()["xen1.example.com"]
	if !ok || after.ID != before.ID || !after.State.Alive() {
		t.Fatalf("running domain touched: before %+v after %+v (present %v)", before, after, ok)
	}
}

// TestStopIntents: stop, reboot and remove pre phases record an intent
// that the post phases clear.
//
// Reference: design.md, "Hooks": instance-stop, instance-reboot,
// instance-remove: "record an intent for the instance" / "clear it".
func TestStopIntents(t *testing.T) {
	n := newNode(t, "node1.example.com")
	for _, tc := range []struct{ pre, post, op string }{
		{"xen-instance-shutdown--instance-stop-pre.d.env", "xen-instance-shutdown--instance-stop-post.d.env", "stop"},
		{"xen-instance-reboot-hard--instance-reboot-pre.d.env", "xen-instance-reboot-hard--instance-reboot-post.d.env", "reboot"},
	} {
		start := time.Now()
		wantCode(t, n.runHook(capture(t, tc.pre)), 0)
		live := n.intents()
		if len(live) != 1 || live[0].Instance != "xen1.example.com" || live[0].Op != tc.op || live[0].Source != "hook" {
			t.Fatalf("%s: intents %+v", tc.pre, live)
		}
		if ttl := live[0].Expires.Sub(start); ttl < 59*time.Minute || ttl > 61*time.Minute {
			t.Errorf("%s: intent expires in %v, want the configured 1h", tc.pre, ttl)
		}
		wantCode(t, n.runHook(capture(t, tc.post)), 0)
		if live := n.intents(); len(live) != 0 {
			t.Fatalf("%s: intents left %+v", tc.post, live)
		}
	}
}

// TestNothingOnOtherNodesOrHypervisors: the master or a secondary, a KVM
// instance, an unknown hooks version: nothing done, exit 0, and said.
//
// Reference: design.md, "Hooks": "Act only for xen-pvm/xen-hvm instances
// and only on the node concerned".
func TestNothingOnOtherNodesOrHypervisors(t *testing.T) {
	stopPre := "xen-instance-shutdown--instance-stop-pre.d.env"
	tests := []struct {
		name string
		node string
		set  map[string]string
		say  string
	}{
		{"other node", "node2.example.com", nil, "not the node concerned"},
		{"kvm", "node1.example.com", map[string]string{"GANETI_INSTANCE_HYPERVISOR": "kvm"}, "not Xen"},
		{"hooks version 3", "node1.example.com", map[string]string{"GANETI_HOOKS_VERSION": "3"}, "knows only version 2"},
		{"node name in capitals", "NODE1.EXAMPLE.COM", nil, "recorded a stop intent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNode(t, tt.node)
			n.create("xen1.example.com")
			n.xlRun("sim", "poweroff", "xen1.example.com")
			env := capture(t, stopPre)
			for k, v := range tt.set {
				env[k] = v
			}
			r := n.runHook(env)
			wantCode(t, r, 0)
			if !strings.Contains(r.stdout, tt.say) {
				t.Errorf("stdout %q does not say %q", r.stdout, tt.say)
			}
			if tt.say == "recorded a stop intent" {
				return
			}
			if files := n.stateFiles(); len(files) != 0 {
				t.Errorf("state written: %v", files)
			}
			if !n.domains()["xen1.example.com"].State.UserPoweredOff() {
				t.Error("preserved domain touched")
			}
		})
	}
}

// TestHostileEnvironment: a missing or hostile variable does nothing
// harmful; the pre phase exits 0, the post phase 1.
//
// Reference: design.md, "Hooks": "A pre hook that exits non-zero aborts
// the operation: ours always exit 0 in the pre phase and log their
// errors."
func TestHostileEnvironment(t *testing.T) {
	long := strings.Repeat("a", 70000)
	tests := []struct {
		name string
		set  map[string]string
		del  []string
	}{
		{"path traversal", map[string]string{"GANETI_INSTANCE_NAME": "../../etc/passwd"}, nil},
		{"empty name", map[string]string{"GANETI_INSTANCE_NAME": ""}, nil},
		{"missing name", nil, []string{"GANETI_INSTANCE_NAME"}},
		{"very long name", map[string]string{"GANETI_INSTANCE_NAME": long}, nil},
		{"option", map[string]string{"GANETI_INSTANCE_NAME": "--help"}, nil},
		{"shell", map[string]string{"GANETI_INSTANCE_NAME": "x;touch /tmp/pwned"}, nil},
	}
	for _, tt := range tests {
		for _, phase := range []string{"pre", "post"} {
			t.Run(tt.name+"/"+phase, func(t *testing.T) {
				n := newNode(t, "node1.example.com")
				n.create("xen1.example.com")
				n.xlRun("sim", "poweroff", "xen1.example.com")
				before, _ := os.ReadFile(filepath.Join(n.configDir, "xen1.example.com"))
				env := capture(t, "xen-instance-startup--instance-start-"+phase+".d.env")
				for k, v := range tt.set {
					env[k] = v
				}
				for _, k := range tt.del {
					delete(env, k)
				}
				calls := n.xlCalls()
				r := n.runHook(env)
				if got := n.xlCalls(); got != calls {
					t.Errorf("the hook ran the toolstack (%d calls)", got-calls)
				}
				want := 0
				if phase == "post" {
					want = 1
				}
				wantCode(t, r, want)
				if !strings.Contains(r.stderr, "GANETI_INSTANCE_NAME") {
					t.Errorf("stderr does not name the variable:\n%s", r.stderr)
				}
				if len(r.stderr) > 2000 {
					t.Errorf("stderr of %d bytes for one refused variable", len(r.stderr))
				}
				if !n.domains()["xen1.example.com"].State.UserPoweredOff() {
					t.Error("preserved domain touched")
				}
				after, _ := os.ReadFile(filepath.Join(n.configDir, "xen1.example.com"))
				if !bytes.Equal(before, after) {
					t.Error("config changed")
				}
				if files := n.stateFiles(); len(files) != 0 {
					t.Errorf("state written: %v", files)
				}
			})
		}
	}
}

// TestMoveTargetFreesOnlyCertainlySafeDomains runs a migration's pre
// phase on the target: a dead domain covered by an intent and a leftover
// of the moving instance go, a user's poweroff without intent stays.
//
// Reference: design.md, "Hooks": instance-migrate/failover "on the target
// destroy preserved domains of down instances (free memory)"; "Decisions",
// safety rule 2.
func TestMoveTargetFreesOnlyCertainlySafeDomains(t *testing.T) {
	n := newNode(t, "node2.example.com")
	for _, name := range []string{"stopped.example.com", "user.example.com", "web2.example.com", "alive.example.com"} {
		n.create(name)
	}
	for _, name := range []string{"stopped.example.com", "user.example.com", "web2.example.com"} {
		n.xlRun("sim", "poweroff", name)
	}
	now := time.Now()
	if err := state.Open(n.stateDir).RecordIntent(hooks.NewIntent("stopped.example.com", "stop", now, time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := state.Open(n.stateDir).RecordIntent(hooks.NewIntent("alive.example.com", "stop", now, time.Hour)); err != nil {
		t.Fatal(err)
	}
	r := n.runHook(fixture(t, "ganeti-2.16-migrate-drbd--instance-migrate-pre.d.env"))
	wantCode(t, r, 0)
	var left []string
	for name := range n.domains() {
		left = append(left, name)
	}
	sort.Strings(left)
	if diff := cmp.Diff([]string{"Domain-0", "alive.example.com", "user.example.com"}, left); diff != "" {
		t.Errorf("domains left (-want +got):\n%s\nstdout:\n%s\nstderr:\n%s", diff, r.stdout, r.stderr)
	}
}

// TestMigrateSourceIntent: the source records and clears a migrate
// intent; the post phase finds the source through the pre-operation
// variables although GANETI_POST_OLD_PRIMARY names the target.
func TestMigrateSourceIntent(t *testing.T) {
	n := newNode(t, "node1.example.com")
	wantCode(t, n.runHook(fixture(t, "ganeti-2.16-migrate-drbd--instance-migrate-pre.d.env")), 0)
	live := n.intents()
	if len(live) != 1 || live[0].Op != "migrate" || live[0].Instance != "web2.example.com" {
		t.Fatalf("intents %+v", live)
	}
	wantCode(t, n.runHook(fixture(t, "ganeti-2.16-migrate-drbd--instance-migrate-post.d.env")), 0)
	if live := n.intents(); len(live) != 0 {
		t.Fatalf("intents left %+v", live)
	}
}

// TestHelpWithEmptyEnvironment: --help works even with nothing set.
func TestHelpWithEmptyEnvironment(t *testing.T) {
	n := newNode(t, "node1.example.com")
	cmd := exec.Command(n.hook, "--help")
	cmd.Env = []string{}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v\n%s", err, out)
	}
	for _, s := range []string{"Usage: userdown-hook", "instance-start", "GANETI_HOOKS_VERSION 2", "--config"} {
		if !strings.Contains(string(out), s) {
			t.Errorf("--help lacks %q", s)
		}
	}
}

// TestConfigErrorByPhase: a broken configuration never aborts a pre
// phase; it fails a post phase with exit 2.
func TestConfigErrorByPhase(t *testing.T) {
	n := newNode(t, "node1.example.com")
	if err := os.WriteFile(n.config, []byte("[xen]\ntoolstack = \"kvm\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantCode(t, n.runHook(capture(t, "xen-instance-shutdown--instance-stop-pre.d.env")), 0)
	r := n.runHook(capture(t, "xen-instance-shutdown--instance-stop-post.d.env"))
	wantCode(t, r, 2)
	if !strings.Contains(r.stderr, "toolstack") {
		t.Errorf("stderr does not name the key:\n%s", r.stderr)
	}
}

// TestStartHooksXM: with the xm toolstack the start hooks destroy the
// preserved domain and verify the live actions from `xm list -l`.
//
// Reference: design.md, "Xen facts": xm "has no list -v ... read the
// uuid from xm list -l, which prints S-expressions ((on_poweroff
// preserve))".
func TestStartHooksXM(t *testing.T) {
	n := newFlavourNode(t, "node1.example.com", xen.XM)
	const inst = "xen1.example.com"
	cfg := n.create(inst)
	n.xlRun("sim", "poweroff", inst)
	if _, ok := n.domains()[inst]; !ok {
		t.Fatal("xm: the powered-off domain was not preserved")
	}
	wantCode(t, n.runHook(capture(t, "xen-instance-startup--instance-start-pre.d.env")), 0)
	if _, ok := n.domains()[inst]; ok {
		t.Fatal("xm: start pre left the preserved domain")
	}
	n.xlRun("create", cfg)
	r := n.runHook(capture(t, "xen-instance-startup--instance-start-post.d.env"))
	wantCode(t, r, 1)
	if !strings.Contains(r.stdout, "on_crash=restart (want preserve)") {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	n.xlRun("destroy", fmt.Sprint(n.domains()[inst].ID))
	n.xlRun("create", cfg)
	wantCode(t, n.runHook(capture(t, "xen-instance-startup--instance-start-post.d.env")), 0)
}

// TestStartGuard plays the two orders of the multi-node race with the
// real captures: the watcher's restart before our mark-down (a preserved
// user poweroff, admin up) and after it (admin down, domain gone, our
// record fresh). Each is refused with the message first on stdout and
// exit 1, the preserved domain kept; the ways through the message names
// work: starting again after a mark-down, --allow-start, --force.
//
// Reference: design.md, "The start guard", rows 1, 2, 4, 5 and 6.
func TestStartGuard(t *testing.T) {
	n := newNode(t, "node1.example.com")
	const inst = "xen1.example.com"
	n.create(inst)
	n.xlRun("sim", "poweroff", inst)
	restart := capture(t, "xen-watcher-restart-usershutdown-disabled--instance-start-pre.d.env")

	// Row 4: the master restarts it before our mark-down ran.
	for i := 0; i < 2; i++ {
		r := n.runHook(restart)
		wantCode(t, r, 1)
		if !strings.HasPrefix(r.stdout, "ganeti-userdown: not starting xen1.example.com: its user powered it off from inside the guest") ||
			!strings.Contains(r.stdout, "userdown-hook --allow-start xen1.example.com` on node1.example.com") {
			t.Fatalf("refusal %d: stdout:\n%s", i+1, r.stdout)
		}
		if d := n.domains()[inst]; !d.State.UserPoweredOff() {
			t.Fatalf("refusal %d: the preserved domain was not kept: %+v", i+1, d)
		}
	}

	// Row 2: an operator allows the next start.
	r := n.runHook(nil, "--allow-start", inst)
	wantCode(t, r, 0)
	if r = n.runHook(restart); r.code != 0 {
		t.Fatalf("allowed start: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, ok := n.domains()[inst]; ok {
		t.Fatalf("allowed start left the preserved domain")
	}
	if _, found, _ := state.Open(n.stateDir).StartAllowanceOf(inst); found {
		t.Errorf("the allowance was not used up")
	}

	// Row 5: our mark-down ran first (record written, domain destroyed by
	// Ganeti's shutdown); the watcher's restart then sees admin down.
	st := state.Open(n.stateDir)
	if err := st.RecordMarkDown(state.MarkDown{Instance: inst, DomID: 1, Submitted: time.Now()}); err != nil {
		t.Fatal(err)
	}
	after := capture(t, "xen-instance-startup-after-user-down--instance-start-pre.d.env")
	r = n.runHook(after)
	wantCode(t, r, 1)
	if !strings.HasPrefix(r.stdout, "ganeti-userdown: not starting xen1.example.com:") || !strings.Contains(r.stdout, "start it again (only the first start after a mark-down is refused)") {
		t.Fatalf("stdout:\n%s", r.stdout)
	}
	// Row 6: the second start goes through.
	wantCode(t, n.runHook(after), 0)

	// Row 1: a forced start goes through a fresh record.
	if err := st.RecordMarkDown(state.MarkDown{Instance: inst, DomID: 1, Submitted: time.Now()}); err != nil {
		t.Fatal(err)
	}
	forced := capture(t, "xen-instance-startup-after-user-down--instance-start-pre.d.env")
	forced["GANETI_FORCE"] = "True"
	wantCode(t, n.runHook(forced), 0)
	if _, found, _ := st.MarkDownRecord(inst); found {
		t.Errorf("a forced start did not use up the mark-down record")
	}
}

// TestStartGuardOtherPathsExitZero: the refusal is the only pre-hook
// path that fails; a guard whose inputs are unreadable (a corrupt record,
// a toolstack that fails) lets the start through with exit 0.
//
// Reference: design.md, "Hooks": "ours always exit 0 in the pre phase",
// and "The start guard": "a guard that cannot read ... lets the start
// through".
func TestStartGuardOtherPathsExitZero(t *testing.T) {
	n := newNode(t, "node1.example.com")
	const inst = "xen1.example.com"
	dir := filepath.Join(n.stateDir, "start-guard")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "markdown@"+inst+".json"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := n.runHook(capture(t, "xen-instance-startup-after-user-down--instance-start-pre.d.env"))
	wantCode(t, r, 0)
	if !strings.Contains(r.stderr, "mark-down record unreadable") {
		t.Errorf("stderr does not name the unreadable record:\n%s", r.stderr)
	}
	if r := n.runHook(nil, "--allow-start", "../evil"); r.code != 2 {
		t.Errorf("--allow-start ../evil: exit %d, want 2", r.code)
	}
}

// TestUnreadableEnvFileNeverFailsAPrePhase: an --env-file that cannot be
// read is logged (naming the file) and, as every other problem of a pre
// phase or of a phase that cannot be read, exits 0; a post phase exits 2.
//
// Reference: doc/design.md, "Hooks": a pre hook never fails.
func TestUnreadableEnvFileNeverFailsAPrePhase(t *testing.T) {
	n := newNode(t, "node1.example.com")
	missing := filepath.Join(n.dir, "no-such.env")
	for _, tc := range []struct {
		name string
		env  map[string]string
		code int
	}{
		{"pre phase", capture(t, "xen-instance-shutdown--instance-stop-pre.d.env"), 0},
		{"phase unknown", map[string]string{}, 0},
		{"post phase", capture(t, "xen-instance-shutdown--instance-stop-post.d.env"), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := n.runHook(tc.env, "--env-file", missing)
			wantCode(t, r, tc.code)
			if !strings.Contains(r.stderr, missing) {
				t.Errorf("stderr does not name %s:\n%s", missing, r.stderr)
			}
			if files := n.stateFiles(); len(files) != 0 {
				t.Errorf("state written from an unread environment: %v", files)
			}
		})
	}
}

// TestUntrustedStateDirNeverFailsAPrePhase: a state dir others may write
// in is refused (logged, naming it and its mode; nothing written), and a
// pre phase still exits 0.
//
// Reference: doc/design.md, "State files"; "Hooks": a pre hook never fails.
func TestUntrustedStateDirNeverFailsAPrePhase(t *testing.T) {
	n := newNode(t, "node1.example.com")
	if err := os.Chmod(n.stateDir, 0o777); err != nil {
		t.Fatal(err)
	}
	r := n.runHook(capture(t, "xen-instance-shutdown--instance-stop-pre.d.env"))
	wantCode(t, r, 0)
	if !strings.Contains(r.stderr+r.stdout, n.stateDir) || !strings.Contains(r.stderr+r.stdout, "mode 0777") {
		t.Errorf("the refusal does not name the dir and its mode:\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
	if files := n.stateFiles(); len(files) != 0 {
		t.Errorf("written into an untrusted state dir: %v", files)
	}
}
