// Package e2e runs ganeti-userdown's binaries (userdown-detect,
// userdown-destroy, the watcher hook script) against the Xen simulator
// and the Ganeti RAPI fake, through the interfaces Ganeti uses: the
// toolstack command, the RAPI, the watcher hook.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"ganeti-userdown/internal/testbin"
	"ganeti-userdown/internal/xen"
	"ganeti-userdown/testdata/ganetifake"
	"ganeti-userdown/testdata/xensim/simlog"
)

const nodeName = "node1.example.com"

func TestMain(m *testing.M) { testbin.Main(m) }

// node is one simulated Xen node of a fake Ganeti cluster, with
// ganeti-userdown configured on it.
type node struct {
	t        testing.TB
	dir      string
	flavour  xen.Flavour
	sim      string // the simulator, named xl or xm
	simEnv   []string
	simLog   string
	xenDir   string // where instance configs live (/etc/xen)
	stateDir string
	config   string
	rapi     *ganetifake.Server
	detect   string
	destroy  string
	hook     string // the watcher hook script
	hookLog  string
}

// instance describes one instance of the fake cluster.
type instance struct {
	name  string
	admin string // up, down, offline
	tags  []string
	pnode string // default nodeName
}

// newNode starts a RAPI fake knowing instances, a simulator, and writes
// ganeti-userdown's configuration. extraConfig is appended to the TOML.
func newNode(t testing.TB, flavour xen.Flavour, instances []instance, extraConfig string) *node {
	t.Helper()
	return newNodeAt(t, "", flavour, instances, extraConfig)
}

// newNodeAt is newNode with a fake cluster that answers as Ganeti version
// (one of ganetifake.Versions; "" is 3.0).
func newNodeAt(t testing.TB, version string, flavour xen.Flavour, instances []instance, extraConfig string) *node {
	t.Helper()
	dir := scratchDir(t)
	n := &node{
		t: t, dir: dir, flavour: flavour,
		sim:      testbin.BuildAs(t, "ganeti-userdown/testdata/xensim", string(flavour)),
		detect:   testbin.Build(t, "ganeti-userdown/cmd/userdown-detect"),
		destroy:  testbin.Build(t, "ganeti-userdown/cmd/userdown-destroy"),
		simLog:   filepath.Join(dir, "xen-calls.log"),
		xenDir:   filepath.Join(dir, "xen"),
		stateDir: filepath.Join(dir, "state"),
		config:   filepath.Join(dir, "userdown.toml"),
		hookLog:  filepath.Join(dir, "watcher-hook.log"),
	}
	hook, err := filepath.Abs("../packaging/watcher/50-userdown")
	if err != nil {
		t.Fatal(err)
	}
	n.hook = hook
	n.simEnv = []string{"XENSIM_STATE=" + filepath.Join(dir, "xen-state.json"), "XENSIM_LOG=" + n.simLog}
	for _, d := range []string{n.xenDir, filepath.Join(dir, "ssconf")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	st := ganetifake.State{
		Cluster:   ganetifake.ClusterInfo{Name: "cluster.example.com", Master: nodeName, Version: version},
		Toolstack: ganetifake.Toolstack{Command: n.sim, Env: n.simEnv, ConfigDir: n.xenDir},
	}
	for _, in := range instances {
		pnode := in.pnode
		if pnode == "" {
			pnode = nodeName
		}
		st.Instances = append(st.Instances, ganetifake.Instance{
			Name: in.name, PrimaryNode: pnode, AdminState: in.admin, Tags: in.tags, Hypervisor: "xen-pvm",
		})
	}
	n.rapi = ganetifake.Start(t, st)
	cfg := fmt.Sprintf(`[xen]
toolstack = %q
command = %q
config_dir = %q
timeout = "20s"
reap_wait = "30s"

[cluster]
backend = "rapi"
node = %q
rapi_url = %q
rapi_credentials = %q
rapi_ca = %q
ssconf_dir = %q
timeout = "20s"
shutdown_timeout = "5s"

[state]
dir = %q
%s
`, flavour, n.sim, n.xenDir, nodeName, n.rapi.URL, n.rapi.WriterCredentials, n.rapi.CAFile,
		filepath.Join(dir, "ssconf"), n.stateDir, extraConfig)
	if err := os.WriteFile(n.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return n
}

// scratchDir returns a directory removed after the test: in /dev/shm when
// that is a writable tmpfs, where the state files the binaries replace
// atomically (with fsync) cost no disk flush, else t.TempDir().
func scratchDir(t testing.TB) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "userdown-e2e-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// env is the environment of every command run on the node.
func (n *node) env(extra ...string) []string {
	env := append(os.Environ(), n.simEnv...)
	env = append(env, "USERDOWN_CONFIG="+n.config)
	return append(env, extra...)
}

// run runs a command on the node and returns stdout, stderr and the exit
// code.
func (n *node) run(name string, args ...string) (string, string, int) {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = n.env()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			n.t.Fatalf("%s %v: %v", name, args, err)
		}
		code = ee.ExitCode()
	}
	return out.String(), errb.String(), code
}

