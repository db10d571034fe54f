package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"ganeti-userdown/internal/config"
	"ganeti-userdown/internal/shim"
	"ganeti-userdown/internal/xen"
)

// RealDir is where the package diverts the distribution's toolstack
// (dpkg-divert keeps the base name: /usr/lib/ganeti-userdown/real/xl).
// The shim falls back to it when its configuration cannot be loaded, so
// that a broken configuration never stops the toolstack.
const RealDir = "/usr/lib/ganeti-userdown/real"

// ExecCmd is the toolstack shim.
type ExecCmd struct {
	Args []string `arg:"" optional:"" passthrough:"" name:"ARGS" help:"The toolstack's arguments, after --."`
}

// Run execs the real toolstack; it returns only when that fails.
func (c *ExecCmd) Run(g *Globals) error {
	cfg, err := g.load()
	if err != nil {
		return err
	}
	args := c.Args
	if len(args) > 0 && args[0] == "--" {
		args = args[1:] // the separator is ours, not the toolstack's
	}
	log := g.log
	if !g.Verbose {
		// The toolstack's caller reads its stderr: only problems go there.
		log = newLogger(g.stderr, slog.LevelWarn)
	}
	return runShim(xen.Flavour(cfg.Xen.Toolstack), cfg, args, g.getenv, log)
}

// shimMain is the shim invoked under the toolstack's own name.
func shimMain(name string, args []string, getenv func(string) string, stderr io.Writer) int {
	log := newLogger(stderr, slog.LevelWarn)
	cfg, err := config.LoadFrom("", getenv)
	if err != nil {
		real := filepath.Join(RealDir, name)
		if _, serr := os.Stat(real); serr != nil {
			log.Error("cannot load configuration and no diverted toolstack to fall back to", "err", err, "fallback", real)
			return exitUsage
		}
		log.Warn("cannot load configuration; running the diverted toolstack without rewriting", "err", err, "toolstack", real)
		cfg = config.Default()
		cfg.Xen.Command = real
		cfg.Actions = config.Actions{}
	}
	err = runShim(xen.Flavour(name), cfg, args, getenv, log)
	if errors.Is(err, shim.ErrSelf) {
		// [xen] command still names the diverted-over path (the default
		// /usr/sbin/xl is the shim once installed): use the diverted file.
		// Exec refused before doing anything, so trying again is safe; the
		// check itself runs once on the usual path.
		real := filepath.Join(RealDir, name)
		if _, serr := os.Stat(real); serr == nil {
			log.Warn("[xen] command is this shim; running the diverted toolstack instead", "command", cfg.Xen.Command, "toolstack", real)
			cfg.Xen.Command = real
			err = runShim(xen.Flavour(name), cfg, args, getenv, log)
		}
	}
	var ee *exitError
	if errors.As(err, &ee) {
		log.Error("shim failed", "err", ee.err)
		return ee.code
	}
	return exitFailed
}

// runShim analyses args, prepares and execs the toolstack; it returns
// only on failure.
func runShim(flavour xen.Flavour, cfg config.Config, args []string, getenv func(string) string, log *slog.Logger) error {
	plan := shim.Analyze(flavour, args, getenv("POSIXLY_CORRECT") != "")
	err := shim.Exec(context.Background(), plan, shim.Options{
		Command: cfg.Xen.Command,
		Actions: cfg.Actions.ActionList(),
		Env:     os.Environ(),
		Log:     log,
		Shutdown: &shim.ShutdownOptions{
			Flavour:   flavour,
			StateDir:  cfg.State.Dir,
			IntentTTL: cfg.State.IntentTTL.Duration,
			ReapWait:  cfg.Xen.ReapWait.Duration,
			Config:    cfg.Path,
		},
	})
	if errors.Is(err, shim.ErrSelf) {
		return exitErr(exitUsage, err)
	}
	return exitErr(exitState, err)
}
