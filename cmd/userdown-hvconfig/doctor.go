package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"ganeti-userdown/internal/config"
	"ganeti-userdown/internal/doctor"
	"ganeti-userdown/internal/ganeti"
	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/toolstack"
	"ganeti-userdown/internal/trust"
	"ganeti-userdown/internal/xen"
)

// DoctorCmd tells whether this node is protected. It gathers the facts
// here and leaves every verdict to package doctor.
type DoctorCmd struct {
	SbinDir  string `hidden:"" default:"/usr/sbin" help:"Directory of the toolstack commands (for tests)."`
	HooksDir string `hidden:"" default:"/etc/ganeti/hooks" help:"Ganeti's hooks directory (for tests)."`
	RealDir  string `hidden:"" default:"/usr/lib/ganeti-userdown/real" help:"Where the package diverts the toolstack (for tests)."`
	ShimPath string `hidden:"" default:"/usr/libexec/ganeti-userdown/shim" help:"Where the package installs userdown-shim, the shim /usr/sbin/xl links to (for tests)."`
}

// Run prints the report (text, or JSON with --json) and exits 1 when some
// check failed.
func (c *DoctorCmd) Run(g *Globals) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	f := c.gather(ctx, g)
	r := doctor.Check(f)
	if g.JSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	} else {
		fmt.Fprint(g.stdout, r.Text())
	}
	if !r.OK {
		return exitErr(exitFailed, nil)
	}
	return nil
}

// gather reads the node: files, links, diversions, the toolstack, the
// master. Nothing is changed.
func (c *DoctorCmd) gather(ctx context.Context, g *Globals) doctor.Facts {
	var f doctor.Facts
	f.RealDir = c.RealDir

	path, explicit := config.Resolve(g.Config, g.getenv)
	f.ConfigPath = path
	_, statErr := os.Stat(path)
	f.ConfigFound = statErr == nil
	cfg, err := config.Load(path, explicit)
	if err != nil {
		f.ConfigErr = err.Error()
		f.ConfigUntrusted = trust.IsRefused(err)
		// Check the rest against what the package installs.
		cfg = config.Default()
		cfg.Xen.Command = filepath.Join(c.RealDir, "xl")
	}
	f.Config = cfg

	self := shimInfos(c.ShimPath)
	for _, name := range []string{"xl", "xm"} {
		p := filepath.Join(c.SbinDir, name)
		f.Shims = append(f.Shims, doctor.ShimLink{Name: name, File: inspect(p, self), Diversion: diversion(ctx, p)})
	}

	f.Toolstack = inspect(cfg.Xen.Command, self)
	f.Toolstack.Untrusted = untrusted(cfg.Xen.Command)
	if !f.Toolstack.Exists || f.Toolstack.Untrusted != "" || f.Toolstack.Shim || !f.Toolstack.Regular || f.Toolstack.Perm&0o111 == 0 {
		layout := toolstack.DefaultLayout
		layout.RealDir = c.RealDir
		chosen, _ := toolstack.ChooseToolstack(cfg.Xen.Toolstack, cfg.Xen.Command, layout)
		f.ShimFallback = chosen.Path
	}
	t := f.Toolstack
	switch {
	case t.Untrusted != "":
		f.ToolstackRun.Skipped = "root must not run it"
		f.DomainsErr = "the toolstack " + cfg.Xen.Command + " is not run: root must not trust it"
	case !t.Resolved || !t.Regular || t.Perm&0o111 == 0:
		f.ToolstackRun.Skipped = "not an executable file"
		f.DomainsErr = "the toolstack " + cfg.Xen.Command + " cannot be run"
	case t.Shim:
		f.ToolstackRun.Skipped = "it is the shim"
		f.DomainsErr = "[xen] command is the shim, not the real toolstack"
	default:
		c.gatherDomains(ctx, cfg, &f)
	}

	for _, d := range doctor.HookDirs {
		f.Hooks = append(f.Hooks, inspect(filepath.Join(c.HooksDir, d, doctor.HookName), self))
	}
	f.Watcher = inspect(filepath.Join(c.HooksDir, "watcher", doctor.HookName), self)
	f.Credentials = inspectNoFollow(cfg.Cluster.RAPICredentials)
	f.Credentials.Untrusted = untrusted(cfg.Cluster.RAPICredentials)

	if f.ConfigErr != "" {
		f.Master.Skipped = "the configuration does not parse"
	} else {
		f.Master = askMaster(ctx, cfg.Cluster)
	}
	f.Daemon = gatherDaemon(cfg)
	for _, err := range state.Open(cfg.State.Dir).Problems() {
		f.StateProblems = append(f.StateProblems, err.Error())
	}
	return f
}

