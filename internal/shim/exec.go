package shim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"

	"ganeti-userdown/hvconfig"
	"ganeti-userdown/internal/config"
	"ganeti-userdown/internal/toolstack"
)

// Options say what the shim runs and writes.
type Options struct {
	// Command is the real toolstack ([xen] command).
	Command string
	// Actions are written into the config given to create.
	Actions []config.KeyValue
	// Env is the environment the toolstack gets (normally os.Environ()).
	Env []string
	// Log receives what the shim did and what went wrong.
	Log *slog.Logger
	// Shutdown, when set, makes a shutdown record its intent and start
	// the reaper (see ShutdownOptions).
	Shutdown *ShutdownOptions
}

// Prepare does what must happen before the toolstack runs the command
// line: for create, it rewrites the config file with the actions. It
// never stops the command: a config that cannot be read, parsed or
// written is logged and left alone, and the toolstack then reports on it
// as it would without the shim.
func Prepare(ctx context.Context, p toolstack.Plan, o Options) {
	log := o.Log
	if !p.Prepares() {
		if p.Problem != "" {
			log.Debug("command line not analysed, passing it through", "problem", p.Problem)
		}
		return
	}
	switch p.Verb {
	case "create":
		changed, err := hvconfig.RewriteFile(p.Config, o.Actions)
		switch {
		case err != nil:
			log.Warn("domain config not rewritten, create goes on with it as it is", "config", p.Config, "err", err)
		case changed:
			log.Info("domain config rewritten", "config", p.Config)
		}
	case "shutdown":
		// Record that this shutdown was asked for (detect then never
		// marks it down) and, when the caller does not wait, start the
		// reaper, before the toolstack replaces this process.
		if o.Shutdown != nil {
			prepareShutdown(ctx, p, o)
		}
	}
}

// ErrSelf is returned when the toolstack command is the shim itself,
// which would make it exec itself forever.
var ErrSelf = errors.New("[xen] command is this shim itself, not the real toolstack")

// Exec prepares the command line (see Prepare) and replaces the process
// with the real toolstack, which gets p.Args with o.Command as argv[0],
// the same standard streams and o.Env. It returns only on failure.
func Exec(ctx context.Context, p toolstack.Plan, o Options) error {
	if err := CheckNotSelf(o.Command); err != nil {
		return err
	}
	Prepare(ctx, p, o)
	argv := make([]string, 0, len(p.Args)+1)
	argv = append(argv, o.Command)
	argv = append(argv, p.Args...)
	if err := syscall.Exec(o.Command, argv, o.Env); err != nil {
		return fmt.Errorf("exec %s: %w", o.Command, err)
	}
	return nil // not reached
}

// CheckNotSelf fails when command is (a link to) the running executable.
func CheckNotSelf(command string) error {
	cmd, err := os.Stat(command)
	if err != nil {
		return fmt.Errorf("toolstack %s: %w", command, err)
	}
	self, err := os.Executable()
	if err != nil {
		return nil // cannot tell; /proc is missing
	}
	me, err := os.Stat(self)
	if err != nil {
		return nil
	}
	if os.SameFile(cmd, me) {
		return fmt.Errorf("%s: %w", command, ErrSelf)
	}
	return nil
}
