// Command demo plays ganeti-userdown's story on a simulated Xen node and
// a fake Ganeti master, and prints it as a timeline: the commands Ganeti,
// the watcher, the guest's user and the operator run, and what each saw.
//
// It builds the binaries and the Xen simulator into a temporary directory,
// runs everything there (the RAPI fake in process) and removes it at the
// end. Every step checks what it claims; the demo exits 1 if one does not
// hold. Run it from the module: `make demo` or `go run ./testdata/demo`.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"ganeti-userdown/internal/xen"
	"ganeti-userdown/testdata/ganetifake"
)

const (
	nodeName = "node1.example.com"
	web1     = "web1.example.com"
	db1      = "db1.example.com"
	// ganetiPath is the PATH Ganeti gives hooks.
	ganetiPath = "PATH=/sbin:/bin:/usr/sbin:/usr/bin"
)

func main() {
	keep := flag.Bool("keep", false, "keep the work directory for inspection")
	verbose := flag.Bool("v", false, "also show what the commands log on stderr")
	flag.Parse()
	os.Exit(run(*keep, *verbose, os.Stdout))
}

// demo is the simulated node and master.
type demo struct {
	out     io.Writer
	verbose bool
	start   time.Time
	failed  []string

	root    string // the module
	dir     string // work dir
	bin     string // built binaries
	xl      string // the shim, installed as xl, as Ganeti calls it
	realXL  string // the diverted real toolstack (the simulator)
	etcXen  string
	dumps   string
	config  string
	watcher string // packaging/watcher/50-userdown

	srv *httptest.Server
	eng *ganetifake.Engine
}

func run(keep, verbose bool, out io.Writer) int {
	d := &demo{out: out, verbose: verbose, start: time.Now()}
	if err := d.setUp(); err != nil {
		fmt.Fprintf(out, "demo: set-up failed: %v\n", err)
		d.tearDown(keep)
		return 1
	}
	d.story()
	d.tearDown(keep)
	if len(d.failed) > 0 {
		fmt.Fprintf(out, "\ndemo: %d check(s) failed:\n", len(d.failed))
		for _, f := range d.failed {
			fmt.Fprintln(out, "  - "+f)
		}
		return 1
	}
	fmt.Fprintf(out, "\ndemo: every step behaved as described (%.1fs)\n", time.Since(d.start).Seconds())
	return 0
}

// ---- set-up ----

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.HasPrefix(b, []byte("module ganeti-userdown\n")) {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", errors.New("run the demo from inside the ganeti-userdown module")
		}
		dir = filepath.Dir(dir)
	}
}