// gatherDomains lists the domains and reads every live one's actions.
func (c *DoctorCmd) gatherDomains(ctx context.Context, cfg config.Config, f *doctor.Facts) {
	f.ToolstackRun.Tried = true
	x := xen.NewClient(xen.Flavour(cfg.Xen.Toolstack), cfg.Xen.Command, cfg.Xen.Timeout.Duration)
	doms, err := x.List(ctx)
	if err != nil {
		f.ToolstackRun.Err = oneLine(err.Error())
		f.DomainsErr = f.ToolstackRun.Err
		return
	}
	f.ToolstackRun.Detail = fmt.Sprintf("%d domains", len(doms))
	for _, d := range doms {
		fd := doctor.Domain{Name: d.Name, ID: d.ID, Alive: d.State.Alive()}
		if fd.Alive && !d.IsDom0() {
			acts, err := x.Actions(ctx, strconvItoa(d.ID))
			if err != nil {
				fd.Err = oneLine(err.Error())
			}
			fd.Actions = acts
		}
		f.Domains = append(f.Domains, fd)
	}
}

// askMaster makes the config-only query of this node's instances.
func askMaster(ctx context.Context, c config.Cluster) doctor.Probe {
	p := doctor.Probe{Tried: true}
	node, err := c.NodeName()
	if err != nil {
		p.Err = err.Error()
		return p
	}
	client, err := ganeti.New(c)
	if err != nil {
		p.Err = oneLine(err.Error())
		return p
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout.Duration)
	defer cancel()
	insts, err := client.Instances(ctx, node)
	if err != nil {
		p.Err = oneLine(err.Error())
		return p
	}
	p.Detail = fmt.Sprintf("%d instances with primary node %s (%s backend)", len(insts), node, c.Backend)
	return p
}

// diversion asks dpkg-divert who diverts p, and where to.
func diversion(ctx context.Context, p string) doctor.Diversion {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	by, err := exec.CommandContext(ctx, "dpkg-divert", "--listpackage", p).Output()
	if err != nil {
		return doctor.Diversion{Err: "dpkg-divert --listpackage " + p + ": " + err.Error()}
	}
	d := doctor.Diversion{Known: true, By: strings.TrimSpace(string(by))}
	if d.By == "" {
		return d
	}
	to, err := exec.CommandContext(ctx, "dpkg-divert", "--truename", p).Output()
	if err != nil {
		return doctor.Diversion{Err: "dpkg-divert --truename " + p + ": " + err.Error()}
	}
	d.To = strings.TrimSpace(string(to))
	return d
}

// shimInfos describes the shim binaries: this executable (the full shim
// when called as xl) and userdown-shim at shimPath.
func shimInfos(shimPath string) []fs.FileInfo {
	var out []fs.FileInfo
	if exe, err := os.Executable(); err == nil {
		if fi, err := os.Stat(exe); err == nil {
			out = append(out, fi)
		}
	}
	if fi, err := os.Stat(shimPath); err == nil {
		out = append(out, fi)
	}
	return out
}

// inspect describes p, following links to the file they lead to.
func inspect(p string, shims []fs.FileInfo) doctor.File {
	f := doctor.File{Path: p}
	li, err := os.Lstat(p)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			f.Err = err.Error()
		}
		return f
	}
	f.Exists = true
	if li.Mode()&fs.ModeSymlink != 0 {
		f.Link, _ = os.Readlink(p)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return f // a dangling or looping link
	}
	f.Resolved = true
	f.Regular = fi.Mode().IsRegular()
	f.Perm = fi.Mode().Perm()
	for _, s := range shims {
		f.Shim = f.Shim || os.SameFile(fi, s)
	}
	return f
}

// untrusted says why root must not trust p (see trust.Check), or "".
func untrusted(p string) string {
	if _, err := trust.Check(p); trust.IsRefused(err) {
		return err.Error()
	}
	return ""
}

// inspectNoFollow describes p itself: a secret's own mode counts.
func inspectNoFollow(p string) doctor.File {
	f := doctor.File{Path: p}
	li, err := os.Lstat(p)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			f.Err = err.Error()
		}
		return f
	}
	f.Exists, f.Resolved = true, true
	if li.Mode()&fs.ModeSymlink != 0 {
		f.Link, _ = os.Readlink(p)
	}
	f.Regular = li.Mode().IsRegular()
	f.Perm = li.Mode().Perm()
	return f
}

// oneLine shortens a multi-line error to its first and last lines (xl
// says what went wrong last: "cannot init xl context").
func oneLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) == 1 {
		return lines[0]
	}
	return strings.TrimSpace(lines[0]) + " … " + strings.TrimSpace(lines[len(lines)-1])
}

func strconvItoa(i int) string { return fmt.Sprint(i) }
