// Package doctor decides whether a node is protected by ganeti-userdown:
// pure checks over facts gathered elsewhere (files, links, diversions, the
// toolstack's and the master's answers), each giving ok, warn or fail with
// what to do about it.
package doctor

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"

	"ganeti-userdown/internal/config"
)

// Status is the verdict of one check.
type Status string

// The three verdicts; any Fail makes the node unprotected.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Result is one line of the doctor's report.
type Result struct {
	// Check names what was checked: config, shim, toolstack, hooks,
	// watcher-hook, credentials, state-dir, master, domains, daemon.
	Check   string `json:"check"`
	Status  Status `json:"status"`
	Message string `json:"message"`
	// Fix says what to do, for warn and fail.
	Fix string `json:"fix,omitempty"`
}

// Report is the whole verdict.
type Report struct {
	// OK is false when some check failed.
	OK     bool     `json:"ok"`
	Checks []Result `json:"checks"`
}

// Package is the Debian package's name, owner of the diversions.
const Package = "ganeti-userdown"

// HookName is the name of the hook in every hooks directory.
const HookName = "50-userdown"

// HookDirs are Ganeti's hooks directories (under /etc/ganeti/hooks) in
// which userdown-hook must run (design.md, "Hooks"): the pre and post
// phases of start, stop, reboot, remove, migrate and failover, and the
// pre phase of add.
var HookDirs = []string{
	"instance-start-pre.d", "instance-start-post.d",
	"instance-stop-pre.d", "instance-stop-post.d",
	"instance-reboot-pre.d", "instance-reboot-post.d",
	"instance-remove-pre.d", "instance-remove-post.d",
	"instance-migrate-pre.d", "instance-migrate-post.d",
	"instance-failover-pre.d", "instance-failover-post.d",
	"instance-add-pre.d",
}

// hookNamePattern is the file name Ganeti's hook runner accepts; others
// are silently skipped.
var hookNamePattern = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// File is what gathering found at one path.
type File struct {
	Path string
	// Exists is false when nothing (not even a dangling link) is there.
	Exists bool
	// Err is an error other than "does not exist" from reading it.
	Err string
	// Link is the link's target when Path is a symbolic link.
	Link string
	// Resolved is false when a link dangles (or loops).
	Resolved bool
	// Regular and Perm describe the file the links lead to.
	Regular bool
	Perm    fs.FileMode
	// Shim reports that the links lead to a shim: userdown-shim or the
	// running userdown-hvconfig.
	Shim bool
	// Untrusted is why root must not trust the file (see package
	// trust), or "".
	Untrusted string
}

func (f File) executable() bool { return f.Resolved && f.Regular && f.Perm&0o111 != 0 }

// Diversion is what dpkg-divert says about a path.
type Diversion struct {
	// Known is false when dpkg-divert could not be asked.
	Known bool
	Err   string
	// By is the package holding the diversion ("" when none, "LOCAL" for
	// a local one).
	By string
	// To is the path the distribution's file is diverted to.
	To string
}

// ShimLink is one toolstack command name (xl or xm) in /usr/sbin.
type ShimLink struct {
	Name      string
	File      File
	Diversion Diversion
}

// Probe is the outcome of asking something (the toolstack, the master).
type Probe struct {
	// Tried is false when the probe was not run (and Skipped says why).
	Tried   bool
	Skipped string
	Err     string
	// Detail is a short summary of the answer, for the report.
	Detail string
}

// Domain is one domain of the node and its live actions.
type Domain struct {
	Name string
	ID   int
	// Alive: running, blocked, paused: not shut down, crashed or dying.
	Alive   bool
	Actions map[string]string
	Err     string
}

