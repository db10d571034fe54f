package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"ganeti-userdown/internal/xen"
	"ganeti-userdown/testdata/ganetifake"
)

// ganetiPath is the PATH Ganeti gives hooks.
const ganetiPath = "PATH=/sbin:/bin:/usr/sbin:/usr/bin"

// ---- the master's view ----

func (c *cluster) snapshot() ganetifake.State {
	st, _ := c.eng.Store.Snapshot()
	return st
}

func (c *cluster) adminState(inst string) string {
	for _, in := range c.snapshot().Instances {
		if in.Name == inst {
			return in.AdminState
		}
	}
	return ""
}

func (c *cluster) setAdmin(inst, state string) error {
	return c.eng.Store.Update(func(st *ganetifake.State) error {
		for i := range st.Instances {
			if st.Instances[i].Name == inst {
				st.Instances[i].AdminState, st.Instances[i].AdminStateSource = state, ""
			}
		}
		return nil
	})
}

// jobs returns the cluster's jobs of one opcode for inst.
func (c *cluster) jobs(op, inst string) []ganetifake.Job {
	var out []ganetifake.Job
	for _, j := range c.snapshot().Jobs {
		if j.OpID == op && j.Instance == inst {
			out = append(out, j)
		}
	}
	return out
}

// idle reports whether no job of the cluster is queued or running.
func (c *cluster) idle() bool {
	for _, j := range c.snapshot().Jobs {
		if j.Status == "queued" || j.Status == "waiting" || j.Status == "running" {
			return false
		}
	}
	return true
}

// gnt runs a gnt-* fake against the cluster's state file and shows its
// output, as an operator on the master would see it.
func (n *node) gnt(command string, args ...string) {
	var out, errs bytes.Buffer
	getenv := func(k string) string {
		if k == ganetifake.EnvState {
			return n.cl.state
		}
		return ""
	}
	code := 0
	switch command {
	case "gnt-instance":
		code = ganetifake.RunGntInstance(args, getenv, &out, &errs)
	case "gnt-debug":
		code = ganetifake.RunGntDebug(args, getenv, &out, &errs)
	}
	suffix := ""
	if code != 0 {
		suffix = fmt.Sprintf("   => exit %d", code)
	}
	n.d.event("on the master: $ %s %s%s", command, strings.Join(args, " "), suffix)
	for _, l := range strings.Split(strings.TrimRight(out.String()+errs.String(), "\n"), "\n") {
		if l != "" {
			n.d.printed(l)
		}
	}
}

func (n *node) gntList() {
	n.gnt("gnt-instance", "list", "-o", "name,status")
}

// ---- the node's view ----

// domains lists the simulated node through the real toolstack.
func (n *node) domains() []xen.Domain {
	out, err := exec.Command(n.realXL, "list", "-v").Output()
	if err != nil {
		n.d.check(false, "xl list -v on %s: %v", n.name, err)
		return nil
	}
	doms, err := xen.ParseList(xen.XL, out)
	if err != nil {
		n.d.check(false, "parse xl list -v: %v", err)
	}
	return doms
}

func (n *node) lookup(name string) (xen.Domain, bool) {
	for _, dom := range n.domains() {
		if dom.Name == name {
			return dom, true
		}
	}
	return xen.Domain{}, false
}

func (n *node) domain(name string) xen.Domain {
	dom, _ := n.lookup(name)
	return dom
}

func (n *node) running(name string) bool {
	dom, ok := n.lookup(name)
	return ok && dom.State.Alive()
}

func (n *node) gone(name string) bool {
	_, ok := n.lookup(name)
	return !ok
}

func (n *node) xlList() {
	n.sh("", n.xl, "list")
}

// guest plays something happening inside a guest (the simulator's sim
// verbs): a poweroff, a kernel panic.
func (n *node) guest(who, verb, inst string) time.Time {
	t := time.Now()
	n.sh(who, n.realXL, "sim", verb, inst)
	return t
}

// ---- what Ganeti does on the node ----

// startJob plays an instance start job of the master (an operator's
// `gnt-instance startup`, or the watcher's restart): it holds the
// instance lock, runs the instance-start pre hooks (a failing one aborts
// the job, HooksAbort, and Ganeti prints its output), marks the instance
// up, writes the domain config and calls xl create through the shim, and
// runs the post hooks. It returns the refusal's first line, or "".
func (n *node) startJob(inst, what string, quiet bool) string {
	d := n.d
	id, held, err := n.cl.eng.TryHoldLock(inst, "OP_INSTANCE_STARTUP")
	if err != nil || !held {
		// The demo waits for its jobs: nothing else should hold the lock.
		d.check(false, "%s: the instance lock of %s is free (err %v)", what, inst, err)
		return ""
	}
	status := "error"
	defer func() { n.cl.eng.Finish(id, status, nil) }()
	d.event("%s (job %d)", what, id)
	r := n.hook(inst, "instance-start", "pre", n.cl.adminState(inst), false)
	if r.code != 0 {
		d.event("the job fails (HooksAbort); Ganeti shows the hook's output:")
	}
	if r.code != 0 || !quiet {
		for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			d.printed(l)
		}
	}
	if r.code != 0 {
		return strings.SplitN(r.stdout, "\n", 2)[0]
	}
	if err := n.cl.setAdmin(inst, "up"); err != nil {
		d.check(false, "mark %s up: %v", inst, err)
		return ""
	}
	cfg := filepath.Join(n.etcXen, inst)
	if err := os.WriteFile(cfg, []byte(ganetiConfig(inst)), 0o644); err != nil {
		d.check(false, "write %s: %v", cfg, err)
		return ""
	}
	if !quiet {
		d.event("Ganeti writes %s: on_poweroff='destroy', on_crash='restart'", d.short(cfg))
	}
	c := exec.Command(n.xl, "create", cfg)
	c.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "USERDOWN_CONFIG=" + n.config}
	cr := d.exec("Ganeti's node daemon: $ xl create "+cfg, c, !quiet)
	post := n.hook(inst, "instance-start", "post", "up", !quiet)
	d.check(cr.code == 0 && post.code == 0 && n.running(inst), "%s runs, with preserve (the start post hook checked the live domain)", inst)
	status = "success"
	return ""
}

