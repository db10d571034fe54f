// Command userdown-detect lists the Ganeti instances of this node whose
// users powered them off from inside the guest and, with --mark-down,
// marks them down through Ganeti so that the watcher does not boot them
// again. The watcher hook runs it on every node before the watcher's
// restart pass.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alecthomas/kong"

	"ganeti-userdown/internal/cli"
	"ganeti-userdown/internal/config"
	"ganeti-userdown/internal/version"
	"ganeti-userdown/watcher"
)

const description = `List the instances of this node that their users powered off from inside
the guest, and with --mark-down mark them down in Ganeti.

For every Xen domain of this node it decides one of running, mark-down,
destroy, wait, host-initiated, not-ganeti or dom0. The master is asked
only when some domain is shut down, and then with one config-only query
of this node's instances and one query of their locks. Shutdowns that
Ganeti or an operator asked for (intents recorded by the hooks and the
toolstack shim) and instances held by a Ganeti job are never marked down.

Without --mark-down it only reads: the state dir is left as it was.

Output: the names of the instances to mark down, one per line, sorted;
with --json the full report (every domain with its decision and why, and
with --mark-down each job's id and status).

Time bounds: [cluster] timeout (default 30s) bounds each request to the
master (each attempt: a read is tried up to 4 times), each gnt-* command
and each job wait; [cluster] run_timeout (default 2m) bounds all of them
together for this run. [xen] timeout bounds each toolstack call.

Exit status: 0 ok, 1 some instance could not be marked down, 2 usage or
configuration error, 3 Xen's or the cluster's state could not be read
(nothing was changed). A run that waited --lock-wait for another detect
or destroy run on this node to release the run lock does nothing and
exits 1 ("another run holds the lock"): the next run does the work.`

type flags struct {
	Config   string           `help:"Configuration file (default: $USERDOWN_CONFIG, else /etc/ganeti/userdown.toml). Running as root, the file, its [xen] command and every directory above them must be owned by root and not writable by group or others." placeholder:"PATH"`
	JSON     bool             `name:"json" help:"Print the full report as JSON."`
	MarkDown bool             `name:"mark-down" help:"Mark the listed instances down through Ganeti (one job per instance, each awaited; a failing instance does not stop the others)."`
	LockWait time.Duration    `name:"lock-wait" default:"2m" help:"How long to wait for another detect or destroy run on this node to finish."`
	Version  kong.VersionFlag `help:"Print the version and exit."`
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	var c flags
	parsed := cli.Parse("userdown-detect", &c, args, stdout, stderr,
		kong.Description(description), kong.Vars{"version": version.Version})
	if parsed.Done {
		if parsed.Err != nil {
			fmt.Fprintf(stderr, "userdown-detect: %v\n", parsed.Err)
		}
		return parsed.Code
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("prog", "userdown-detect")
	// SIGTERM and SIGINT stop every blocking step from here on (the run
	// lock, the toolstack, the master).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg, err := config.LoadFrom(c.Config, getenv)
	if err != nil {
		log.Error(err.Error())
		return cli.ExitUsage
	}
	src, _, err := watcher.FromConfig(cfg, log)
	if err != nil {
		log.Error(err.Error())
		return cli.ExitUsage
	}

	// Only a marking run writes (observations, the prune of expired
	// intents); a plain listing is a read and changes nothing.
	release, code := watcher.TakeRunLock(ctx, src.Store, c.MarkDown, c.LockWait, log)
	if release == nil {
		return code
	}
	defer release()

	o := watcher.RunOptions{MarkDown: c.MarkDown, Source: "userdown-detect"}
	if c.MarkDown {
		o.Metrics = watcher.MetricsRecorder(cfg)
	}
	rep, failed, err := watcher.Run(ctx, src, nil, o)
	if err != nil {
		log.Error(err.Error() + "; nothing changed")
		return watcher.ExitCode(err)
	}

	if c.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			log.Error("write report", "err", err)
			return cli.ExitFailed
		}
	} else {
		for _, name := range rep.MarkDown {
			fmt.Fprintln(stdout, name)
		}
	}
	if failed {
		return cli.ExitFailed
	}
	return cli.ExitOK
}