// Facts is everything the checks look at.
type Facts struct {
	ConfigPath string
	// ConfigFound is false when the (default) file does not exist and
	// the built-in defaults apply.
	ConfigFound bool
	ConfigErr   string
	// ConfigUntrusted is set when the configuration was refused because
	// root must not trust it (ConfigErr says why).
	ConfigUntrusted bool
	// Config is the configuration read, or the defaults when it could
	// not be read.
	Config config.Config

	// RealDir is where the package diverts the toolstack.
	RealDir string
	// Shims are /usr/sbin/xl and /usr/sbin/xm.
	Shims []ShimLink
	// Toolstack is the file [xen] command names; ToolstackRun is the
	// outcome of running "<command> list".
	Toolstack    File
	ToolstackRun Probe
	// ShimFallback is the toolstack the shim runs when [xen] command
	// cannot be run ("" when there is none).
	ShimFallback string

	// Hooks has one entry per HookDirs entry: <hooks>/<dir>/50-userdown.
	Hooks []File
	// Watcher is <hooks>/watcher/50-userdown.
	Watcher File

	// Credentials is [cluster] rapi_credentials (not resolved: its own
	// mode counts).
	Credentials File
	// Master is the outcome of the config-only instance query.
	Master Probe

	// Domains are the node's domains; DomainsErr is set when they could
	// not be listed.
	Domains    []Domain
	DomainsErr string

	// Daemon is what was found about userdown-watchd.
	Daemon DaemonFacts

	// StateProblems are what makes [state] dir untrusted or unusable
	// (state.Store.Problems), one line each; none when it is sound or
	// does not exist yet.
	StateProblems []string
}

// Check runs every check over f.
func Check(f Facts) Report {
	var rs []Result
	rs = append(rs, checkConfig(f))
	rs = append(rs, checkShims(f)...)
	rs = append(rs, checkToolstack(f))
	rs = append(rs, checkHooks(f))
	rs = append(rs, checkWatcher(f))
	rs = append(rs, checkCredentials(f))
	rs = append(rs, checkStateDir(f))
	rs = append(rs, checkMaster(f))
	rs = append(rs, checkDomains(f))
	rs = append(rs, checkDaemon(f))
	r := Report{OK: true, Checks: rs}
	for _, c := range rs {
		if c.Status == Fail {
			r.OK = false
		}
	}
	return r
}

func checkConfig(f Facts) Result {
	switch {
	case f.ConfigUntrusted:
		return Result{"config", Fail, f.ConfigErr + "; the shim ignores it and the binaries refuse to run",
			"make the file and every directory above it root's: chown root FILE; chmod go-w FILE (and each directory named)"}
	case f.ConfigErr != "":
		return Result{"config", Fail, f.ConfigErr, "fix the named key or line; every key and its default is listed, commented out, in the file the package installs"}
	case !f.ConfigFound:
		return Result{"config", Warn, fmt.Sprintf("%s does not exist: built-in defaults apply ([xen] command = %q)", f.ConfigPath, f.Config.Xen.Command),
			"reinstall ganeti-userdown (apt-get install --reinstall ganeti-userdown) to get the commented configuration back"}
	}
	return Result{"config", OK, f.ConfigPath + " parses", ""}
}

// checkShims reports the toolstack the configuration names (it must be
// wrapped) and the other one when it exists (it should be).
func checkShims(f Facts) []Result {
	want := f.Config.Xen.Toolstack
	var rs []Result
	for _, s := range f.Shims {
		if s.Name != want && !s.File.Exists {
			continue
		}
		bad := Fail
		if s.Name != want {
			bad = Warn
		}
		divertTo := path.Join(f.RealDir, s.Name)
		fix := fmt.Sprintf("reinstall ganeti-userdown (apt-get install --reinstall ganeti-userdown); dpkg-divert --list %s shows the diversion", s.File.Path)
		switch {
		case s.File.Err != "":
			rs = append(rs, Result{"shim", bad, fmt.Sprintf("%s: %s", s.File.Path, s.File.Err), fix})
		case !s.File.Exists:
			rs = append(rs, Result{"shim", bad, s.File.Path + " does not exist: Ganeti cannot start instances", fix})
		case !s.File.Shim:
			what := "a file"
			if s.File.Link != "" {
				what = "a link to " + s.File.Link
			}
			rs = append(rs, Result{"shim", bad, fmt.Sprintf("%s is %s, not the shim (userdown-shim): domains Ganeti starts do not get the [actions]", s.File.Path, what), fix})
		case !s.Diversion.Known:
			rs = append(rs, Result{"shim", Warn, fmt.Sprintf("%s is the shim; the diversion could not be checked: %s", s.File.Path, s.Diversion.Err),
				"on Debian, dpkg-divert --list " + s.File.Path + " must name ganeti-userdown"})
		case s.Diversion.By != Package || s.Diversion.To != divertTo:
			got := "not diverted"
			if s.Diversion.By != "" {
				got = fmt.Sprintf("diverted to %s by %s", s.Diversion.To, s.Diversion.By)
			}
			rs = append(rs, Result{"shim", bad, fmt.Sprintf("%s is the shim but is %s, not to %s by %s: a toolstack upgrade would overwrite it", s.File.Path, got, divertTo, Package), fix})
		default:
			rs = append(rs, Result{"shim", OK, fmt.Sprintf("%s is the shim; the distribution's %s is diverted to %s", s.File.Path, s.Name, divertTo), ""})
		}
	}
	return rs
}