func (d *demo) setUp() error {
	var err error
	if d.root, err = moduleRoot(); err != nil {
		return err
	}
	if d.dir, err = os.MkdirTemp("", "userdown-demo-"); err != nil {
		return err
	}
	d.bin = filepath.Join(d.dir, "bin")
	d.etcXen = filepath.Join(d.dir, "etc", "xen")
	d.dumps = filepath.Join(d.dir, "dumps")
	for _, p := range []string{d.bin, d.etcXen, d.dumps, filepath.Join(d.dir, "sbin"), filepath.Join(d.dir, "real"),
		filepath.Join(d.dir, "sim"), filepath.Join(d.dir, "state"), filepath.Join(d.dir, "ssconf")} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
	}
	d.watcher = filepath.Join(d.root, "packaging", "watcher", "50-userdown")
	if _, err := os.Stat(d.watcher); err != nil {
		return fmt.Errorf("the watcher hook script: %w", err)
	}

	fmt.Fprintf(d.out, "ganeti-userdown demo: a simulated Xen node %s and a fake Ganeti master\n", nodeName)
	fmt.Fprintf(d.out, "work directory %s (removed at the end)\n", d.dir)
	fmt.Fprintf(d.out, "building the binaries and the Xen simulator...\n")
	for _, b := range []string{"userdown-hvconfig", "userdown-hook", "userdown-detect", "userdown-destroy"} {
		if err := d.build("./cmd/"+b, filepath.Join(d.bin, b)); err != nil {
			return err
		}
	}
	sim := filepath.Join(d.dir, "sim", "xl")
	if err := d.build("./testdata/xensim", sim); err != nil {
		return err
	}
	// The real toolstack, diverted as the package does: here the
	// simulator, with its state file.
	d.realXL = filepath.Join(d.dir, "real", "xl")
	wrapper := fmt.Sprintf("#!/bin/sh\nXENSIM_STATE=%s XENSIM_DUMP_DIR=%s exec %s \"$@\"\n",
		filepath.Join(d.dir, "sim", "state.json"), filepath.Join(d.dir, "sim", "dump"), sim)
	if err := os.WriteFile(d.realXL, []byte(wrapper), 0o755); err != nil {
		return err
	}
	// The shim in the toolstack's place: userdown-hvconfig called xl.
	d.xl = filepath.Join(d.dir, "sbin", "xl")
	if err := os.Symlink(filepath.Join(d.bin, "userdown-hvconfig"), d.xl); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(d.dir, "ssconf", "ssconf_enabled_user_shutdown"), []byte("False\n"), 0o644); err != nil {
		return err
	}

	// The Ganeti master: the RAPI fake, whose shutdown jobs stop domains
	// through the shim as Ganeti's node daemon would.
	cert, err := ganetifake.NewCert("ganeti.example.com", false, nil)
	if err != nil {
		return err
	}
	d.eng = ganetifake.NewEngine(ganetifake.NewMemoryStore(ganetifake.State{
		Cluster: ganetifake.ClusterInfo{Name: "cluster.example.com", Master: nodeName},
		Instances: []ganetifake.Instance{
			{Name: db1, PrimaryNode: nodeName, AdminState: "down", Hypervisor: "xen-pvm", UUID: "0b2c1d9e-db01-4c55-9c1e-5f0ad0000001"},
			{Name: web1, PrimaryNode: nodeName, AdminState: "down", Hypervisor: "xen-pvm", UUID: "0b2c1d9e-eb01-4c55-9c1e-5f0ad0000002"},
		},
		Toolstack: ganetifake.Toolstack{Command: d.xl, Env: []string{"USERDOWN_CONFIG=" + filepath.Join(d.dir, "userdown.toml")}},
	}), true)
	h := &ganetifake.Handler{Engine: d.eng, Users: map[string]ganetifake.User{
		ganetifake.WriterUser: {Password: ganetifake.WriterPassword, Write: true},
	}}
	d.srv = httptest.NewUnstartedServer(h)
	d.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
	d.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	d.srv.StartTLS()
	rapiPEM := filepath.Join(d.dir, "rapi.pem")
	creds := filepath.Join(d.dir, "userdown-rapi.secret")
	if err := os.WriteFile(rapiPEM, cert.PEM, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(creds, []byte(ganetifake.WriterUser+" "+ganetifake.WriterPassword+"\n"), 0o600); err != nil {
		return err
	}

	d.config = filepath.Join(d.dir, "userdown.toml")
	toml := fmt.Sprintf(`# ganeti-userdown on the simulated node
[xen]
toolstack = "xl"
command = %q
config_dir = %q
reap_wait = "30s"

[cluster]
backend = "rapi"
node = %q
rapi_url = %q
rapi_ca = %q
rapi_credentials = %q
ssconf_dir = %q
timeout = "20s"
shutdown_timeout = "5s"

[crash]
dump_dir = %q

[state]
dir = %q
`, d.realXL, d.etcXen, nodeName, d.srv.URL, rapiPEM, creds, filepath.Join(d.dir, "ssconf"), d.dumps, filepath.Join(d.dir, "state"))
	return os.WriteFile(d.config, []byte(toml), 0o644)
}