// hook runs userdown-hook as Ganeti does: no arguments, an emptied
// environment with only PATH and GANETI_*, cwd /.
func (n *node) hook(inst, dir, phase, status string, show bool) result {
	cmd := exec.Command(filepath.Join(n.d.bin, "userdown-hook"))
	cmd.Dir = "/"
	cmd.Env = append([]string{ganetiPath, "USERDOWN_CONFIG=" + n.config}, hookEnv(n.cl, n.name, dir, phase, inst, status)...)
	return n.d.exec(fmt.Sprintf("hook: $ %s-%s.d/50-userdown   (%s)", dir, phase, inst), cmd, show)
}

// hookEnv is the environment Ganeti gives an instance hook (the
// variables that matter, as in testdata/ganeti-3.0.2/hooks/).
func hookEnv(cl *cluster, node, dir, phase, inst, status string) []string {
	op := map[string]string{
		"instance-start": "OP_INSTANCE_STARTUP",
		"instance-stop":  "OP_INSTANCE_SHUTDOWN",
	}[dir]
	inv := map[string]string{
		"INSTANCE_NAME":          inst,
		"INSTANCE_PRIMARY":       node,
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
		"GANETI_CLUSTER=" + cl.name, "GANETI_DATA_DIR=/var/lib/ganeti",
		"GANETI_HOOKS_PATH=" + dir, "GANETI_HOOKS_PHASE=" + phase, "GANETI_HOOKS_VERSION=2",
		"GANETI_MASTER=" + node, "GANETI_OBJECT_TYPE=INSTANCE", "GANETI_OP_CODE=" + op,
	}
	if dir == "instance-start" {
		env = append(env, "GANETI_FORCE=False")
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

// ganetiConfig is the domain config Ganeti writes for a PVM instance:
// the shape of testdata/ganeti-3.0.2/xen-config-xen1.example.com.cfg,
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

// watcherHook runs the watcher's hook on n as ganeti-watcher does
// (packaging/watcher/50-userdown), and shows its log. The hook would
// also start the event daemon again (--ensure-running); here it is left
// alone.
func (n *node) watcherHook() {
	d := n.d
	logFile := filepath.Join(n.dir, "watcher-hook.log")
	os.Remove(logFile)
	cmd := exec.Command(d.watcherHook)
	cmd.Env = []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C",
		"USERDOWN_CONFIG=" + n.config,
		"USERDOWN_DETECT=" + filepath.Join(d.bin, "userdown-detect"),
		"USERDOWN_DESTROY=" + filepath.Join(d.bin, "userdown-destroy"),
		"USERDOWN_WATCHD=",
		"USERDOWN_WATCHER_LOCK=" + filepath.Join(n.dir, "watcher.lock"),
		"USERDOWN_WATCHER_LOG=" + logFile,
	}
	d.exec("ganeti-watcher: $ /etc/ganeti/hooks/watcher/50-userdown", cmd, false)
	for _, line := range strings.Split(strings.TrimSpace(read(logFile)), "\n") {
		if line == "" {
			continue
		}
		// "DATE TIME 50-userdown[PID] LEVEL: PROGRAM: TEXT": keep the
		// program and the text, and of a log line its message and values.
		f := strings.SplitN(line, " ", 5)
		if len(f) == 5 {
			line = f[4]
		}
		if prog, rest, ok := strings.Cut(line, ": "); ok && strings.Contains(rest, "msg=") {
			line = prog + ": " + condense(rest)
		}
		d.printed(line)
	}
}

// detectJSON runs userdown-detect --json on n and shows each domain's
// decision and why on a line.
func (n *node) detectJSON() map[string]string {
	cmd := exec.Command(filepath.Join(n.d.bin, "userdown-detect"), "--json")
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "USERDOWN_CONFIG=" + n.config}
	r := n.d.exec("operator: $ userdown-detect --json   (what would be decided now, and why)", cmd, false)
	var rep struct {
		Domains []struct {
			Name     string `json:"name"`
			Decision string `json:"decision"`
			Why      string `json:"why"`
		} `json:"domains"`
	}
	out := map[string]string{}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		n.d.check(false, "parse userdown-detect --json: %v", err)
		return out
	}
	for _, dom := range rep.Domains {
		if dom.Name == "Domain-0" {
			continue
		}
		out[dom.Name] = dom.Decision
		n.d.printed(fmt.Sprintf("%-18s %-14s %s", dom.Name, dom.Decision, dom.Why))
	}
	return out
}