// xl runs the simulated toolstack and fails the test when it fails.
func (n *node) xl(args ...string) string {
	n.t.Helper()
	out, errs, code := n.run(n.sim, args...)
	if code != 0 {
		n.t.Fatalf("%s %s: exit %d: %s", n.flavour, strings.Join(args, " "), code, errs)
	}
	return out
}

// start writes the instance's config as Ganeti would (with ganeti-userdown's
// actions) and creates its domain.
func (n *node) start(name string) {
	n.t.Helper()
	cfg := filepath.Join(n.xenDir, name)
	src := fmt.Sprintf("name = '%s'\nmemory = 128\nvcpus = 1\non_poweroff = 'preserve'\non_reboot = 'restart'\non_crash = 'preserve'\n", name)
	if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
		n.t.Fatal(err)
	}
	n.xl("create", cfg)
}

// domains lists the node's domains, parsed by ganeti-userdown's parser.
func (n *node) domains() []xen.Domain {
	n.t.Helper()
	args := []string{"list", "-v"}
	if n.flavour == xen.XM {
		args = []string{"list"} // xm has no -v: no uuids
	}
	ds, err := xen.ParseList(n.flavour, []byte(n.xl(args...)))
	if err != nil {
		n.t.Fatal(err)
	}
	return ds
}

// domain returns the domain named name, if present.
func (n *node) domain(name string) (xen.Domain, bool) {
	for _, d := range n.domains() {
		if d.Name == name {
			return d, true
		}
	}
	return xen.Domain{}, false
}

// instanceState returns the fake cluster's admin state of an instance.
func (n *node) instanceState(name string) string {
	for _, in := range n.rapi.State().Instances {
		if in.Name == name {
			return in.AdminState
		}
	}
	n.t.Fatalf("no instance %s", name)
	return ""
}

// hostInitiatedKept checks that the shut-down domain of instance name
// is decided host-initiated and that a watcher round leaves the instance
// up in Ganeti (safety rule 3).
func (n *node) hostInitiatedKept(name string) {
	n.t.Helper()
	if got := n.report()[name]; got != "host-initiated" {
		n.t.Errorf("decision %q, want host-initiated", got)
	}
	n.watcher()
	if s := n.instanceState(name); s != "up" {
		n.t.Errorf("host-initiated shutdown marked down: %q", s)
	}
}

// watcher runs the watcher hook script as Ganeti's watcher does, then the
// watcher's restart pass (every admin-up instance without a domain is
// started), and returns the instances it restarted.
func (n *node) watcher() []string {
	n.t.Helper()
	cmd := exec.Command(n.hook)
	cmd.Env = n.env(
		"USERDOWN_DETECT="+n.detect, "USERDOWN_DESTROY="+n.destroy,
		"USERDOWN_WATCHER_LOCK="+filepath.Join(n.dir, "watcher.lock"),
		"USERDOWN_WATCHER_LOG="+n.hookLog, "USERDOWN_WATCHER_TIMEOUT=60",
		"USERDOWN_WATCHD=", // the daemon is started by the tests that want it
	)
	if out, err := cmd.CombinedOutput(); err != nil {
		n.t.Fatalf("watcher hook: %v: %s", err, out)
	}
	return n.restartPass()
}

