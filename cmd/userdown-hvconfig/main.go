// Command userdown-hvconfig keeps Xen domain configs set to preserve
// powered-off and crashed domains, and is the toolstack shim that applies
// this to every config `xl create` (or `xm create`) reads.
//
//	userdown-hvconfig rewrite FILE...   set the [actions] in each file
//	userdown-hvconfig check FILE...     exit 1 unless every file has them
//	userdown-hvconfig exec -- ARGS...   the shim: run the real toolstack
//
// Installed (or linked) under the name xl or xm it behaves as `exec --`
// with its own arguments. Each subcommand lives in its own file.
package main

import (
	"errors"
	"fmt"
	"ganeti-userdown/internal/cli"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/alecthomas/kong"

	"ganeti-userdown/internal/config"
	"ganeti-userdown/internal/version"
)

// Exit codes shared by every ganeti-userdown binary.
const (
	exitOK     = cli.ExitOK
	exitFailed = cli.ExitFailed     // some item failed
	exitUsage  = cli.ExitUsage      // usage or configuration error
	exitState  = cli.ExitUnreadable // Xen or cluster state unreadable; nothing changed
)

// CLI is the command line. Add a subcommand as a field here and its type
// and Run method in a file of its own.
type CLI struct {
	Globals

	Rewrite RewriteCmd       `cmd:"" help:"Set the configured [actions] (on_poweroff, on_crash, on_shutdown) in each domain config, changing nothing else. Prints FILE: rewritten or FILE: unchanged; exit 1 if any file failed."`
	Check   CheckCmd         `cmd:"" help:"Exit 0 when every domain config already carries the configured [actions], 1 otherwise, naming the files and keys."`
	Exec    ExecCmd          `cmd:"" help:"The toolstack shim: run the real toolstack ([xen] command) with ARGS, rewriting the config of a create first. Installed as xl or xm (/usr/sbin/xl links to userdown-shim, which execs the toolstack itself when there is nothing to prepare and hands every other call here), it does this with its own arguments, and when [xen] command cannot be run (or the configuration cannot be read or trusted) it runs the diverted toolstack, else the distribution's, logging why; exec -- fails instead."`
	Doctor  DoctorCmd        `cmd:"" help:"Tell whether this node is protected: the shim, the real toolstack, the hooks, the watcher hook, the configuration, the RAPI credentials and the master, and the live actions of every running domain. One line per check (ok, warn or fail, with what to do); --json for the full report. Exit 1 when some check failed."`
	Version kong.VersionFlag `help:"Print the version and exit."`
}

// Globals are the flags every subcommand takes.
type Globals struct {
	Config  string `help:"Configuration file (default ${default_config}, or $$${config_env}, which the shim honours as root too). Running as root, the file, its [xen] command and every directory above them must be owned by root and not writable by group or others." placeholder:"PATH"`
	JSON    bool   `help:"Print results as JSON." name:"json"`
	Verbose bool   `short:"v" help:"Log debug messages."`

	stdout, stderr io.Writer
	getenv         func(string) string
	log            *slog.Logger
}

// load reads the configuration named by --config, $USERDOWN_CONFIG or the
// default path.
func (g *Globals) load() (config.Config, error) {
	c, err := config.LoadFrom(g.Config, g.getenv)
	if err != nil {
		return config.Config{}, exitErr(exitUsage, err)
	}
	return c, nil
}

// exitError carries an exit code with an error (or nil, when the output
// already said everything).
type exitError struct {
	code int
	err  error
}

// Error returns the wrapped error's text.
func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

// Unwrap returns the wrapped error.
func (e *exitError) Unwrap() error { return e.err }

func exitErr(code int, err error) error { return &exitError{code, err} }

func main() {
	os.Exit(run(os.Args, os.Getenv, os.Stdout, os.Stderr))
}

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	// Under the toolstack's name: the shim, with no option parsing of
	// our own (every argument belongs to the toolstack).
	switch name := filepath.Base(args[0]); name {
	case "xl", "xm":
		return shimMain(name, args[1:], getenv, stderr)
	}

	var cmds CLI
	cmds.stdout, cmds.stderr, cmds.getenv = stdout, stderr, getenv
	parsed := cli.Parse("userdown-hvconfig", &cmds, args[1:], stdout, stderr,
		kong.Description("Keep Xen domain configs set to preserve powered-off and crashed domains (ganeti-userdown)."),
		kong.Vars{
			"default_config": config.DefaultPath,
			"config_env":     config.EnvVar,
			"version":        version.Version,
		},
		kong.UsageOnError(),
	)
	if parsed.Done {
		if parsed.Err != nil {
			fmt.Fprintf(stderr, "userdown-hvconfig: %v\n", parsed.Err)
		}
		return parsed.Code
	}
	level := slog.LevelInfo
	if cmds.Verbose {
		level = slog.LevelDebug
	}
	cmds.log = newLogger(stderr, level)
	err := parsed.Context.Run(&cmds.Globals)
	var ee *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		if ee.err != nil {
			fmt.Fprintf(stderr, "userdown-hvconfig: %v\n", ee.err)
		}
		return ee.code
	default:
		fmt.Fprintf(stderr, "userdown-hvconfig: %v\n", err)
		return exitFailed
	}
}
