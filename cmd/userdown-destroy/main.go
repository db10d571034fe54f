// Command userdown-destroy destroys the preserved Xen domains of this node
// that are safe to destroy: crashed domains (so Ganeti restarts them),
// domains of instances Ganeti wants down, user shutdowns under policy
// restart. Each domain is re-read by domid right before and skipped if it
// changed. In reaper mode (--reap, started by the toolstack shim) it waits
// for one domain whose shutdown Ganeti asked for and destroys it once
// preserved.
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

	"ganeti-userdown/destroy"
	"ganeti-userdown/internal/cli"
	"ganeti-userdown/internal/config"
	"ganeti-userdown/internal/version"
	"ganeti-userdown/watcher"
)

const description = `Destroy the preserved Xen domains of this node that may go.

The decisions are recomputed from fresh state, exactly as userdown-detect
makes them: only domains decided "destroy" are touched: crashed or
watchdog-stopped domains (Ganeti then restarts the instance), shut-down
domains of instances that are down or offline in Ganeti, and user
shutdowns of instances tagged userdown:restart. A user shutdown of an
instance Ganeti still wants up is never destroyed here: its mark-down job
does that. Every domain is re-read by domid right before and skipped when
its uuid, name or state changed.

After destroying a crashed or watchdog-stopped domain of an instance that
Ganeti still wants up (asked again: admin state up, not held by a job,
policy not ignore, no intent), it starts the instance through Ganeti and
waits for the job, so that a crash is back in seconds rather than at the
watcher's next restart pass.

Reaper mode (--reap DOMID --uuid UUID): wait up to --wait for that one
domain, whose shutdown Ganeti or an operator asked for, to reach its
preserved shutdown, destroy it and exit; exit without acting if it
disappears, changes uuid or runs again.

Time bounds: [cluster] timeout (default 30s) bounds each request to the
master (each attempt: a read is tried up to 4 times), each gnt-* command
and each job wait; [cluster] run_timeout (default 2m) bounds all of them
together for this run. [xen] timeout bounds each toolstack call.

Exit status: 0 ok, 1 some domain could not be destroyed, 2 usage or
configuration error, 3 Xen's or the cluster's state could not be read
(nothing was changed). A run that waited --lock-wait for another detect
or destroy run on this node to release the run lock does nothing and
exits 1 ("another run holds the lock"): the next run does the work.`

type flags struct {
	Config   string           `help:"Configuration file (default: $USERDOWN_CONFIG, else /etc/ganeti/userdown.toml). Running as root, the file, its [xen] command and every directory above them must be owned by root and not writable by group or others." placeholder:"PATH"`
	JSON     bool             `name:"json" help:"Print the full report as JSON."`
	DryRun   bool             `name:"dry-run" help:"Report what would be destroyed; change nothing (the state dir included)."`
	LockWait time.Duration    `name:"lock-wait" default:"2m" help:"How long to wait for another detect or destroy run on this node to finish."`
	Reap     *int             `name:"reap" placeholder:"DOMID" help:"Reaper mode: wait for this domain to reach a preserved shutdown and destroy it."`
	UUID     string           `name:"uuid" help:"Reaper mode: the uuid the domain must still have."`
	Wait     time.Duration    `name:"wait" help:"Reaper mode: how long to wait (default: [xen] reap_wait)."`
	Poll     time.Duration    `name:"poll" default:"200ms" hidden:"" help:"Reaper mode: interval between two looks at the domain."`
	Version  kong.VersionFlag `help:"Print the version and exit."`
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	var c flags
	parsed := cli.Parse("userdown-destroy", &c, args, stdout, stderr,
		kong.Description(description), kong.Vars{"version": version.Version})
	if parsed.Done {
		if parsed.Err != nil {
			fmt.Fprintf(stderr, "userdown-destroy: %v\n", parsed.Err)
		}
		return parsed.Code
	}
	if c.Reap == nil && (c.UUID != "" || c.Wait != 0) {
		fmt.Fprintln(stderr, "userdown-destroy: --uuid and --wait need --reap")
		return cli.ExitUsage
	}
	if c.Reap != nil && (c.UUID == "" || *c.Reap <= 0) {
		fmt.Fprintln(stderr, "userdown-destroy: --reap needs a domid above 0 and --uuid")
		return cli.ExitUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("prog", "userdown-destroy")
	// SIGTERM and SIGINT stop every blocking step from here on (the run
	// lock, the toolstack, the master).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg, err := config.LoadFrom(c.Config, getenv)
	if err != nil {
		log.Error(err.Error())
		return cli.ExitUsage
	}
	src, x, err := watcher.FromConfig(cfg, log)
	if err != nil {
		log.Error(err.Error())
		return cli.ExitUsage
	}

	if c.Reap != nil {
		wait := c.Wait
		if wait <= 0 {
			wait = cfg.Xen.ReapWait.Duration
		}
		log = log.With("domid", *c.Reap, "uuid", c.UUID)
		r, err := destroy.Reap(ctx, x, destroy.ReapOptions{DomID: *c.Reap, UUID: c.UUID, Wait: wait, Poll: c.Poll, Log: log})
		if err != nil {
			log.Error("reaper", "err", err)
			return cli.ExitFailed
		}
		if r.Destroyed {
			if err := src.Store.ClearUUIDIntents(c.UUID); err != nil {
				log.Warn("clear intent", "err", err)
			}
		}
		log.Info("reaper done", "destroyed", r.Destroyed, "outcome", r.Outcome)
		if c.JSON {
			return printJSON(stdout, r, log)
		}
		fmt.Fprintln(stdout, r.Outcome)
		return cli.ExitOK
	}

	// A dry run only reads: it writes no observation and prunes nothing.
	release, code := watcher.TakeRunLock(ctx, src.Store, !c.DryRun, c.LockWait, log)
	if release == nil {
		return code
	}
	defer release()

	rep, failed, err := watcher.Run(ctx, src, x, watcher.RunOptions{
		Destroy: true,
		DestroyOptions: watcher.DestroyOptions{
			DryRun: c.DryRun, DumpDir: cfg.Crash.DumpDir, Keep: cfg.Crash.Keep, Now: time.Now, Log: log,
		},
		Source:  "userdown-destroy",
		Metrics: watcher.MetricsRecorder(cfg),
	})
	if err != nil {
		log.Error(err.Error() + "; nothing changed")
		return watcher.ExitCode(err)
	}
	if c.JSON {
		if code := printJSON(stdout, rep, log); code != cli.ExitOK {
			return code
		}
	} else {
		for _, a := range rep.Actions {
			fmt.Fprintln(stdout, actionLine(a))
		}
	}
	if failed {
		return cli.ExitFailed
	}
	return cli.ExitOK
}

func actionLine(a watcher.ActionResult) string {
	what := fmt.Sprintf("%s (domain %d)", a.Name, a.DomID)
	switch {
	case a.Failed && !a.Destroyed:
		return "failed " + what + ": " + a.Error
	case a.DryRun && a.Skipped == "":
		s := "would destroy " + what
		if a.Dump != "" {
			s += ", dump to " + a.Dump
		}
		return s
	case a.Skipped != "":
		return "skipped " + what + ": " + a.Skipped
	}
	s := "destroyed " + what
	if a.Dump != "" {
		s += ", dumped to " + a.Dump
	}
	if a.Error != "" {
		s += " (" + a.Error + ")"
	}
	return s
}

func printJSON(w io.Writer, v any, log *slog.Logger) int {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		log.Error("write report", "err", err)
		return cli.ExitFailed
	}
	return cli.ExitOK
}
