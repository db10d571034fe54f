package main

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"ganeti-userdown/internal/shim"
	"ganeti-userdown/internal/toolstack"
	"ganeti-userdown/internal/xen"
)

// ExecCmd is the toolstack shim.
type ExecCmd struct {
	Args []string `arg:"" optional:"" passthrough:"" name:"ARGS" help:"The toolstack's arguments, after --."`
}

// Run execs the real toolstack; it returns only when that fails. Unlike
// the shim installed as xl, which falls back to another toolstack, it
// fails when [xen] command cannot be run: an operator asked for that one.
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
	err = shim.Run(context.Background(), xen.Flavour(cfg.Xen.Toolstack), cfg, args, g.getenv, log)
	if errors.Is(err, shim.ErrSelf) {
		return exitErr(exitUsage, err)
	}
	return exitErr(exitState, err)
}

// shimMain is the shim invoked under the toolstack's own name.
func shimMain(name string, args []string, getenv func(string) string, stderr io.Writer) int {
	return shim.Main(name, args, getenv, stderr, toolstack.DefaultLayout)
}