func (d *demo) build(pkg, out string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = d.root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

func (d *demo) tearDown(keep bool) {
	if d.srv != nil {
		d.srv.Close()
	}
	if d.eng != nil {
		d.eng.Close()
	}
	if d.dir == "" {
		return
	}
	if keep {
		fmt.Fprintf(d.out, "work directory kept: %s\n", d.dir)
		return
	}
	os.RemoveAll(d.dir)
}

// ---- the story ----

func (d *demo) story() {
	ctx := context.Background()

	d.chapter("1. Ganeti 2.10 starts web1 and db1; its xl calls go through the shim, which sets preserve")
	d.gntStart(ctx, web1, "gnt-instance start web1")
	d.gntStart(ctx, db1, "gnt-instance start db1")
	d.sh("what xl create was given", "grep", "^on_", filepath.Join(d.etcXen, web1))
	d.xlList()
	for _, inst := range []string{web1, db1} {
		cfg := d.read(filepath.Join(d.etcXen, inst))
		d.check(strings.Contains(cfg, "on_poweroff = 'preserve'") && strings.Contains(cfg, "on_crash = 'preserve'"),
			"%s's config carries preserve for poweroff and crash", inst)
		d.check(d.domain(inst).State.Alive(), "%s runs", inst)
	}
	d.gntList(ctx)

	d.chapter("2. The user of web1 powers it off from inside the guest")
	d.sh("the guest's user", d.realXL, "sim", "poweroff", web1)
	d.xlList()
	d.check(d.domain(web1).State.Letters == "---s--", "xl list shows web1 as ---s-- (preserved, powered off)")
	d.gntList(ctx)

	d.chapter("3. The watcher runs: its hook marks web1 down and the preserved domain goes")
	r := d.sh("what detect sees", filepath.Join(d.bin, "userdown-detect"))
	d.check(strings.TrimSpace(r.stdout) == web1, "userdown-detect names web1 and nothing else")
	d.watcherRun(ctx)
	d.gntList(ctx)
	d.check(d.adminState(web1) == "down", "Ganeti has web1 ADMIN_down")
	_, present := d.lookup(web1)
	d.check(!present, "web1's preserved domain is gone")
	d.check(d.domain(db1).State.Alive(), "db1 still runs")

	d.chapter("4. db1's kernel panics: dumped, destroyed, and restarted by the watcher")
	d.sh("the guest's kernel", d.realXL, "sim", "crash", db1)
	d.xlList()
	d.check(d.domain(db1).State.Crashed(), "xl list shows db1 crashed and preserved")
	crashedID := d.domain(db1).ID
	d.watcherRun(ctx)
	dumps, _ := filepath.Glob(filepath.Join(d.dumps, db1+".*.core"))
	d.sh("", "ls", d.dumps)
	d.check(len(dumps) == 1, "one core dump of db1 in [crash] dump_dir")
	d.check(d.adminState(db1) == "up", "db1 stays up in Ganeti")
	after, ok := d.lookup(db1)
	d.check(ok && after.ID != crashedID && after.State.Alive(), "the watcher restarted db1 (new domid)")

	d.chapter("5. The operator stops db1 with Ganeti (a 2.10 node daemon: xl shutdown without -w)")
	d.note("Ganeti runs the instance-stop pre hooks of db1")
	d.hook(db1, "instance-stop", "pre", "up")
	d.sh("the guest takes 2s to power off", d.realXL, "sim", "set", db1, "shutdown-delay=2s")
	t0 := time.Now()
	d.sh("Ganeti's node daemon", d.xl, "shutdown", db1)
	d.sh("the intents: the hook's by name, the shim's by domain uuid", "ls", filepath.Join(d.dir, "state", "intents"))
	d.check(len(d.glob(filepath.Join(d.dir, "state", "intents", "*"+db1+"*")))+len(d.glob(filepath.Join(d.dir, "state", "intents", "uuid@*"))) >= 2,
		"both the hook and the shim recorded an intent for db1")
	d.detectJSON()
	seen := d.pollDetect(db1, 20*time.Second)
	d.check(len(seen) > 0 && !contains(seen, "mark-down"), "detect never takes db1's shutdown for its user's")
	gone := d.waitGone(db1, 20*time.Second)
	took := time.Since(t0)
	d.note(fmt.Sprintf("Ganeti polls xl list until db1 is gone: gone after %.1fs", took.Seconds()))
	d.check(gone && took < 15*time.Second, "the stop ended in seconds, not after Ganeti's shutdown timeout")
	d.setAdmin(db1, "down")
	d.note("Ganeti marks db1 down and runs the instance-stop post hooks")
	d.hook(db1, "instance-stop", "post", "up")
	d.watcherRun(ctx)
	d.gntList(ctx)
	_, present = d.lookup(db1)
	d.check(!present && d.adminState(db1) == "down", "db1 stays stopped")
}

// detectJSON runs userdown-detect --json and prints each domain's
// decision on one line; it returns the decisions by domain name.
func (d *demo) detectJSON() map[string]string {
	r := d.sh("detect's full report, condensed", filepath.Join(d.bin, "userdown-detect"), "--json")
	var rep struct {
		Domains []struct {
			Name     string `json:"name"`
			Decision string `json:"decision"`
			Why      string `json:"why"`
		} `json:"domains"`
	}
	out := map[string]string{}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		d.check(false, "parse userdown-detect --json: %v", err)
		return out
	}
	for _, dom := range rep.Domains {
		out[dom.Name] = dom.Decision
		fmt.Fprintf(d.out, "        > %-18s %-15s %s\n", dom.Name, dom.Decision, dom.Why)
	}
	return out
}