func checkToolstack(f Facts) Result {
	r := toolstackResult(f)
	if r.Status == Fail && r.Check == "toolstack" && !f.Toolstack.runnable() {
		if f.ShimFallback != "" {
			r.Message += "; the shim runs " + f.ShimFallback + " instead"
		} else {
			r.Message += "; the shim finds no other toolstack to run"
		}
	}
	return r
}

// runnable reports whether the shim would run the file as the toolstack.
func (f File) runnable() bool { return f.executable() && !f.Shim && f.Untrusted == "" }

func toolstackResult(f Facts) Result {
	t := f.Toolstack
	fix := fmt.Sprintf("[xen] command must name the real %s: %s when the package is installed and Xen's tools are", f.Config.Xen.Toolstack, path.Join(f.RealDir, f.Config.Xen.Toolstack))
	switch {
	case t.Untrusted != "":
		return Result{"toolstack", Fail, fmt.Sprintf("[xen] command %s: %s", t.Path, t.Untrusted),
			"chown root and chmod go-w the command and each directory named, or point [xen] command at " + path.Join(f.RealDir, f.Config.Xen.Toolstack)}
	case t.Err != "":
		return Result{"toolstack", Fail, fmt.Sprintf("[xen] command %s: %s", t.Path, t.Err), fix}
	case !t.Exists:
		return Result{"toolstack", Fail, fmt.Sprintf("[xen] command %s does not exist", t.Path), fix + " (install Xen's tools: apt-get install xen-utils-common)"}
	case !t.Resolved:
		return Result{"toolstack", Fail, fmt.Sprintf("[xen] command %s is a link to %s, which does not resolve", t.Path, t.Link),
			fmt.Sprintf("a relative link diverted into %s resolves through %s: reinstall ganeti-userdown to restore it", f.RealDir, path.Join(path.Dir(f.RealDir), "lib"))}
	case t.Shim:
		return Result{"toolstack", Fail, fmt.Sprintf("[xen] command %s is the shim itself, not the real toolstack", t.Path), fix}
	case !t.executable():
		return Result{"toolstack", Fail, fmt.Sprintf("[xen] command %s is not an executable file", t.Path), fix}
	case !f.ToolstackRun.Tried:
		return Result{"toolstack", Warn, fmt.Sprintf("[xen] command %s not run: %s", t.Path, f.ToolstackRun.Skipped), ""}
	case f.ToolstackRun.Err != "":
		return Result{"toolstack", Fail, "the real toolstack does not answer: " + f.ToolstackRun.Err,
			"run it by hand; on a node without a running Xen hypervisor no toolstack works"}
	}
	return Result{"toolstack", OK, fmt.Sprintf("%s list answers (%s)", t.Path, f.ToolstackRun.Detail), ""}
}

