package shim

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"ganeti-userdown/internal/cli"
	"ganeti-userdown/internal/config"
	"ganeti-userdown/internal/toolstack"
	"ganeti-userdown/internal/xen"
)

// exitUnreadable is the shim's own exit status when no toolstack could be
// run (once one runs, its status is the caller's).
const exitUnreadable = cli.ExitUnreadable

// Main is the shim called under the toolstack's name (xl or xm), as the
// package installs it: it reads the configuration ($USERDOWN_CONFIG, else
// config.DefaultPath), chooses the toolstack and runs it with args. It
// returns only when no toolstack could be run. A start always goes ahead:
// a configuration that cannot be read or that root must not trust is
// logged and the built-in defaults apply, and a [xen] command that cannot
// be run gives way to the diverted toolstack, else the distribution's
// (see ChooseToolstack), with an error on stderr saying so.
func Main(name string, args []string, getenv func(string) string, stderr io.Writer, l toolstack.Layout) int {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	path, explicit := config.Resolve("", getenv)
	cfg, err := config.Read(path, explicit)
	configured := cfg.Xen.Command
	if err != nil {
		log.Error("configuration not used: the built-in defaults apply, with the diverted toolstack", "err", err)
		cfg, configured = config.Default(), ""
	}
	if self, err := os.Executable(); err == nil {
		// userdown-shim beside this binary (as in the tests) is a shim too.
		l.Shims = append(slices.Clip(l.Shims), filepath.Join(filepath.Dir(self), "userdown-shim"))
	}
	chosen, skipped := toolstack.ChooseToolstack(name, configured, l)
	for _, s := range skipped {
		log.Error("toolstack cannot be run: fix [xen] command (userdown-hvconfig doctor)", "source", s.Source, "problem", s.Problem, "instead", chosen.Path)
	}
	if chosen.Path == "" {
		log.Error("no toolstack to run: none of [xen] command, the diverted and the distribution's can be run", "name", name)
		return exitUnreadable
	}
	cfg.Xen.Command = chosen.Path
	err = Run(context.Background(), xen.Flavour(name), cfg, args, getenv, log)
	log.Error("shim failed", "err", err)
	return exitUnreadable
}

// Run analyses args and execs the toolstack cfg.Xen.Command with them,
// preparing the command first (see Exec). It returns only on failure.
func Run(ctx context.Context, flavour xen.Flavour, cfg config.Config, args []string, getenv func(string) string, log *slog.Logger) error {
	plan := toolstack.Analyze(string(flavour), args, getenv("POSIXLY_CORRECT") != "")
	return Exec(ctx, plan, Options{
		Command: cfg.Xen.Command,
		Actions: cfg.Actions.ActionList(),
		Env:     os.Environ(),
		Log:     log,
		Shutdown: &ShutdownOptions{
			Flavour:   flavour,
			StateDir:  cfg.State.Dir,
			IntentTTL: cfg.State.IntentTTL.Duration,
			ReapWait:  cfg.Xen.ReapWait.Duration,
			Config:    cfg.Path,
		},
	})
}