// pollDetect runs userdown-detect --json again and again while inst's
// domain exists (as a watcher run could at any moment) and prints the
// decisions it saw, in order.
func (d *demo) pollDetect(inst string, limit time.Duration) []string {
	var seen []string
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		out, err := exec.Command(filepath.Join(d.bin, "userdown-detect"), "--json", "--config", d.config).Output()
		var rep struct {
			Domains []struct {
				Name     string `json:"name"`
				Decision string `json:"decision"`
				State    string `json:"state"`
				Why      string `json:"why"`
			} `json:"domains"`
			Problems []string `json:"problems"`
		}
		if err != nil || json.Unmarshal(out, &rep) != nil {
			d.check(false, "userdown-detect --json: %v", err)
			return seen
		}
		dec := "gone"
		for _, dom := range rep.Domains {
			if dom.Name == inst {
				dec = dom.Decision
				if dec == "mark-down" {
					// Should never happen: show everything detect saw.
					d.note(fmt.Sprintf("detect decided mark-down for %s (%s): %s; problems: %v", inst, dom.State, dom.Why, rep.Problems))
				}
			}
		}
		if dec == "gone" {
			break
		}
		if len(seen) == 0 || seen[len(seen)-1] != dec {
			seen = append(seen, dec)
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.note(fmt.Sprintf("userdown-detect, run over and over until %s's domain is gone, decided: %s", inst, strings.Join(seen, ", then ")))
	return seen
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func (d *demo) glob(pattern string) []string {
	m, _ := filepath.Glob(pattern)
	return m
}

// ---- what Ganeti does ----

// gntStart plays gnt-instance start: the pre hooks, Ganeti writing the
// domain config and calling xl create (through the shim), the post hooks.
func (d *demo) gntStart(ctx context.Context, inst, what string) {
	status := d.adminState(inst)
	d.note(fmt.Sprintf("%s: Ganeti runs the instance-start pre hooks", what))
	d.hook(inst, "instance-start", "pre", status)
	cfg := filepath.Join(d.etcXen, inst)
	if err := os.WriteFile(cfg, []byte(ganetiConfig(inst)), 0o644); err != nil {
		d.check(false, "write %s: %v", cfg, err)
		return
	}
	d.note(fmt.Sprintf("Ganeti writes %s (on_poweroff = 'destroy', on_crash = 'restart') and creates the domain", d.short(cfg)))
	d.sh("Ganeti's node daemon", d.xl, "create", cfg)
	d.setAdmin(inst, "up")
	d.note("Ganeti runs the instance-start post hooks")
	r := d.hook(inst, "instance-start", "post", status)
	d.check(r.code == 0, "the start post hook of %s verifies the live domain", inst)
}

// watcherRun plays the watcher: its hooks directory (our 50-userdown),
// then the restart pass over instances Ganeti wants up.
func (d *demo) watcherRun(ctx context.Context) {
	d.note("ganeti-watcher runs /etc/ganeti/hooks/watcher/50-userdown")
	logFile := filepath.Join(d.dir, "watcher.log")
	os.Remove(logFile)
	cmd := exec.Command(d.watcher)
	cmd.Env = []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C",
		"USERDOWN_CONFIG=" + d.config,
		"USERDOWN_DETECT=" + filepath.Join(d.bin, "userdown-detect"),
		"USERDOWN_DESTROY=" + filepath.Join(d.bin, "userdown-destroy"),
		"USERDOWN_WATCHER_LOCK=" + filepath.Join(d.dir, "watcher.lock"),
		"USERDOWN_WATCHER_LOG=" + logFile,
	}
	d.exec("$ 50-userdown", cmd)
	for _, line := range strings.Split(strings.TrimSpace(d.read(logFile)), "\n") {
		if line != "" {
			fmt.Fprintf(d.out, "        | %s\n", d.short(line))
		}
	}
	d.note("the watcher's restart pass: instances Ganeti wants up whose domain does not run")
	restarted := false
	for _, in := range d.instances() {
		dom, ok := d.lookup(in.Name)
		if in.AdminState != "up" || (ok && dom.State.Alive()) {
			continue
		}
		restarted = true
		d.gntStart(ctx, in.Name, "watcher: restarting "+strings.TrimSuffix(in.Name, ".example.com"))
	}
	if !restarted {
		d.note("nothing to restart")
	}
}

// hook runs our hook as Ganeti does: no arguments, an emptied
// environment with only PATH and GANETI_*, cwd /.
func (d *demo) hook(inst, dir, phase, status string) result {
	cmd := exec.Command(filepath.Join(d.bin, "userdown-hook"))
	cmd.Dir = "/"
	cmd.Env = append([]string{ganetiPath, "USERDOWN_CONFIG=" + d.config}, hookEnv(dir, phase, inst, status)...)
	return d.exec(fmt.Sprintf("$ %s-%s.d/50-userdown   (GANETI_INSTANCE_NAME=%s)", dir, phase, inst), cmd)
}

// hookEnv is the environment Ganeti 3.0.2 gives an instance hook (the
// variables that matter, as in testdata/ganeti-3.0.2/hooks/).
func hookEnv(dir, phase, inst, status string) []string {
	op := map[string]string{
		"instance-start": "OP_INSTANCE_STARTUP",
		"instance-stop":  "OP_INSTANCE_SHUTDOWN",
	}[dir]
	inv := map[string]string{
		"INSTANCE_NAME":          inst,
		"INSTANCE_PRIMARY":       nodeName,
		"INSTANCE_SECONDARIES":   "",
		"INSTANCE_HYPERVISOR":    "xen-pvm",
		"INSTANCE_DISK_TEMPLATE": "diskless",
		"INSTANCE_STATUS":        status,
		"INSTANCE_MEMORY":        "512",
		"INSTANCE_VCPUS":         "1",
		"INSTANCE_OS_TYPE":       "debootstrap+default",
		"INSTANCE_TAGS":          "",
		"OP_TARGET":              inst,
	}
	env := []string{
		"GANETI_CLUSTER=cluster.example.com", "GANETI_DATA_DIR=/var/lib/ganeti",
		"GANETI_HOOKS_PATH=" + dir, "GANETI_HOOKS_PHASE=" + phase, "GANETI_HOOKS_VERSION=2",
		"GANETI_MASTER=" + nodeName, "GANETI_OBJECT_TYPE=INSTANCE", "GANETI_OP_CODE=" + op,
	}
	for k, v := range inv {
		env = append(env, "GANETI_"+k+"="+v)
		if phase == "post" {
			env = append(env, "GANETI_POST_"+k+"="+v)
		}
	}
	sort.Strings(env)
	return env
}

// ganetiConfig is the domain config a Ganeti 2.10 node writes for a PVM
// instance: the shape of testdata/ganeti-3.0.2/xen-config-xen1.example.com.cfg,
// with the on_poweroff = 'destroy' that Ganeti wrote up to 2.10.
func ganetiConfig(inst string) string {
	return fmt.Sprintf(`# Automatically generated by Ganeti. Do not edit!

kernel = '/boot/vmlinuz-xenU'
memory = 512
maxmem = 512
vcpus = 1
name = '%s'
vif = ['mac=aa:00:00:cd:d9:4f, bridge=xen-br0']
disk = []
root = '/dev/xvda1'
on_poweroff = 'destroy'
on_reboot = 'restart'
on_crash = 'restart'
extra = 'ro'
`, inst)
}

// ---- the master's view ----

func (d *demo) instances() []ganetifake.Instance {
	st, err := d.eng.Store.Snapshot()
	if err != nil {
		d.check(false, "read the fake master's state: %v", err)
		return nil
	}
	return st.Instances
}

func (d *demo) adminState(inst string) string {
	for _, in := range d.instances() {
		if in.Name == inst {
			return in.AdminState
		}
	}
	return ""
}

func (d *demo) setAdmin(inst, state string) {
	err := d.eng.Store.Update(func(st *ganetifake.State) error {
		for i := range st.Instances {
			if st.Instances[i].Name == inst {
				st.Instances[i].AdminState = state
			}
		}
		return nil
	})
	if err != nil {
		d.check(false, "update the fake master: %v", err)
	}
}

// gntList prints what `gnt-instance list -o name,status` would.
func (d *demo) gntList(ctx context.Context) {
	res, err := d.eng.QueryInstances(ctx, []string{"name", "status"}, nil)
	if err != nil {
		d.check(false, "query instances: %v", err)
		return
	}
	fmt.Fprintf(d.out, "%s  $ gnt-instance list -o name,status\n", d.stamp())
	fmt.Fprintf(d.out, "        | %-20s %s\n", "Instance", "Status")
	for _, row := range res.Data {
		fmt.Fprintf(d.out, "        | %-20v %v\n", row[0][1], row[1][1])
	}
}

// ---- the node's view ----

func (d *demo) xlList() {
	d.sh("", d.xl, "list")
}

// domains lists the simulated node through the real toolstack.
func (d *demo) domains() []xen.Domain {
	out, err := exec.Command(d.realXL, "list", "-v").Output()
	if err != nil {
		d.check(false, "xl list -v: %v", err)
		return nil
	}
	doms, err := xen.ParseList(xen.XL, out)
	if err != nil {
		d.check(false, "parse xl list -v: %v", err)
	}
	return doms
}

func (d *demo) lookup(name string) (xen.Domain, bool) {
	for _, dom := range d.domains() {
		if dom.Name == name {
			return dom, true
		}
	}
	return xen.Domain{}, false
}

func (d *demo) domain(name string) xen.Domain {
	dom, _ := d.lookup(name)
	return dom
}

func (d *demo) waitGone(name string, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if _, ok := d.lookup(name); !ok {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

// ---- printing and running ----

type result struct {
	code   int
	stdout string
	stderr string
}

func (d *demo) stamp() string {
	return fmt.Sprintf("%6.1fs", time.Since(d.start).Seconds())
}

func (d *demo) chapter(title string) {
	fmt.Fprintf(d.out, "\n== %s ==\n", title)
}

func (d *demo) note(s string) {
	fmt.Fprintf(d.out, "%s  %s\n", d.stamp(), s)
}

// sh runs a command as who (a comment printed beside it).
func (d *demo) sh(who string, name string, args ...string) result {
	cmd := exec.Command(name, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "USERDOWN_CONFIG=" + d.config}
	line := "$ " + strings.Join(append([]string{filepath.Base(name)}, d.shortAll(args)...), " ")
	if who != "" {
		line += "   # " + who
	}
	return d.exec(line, cmd)
}

func (d *demo) exec(line string, cmd *exec.Cmd) result {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Stdin = nil
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		r.code = -1
		r.stderr += err.Error()
	}
	suffix := ""
	if r.code != 0 {
		suffix = fmt.Sprintf("   => exit %d", r.code)
	}
	fmt.Fprintf(d.out, "%s  %s%s\n", d.stamp(), line, suffix)
	if !strings.HasSuffix(line, "--json") && !strings.Contains(line, "--json ") {
		for _, l := range strings.Split(strings.TrimRight(r.stdout, "\n"), "\n") {
			if l != "" {
				fmt.Fprintf(d.out, "        | %s\n", d.short(l))
			}
		}
	}
	if d.verbose || r.code != 0 {
		for _, l := range strings.Split(strings.TrimRight(r.stderr, "\n"), "\n") {
			if l != "" {
				fmt.Fprintf(d.out, "        ! %s\n", d.short(l))
			}
		}
	}
	return r
}

// short replaces the work directory by $DEMO in what is printed.
func (d *demo) short(s string) string {
	return strings.ReplaceAll(s, d.dir, "$DEMO")
}

func (d *demo) shortAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = d.short(s)
	}
	return out
}

func (d *demo) read(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func (d *demo) check(ok bool, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	if ok {
		fmt.Fprintf(d.out, "        ✓ %s\n", msg)
		return
	}
	fmt.Fprintf(d.out, "        ✗ %s\n", msg)
	d.failed = append(d.failed, msg)
}