func checkHooks(f Facts) Result {
	// Problems grouped by kind, each naming the directories concerned.
	var kinds []string
	byKind := map[string][]string{}
	add := func(kind, what string) {
		if _, ok := byKind[kind]; !ok {
			kinds = append(kinds, kind)
		}
		byKind[kind] = append(byKind[kind], what)
	}
	for _, h := range f.Hooks {
		dir := path.Base(path.Dir(h.Path))
		name := path.Base(h.Path)
		switch {
		case h.Err != "":
			add("unreadable", fmt.Sprintf("%s (%s)", dir, h.Err))
		case !h.Exists:
			add(HookName+" missing in", dir)
		case !hookNamePattern.MatchString(name):
			add("named so that Ganeti skips it (outside [a-zA-Z0-9_-])", dir+"/"+name)
		case !h.Resolved:
			add("link that does not resolve in", fmt.Sprintf("%s (-> %s)", dir, h.Link))
		case !h.executable():
			add("not executable in", dir)
		}
	}
	if len(kinds) > 0 {
		var parts []string
		for _, k := range kinds {
			parts = append(parts, k+" "+strings.Join(byKind[k], ", "))
		}
		return Result{"hooks", Fail, strings.Join(parts, "; ") + fmt.Sprintf(" (under %s)", path.Dir(path.Dir(f.Hooks[0].Path))),
			"reinstall ganeti-userdown, or ln -s /usr/sbin/userdown-hook " + path.Dir(path.Dir(f.Hooks[0].Path)) + "/<dir>/" + HookName}
	}
	return Result{"hooks", OK, fmt.Sprintf("%s in all %d hooks directories, executable", HookName, len(f.Hooks)), ""}
}

func checkWatcher(f Facts) Result {
	w := f.Watcher
	fix := "reinstall ganeti-userdown (apt-get install --reinstall ganeti-userdown): the hook is a link to /usr/libexec/ganeti-userdown/watcher-hook"
	switch {
	case w.Err != "":
		return Result{"watcher-hook", Fail, fmt.Sprintf("%s: %s", w.Path, w.Err), fix}
	case !w.Exists:
		return Result{"watcher-hook", Fail, w.Path + " missing: the watcher will restart instances their users powered off", fix}
	case !hookNamePattern.MatchString(path.Base(w.Path)):
		return Result{"watcher-hook", Fail, w.Path + ": the watcher skips names outside [a-zA-Z0-9_-]", fix}
	case !w.executable():
		return Result{"watcher-hook", Fail, w.Path + " is not an executable file: the watcher skips it", "chmod 0755 " + w.Path}
	}
	return Result{"watcher-hook", OK, w.Path + " is in place", ""}
}

func checkCredentials(f Facts) Result {
	if f.Config.Cluster.Backend != "rapi" {
		return Result{"credentials", OK, fmt.Sprintf("backend %q needs no RAPI credentials", f.Config.Cluster.Backend), ""}
	}
	c := f.Credentials
	fix := fmt.Sprintf("on the master: echo 'USER PASSWORD' > %s; chmod 0600 %s; gnt-cluster copyfile %s (USER needs write access in the master's /var/lib/ganeti/rapi/users)", c.Path, c.Path, c.Path)
	switch {
	case c.Err != "":
		return Result{"credentials", Fail, fmt.Sprintf("%s: %s", c.Path, c.Err), fix}
	case !c.Exists:
		return Result{"credentials", Fail, c.Path + " does not exist: nothing can be marked down", fix}
	case c.Untrusted != "":
		return Result{"credentials", Fail, fmt.Sprintf("%s: %s", c.Path, c.Untrusted), fmt.Sprintf("chown root %s; chmod 0600 %s (and chmod go-w each directory named)", c.Path, c.Path)}
	case c.Link != "":
		return Result{"credentials", Fail, fmt.Sprintf("%s is a link to %s; it must be a file of mode 0600", c.Path, c.Link), fix}
	case !c.Regular:
		return Result{"credentials", Fail, c.Path + " is not a regular file", fix}
	case c.Perm&0o077 != 0:
		return Result{"credentials", Fail, fmt.Sprintf("%s has mode %04o: group and others can read the RAPI password", c.Path, c.Perm), "chmod 0600 " + c.Path}
	}
	return Result{"credentials", OK, fmt.Sprintf("%s exists, mode %04o", c.Path, c.Perm), ""}
}

// checkStateDir fails when the state directory could let another user
// plant an intent or a link (design.md, "State files").
func checkStateDir(f Facts) Result {
	dir := f.Config.State.Dir
	if len(f.StateProblems) > 0 {
		return Result{"state-dir", Fail, dir + ": " + strings.Join(f.StateProblems, "; "),
			"each problem names its fix; the runs refuse the directory until then (detect and destroy exit 3, hooks log and change nothing)"}
	}
	return Result{"state-dir", OK, dir + " is root's and private, or not created yet", ""}
}