// restartPass is the part of Ganeti's watcher that matters here: it
// starts every instance of this node that should run and has no domain.
func (n *node) restartPass() []string {
	n.t.Helper()
	return n.restartPassOver(n.domainMap())
}

// restartPassOver is restartPass with the domains already listed. An
// instance a job holds (a reboot) is left alone: Ganeti's start job
// would wait for that job and find the instance running.
func (n *node) restartPassOver(doms map[string]xen.Domain) []string {
	n.t.Helper()
	st := n.rapi.State()
	locked := lockedInstances(st)
	var started []string
	for _, in := range st.Instances {
		if _, ok := doms[in.Name]; !ok && in.PrimaryNode == nodeName && in.AdminState == "up" && !locked[in.Name] {
			n.startAgain(in.Name)
			started = append(started, in.Name)
		}
	}
	sort.Strings(started)
	return started
}

// startAgain creates the domain of an instance from the config Ganeti
// wrote at its last start (writing one first if it never started),
// unless a concurrent reboot started it since the domains were listed
// (Ganeti's start job would then find it running).
func (n *node) startAgain(name string) {
	n.t.Helper()
	cfg := filepath.Join(n.xenDir, name)
	if _, err := os.Stat(cfg); err != nil {
		n.start(name)
		return
	}
	_, errs, code := n.run(n.sim, "create", cfg)
	if code != 0 && !strings.Contains(errs, "already exists") {
		n.t.Fatalf("xl create %s: exit %d: %s", name, code, errs)
	}
}

// domainMap lists the node's domains by name.
func (n *node) domainMap() map[string]xen.Domain {
	n.t.Helper()
	m := map[string]xen.Domain{}
	for _, d := range n.domains() {
		m[d.Name] = d
	}
	return m
}

// hookBinary builds userdown-hook, the program Ganeti's hook dirs link.
func (n *node) hookBinary() string {
	n.t.Helper()
	return testbin.Build(n.t, "ganeti-userdown/cmd/userdown-hook")
}

// lockedInstances returns the instances a running Ganeti job holds.
func lockedInstances(st ganetifake.State) map[string]bool {
	m := map[string]bool{}
	for _, j := range st.Jobs {
		if j.Status == "running" {
			m[j.Instance] = true
		}
	}
	return m
}

// report runs userdown-detect --json and decodes its report.
func (n *node) report() map[string]string {
	n.t.Helper()
	out, errs, code := n.run(n.detect, "--json")
	if code != 0 {
		n.t.Fatalf("userdown-detect --json: exit %d: %s", code, errs)
	}
	var rep struct {
		Domains []struct {
			Name     string `json:"name"`
			Decision string `json:"decision"`
		} `json:"domains"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		n.t.Fatalf("userdown-detect --json: %v\n%s", err, out)
	}
	m := map[string]string{}
	for _, d := range rep.Domains {
		m[d.Name] = d.Decision
	}
	return m
}

// calls reads the simulator's call log.
func (n *node) calls() []simlog.Entry {
	n.t.Helper()
	es, err := simlog.Read(n.simLog)
	if err != nil {
		n.t.Fatal(err)
	}
	return es
}

// hookLogText returns what the watcher hook logged.
func (n *node) hookLogText() string {
	b, _ := os.ReadFile(n.hookLog)
	return string(b)
}

// readDir returns the names in dir, sorted.
func readDir(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// eachVersion runs scenario against a fake cluster of every Ganeti
// version the fakes play.
func eachVersion(t *testing.T, scenario func(t *testing.T, version string)) {
	for _, v := range ganetifake.Versions {
		t.Run(v, func(t *testing.T) { scenario(t, v) })
	}
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