func checkMaster(f Facts) Result {
	m := f.Master
	switch {
	case !m.Tried:
		return Result{"master", Warn, "not asked: " + m.Skipped, "fix the checks above, then run doctor again"}
	case m.Err != "" && strings.Contains(m.Err, "connection refused"):
		return Result{"master", Fail, "the master does not answer: " + m.Err,
			`ganeti-rapi does not listen on that address: Debian starts it with RAPI_ARGS="-b 127.0.0.1" (/etc/default/ganeti), which keeps out every node, the master's own detect included (the default rapi_url https://<ssconf_master_node>:5080 is the master node's address), and a binding to the cluster IP leaves out Ganeti's watcher, which probes 127.0.0.1:5080; set RAPI_ARGS="-b 0.0.0.0" on every master candidate and restart ganeti (or choose [cluster] rapi_url and the binding together)`}
	case m.Err != "":
		return Result{"master", Fail, "the master does not answer: " + m.Err,
			"check [cluster] rapi_url (default https://<ssconf_master_node>:5080), the RAPI user's credentials and rapi_ca, and that ganeti-rapi listens beyond 127.0.0.1 (RAPI_ARGS in /etc/default/ganeti); try curl -k -u USER:PASSWORD https://MASTER:5080/2/info"}
	}
	return Result{"master", OK, "the master answers: " + m.Detail, ""}
}

// checkDomains compares every live domain's actions with the configured
// ones. A domain started before the installation keeps Xen's defaults
// until its next start: a warning, since it cannot be fixed live.
func checkDomains(f Facts) Result {
	if f.DomainsErr != "" {
		return Result{"domains", Fail, "cannot list the domains: " + f.DomainsErr, "run the toolstack's list by hand"}
	}
	want := f.Config.Actions.ActionList()
	var bad, failed []string
	alive := 0
	for _, d := range f.Domains {
		if d.ID == 0 || !d.Alive {
			continue
		}
		alive++
		if d.Err != "" {
			failed = append(failed, fmt.Sprintf("%s (%s)", d.Name, d.Err))
			continue
		}
		var off []string
		for _, kv := range want {
			got, ok := d.Actions[kv.Key]
			if !ok {
				continue // a key this toolstack does not report (on_shutdown)
			}
			if got != kv.Value {
				off = append(off, kv.Key+"="+got)
			}
		}
		if len(off) > 0 {
			sort.Strings(off)
			bad = append(bad, fmt.Sprintf("%s (%s)", d.Name, strings.Join(off, ", ")))
		}
	}
	switch {
	case len(failed) > 0:
		return Result{"domains", Fail, "cannot read the actions of " + strings.Join(failed, "; "), "run the toolstack's list -l DOMAIN by hand"}
	case len(bad) > 0:
		return Result{"domains", Warn, fmt.Sprintf("%d of %d running domains run without the configured actions: %s", len(bad), alive, strings.Join(bad, "; ")),
			"they were started before ganeti-userdown was installed (or by hand) and get the actions at their next start through Ganeti (gnt-instance reboot NAME); until then a poweroff inside them is not detected"}
	case alive == 0:
		return Result{"domains", OK, "no running domain besides dom0", ""}
	}
	return Result{"domains", OK, fmt.Sprintf("all %d running domains run with the configured actions", alive), ""}
}

// Text renders the report for a terminal: one line per check, the fix
// indented below it.
func (r Report) Text() string {
	var b strings.Builder
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "%-4s  %-12s  %s\n", c.Status, c.Check, c.Message)
		if c.Fix != "" && c.Status != OK {
			fmt.Fprintf(&b, "      %-12s  fix: %s\n", "", c.Fix)
		}
	}
	warned := false
	for _, c := range r.Checks {
		warned = warned || c.Status == Warn
	}
	switch {
	case r.OK && warned:
		b.WriteString("this node is protected, with warnings\n")
	case r.OK:
		b.WriteString("this node is protected\n")
	default:
		b.WriteString("this node is NOT protected: see the fail lines\n")
	}
	return b.String()
}
