// Command userdown-watchd is ganeti-userdown's per-node event daemon: it
// watches xenstored's @releaseDomain, which fires on every domain
// shutdown, crash and destroy, and runs the watcher hook's pipeline within
// a fraction of a second instead of at the next watcher run: a user's
// poweroff is marked down and its domain goes, a crashed domain is dumped,
// destroyed and its instance started again.
package main

import (
	"context"
	"errors"
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
	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/version"
	"ganeti-userdown/watcher"
)

const description = `Act on this node's domain events within a second, instead of at the next
Ganeti watcher run.

xenstored fires its special watch @releaseDomain whenever a domain shuts
down, crashes or is destroyed. On every such event (those closer together
than [events] debounce are handled as one) userdown-watchd runs the
pipeline of the watcher hook over fresh state: it decides for every domain
exactly as userdown-detect does, marks the user-powered-off instances
down through Ganeti and waits for each job, destroys the preserved domains
that may go, and starts again, through Ganeti, the instances whose
crashed domain it destroyed (after a core dump when [crash] dump_dir is
set). It also runs this at start, every [events] rescan (so a lost event
costs at most that), and after reconnecting to xenstored.

It and the watcher hook share the run lock: they never act at the same
time, and either alone is enough. The watcher hook starts the daemon again
(--ensure-running) when [events] enabled is true and it is not running.

SIGTERM finishes the run in flight and exits 0; SIGHUP reloads the
configuration. xenstored going away (a restart of Xen's toolstack) is
retried with backoff and logged once; so is a master that does not
answer. Under systemd (Type=notify) it reports readiness and feeds the
watchdog. Each run is recorded in the state dir (watchd.json, shown by
userdown-hvconfig doctor) and in the metrics ([metrics] textfile).

Exit status: 0 stopped by SIGTERM or disabled by [events] enabled = false,
1 another userdown-watchd runs or it failed, 2 usage or configuration
error, 3 the state dir cannot be used.`

type flags struct {
	Config        string           `help:"Configuration file (default: $USERDOWN_CONFIG, else /etc/ganeti/userdown.toml)." placeholder:"PATH"`
	LogFile       string           `name:"log-file" placeholder:"PATH" help:"Append the log to this file instead of stderr."`
	Verbose       bool             `short:"v" help:"Log debug messages."`
	EnsureRunning bool             `name:"ensure-running" help:"Start the daemon unless [events] enabled is false or it already runs: with systemctl start when systemd runs, else detached, logging to /var/log/ganeti/userdown-watchd.log. Prints what it did."`
	Systemctl     string           `hidden:"" default:"systemctl" help:"The systemctl command (for tests)."`
	SystemdDir    string           `hidden:"" default:"/run/systemd/system" env:"USERDOWN_SYSTEMD_DIR" help:"Exists when systemd runs (for tests)."`
	DetachedLog   string           `hidden:"" default:"/var/log/ganeti/userdown-watchd.log" env:"USERDOWN_WATCHD_LOG" help:"Log of a daemon started detached (for tests)."`
	Version       kong.VersionFlag `help:"Print the version and exit."`
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	var c flags
	parsed := cli.Parse("userdown-watchd", &c, args, stdout, stderr,
		kong.Description(description), kong.Vars{"version": version.Version})
	if parsed.Done {
		if parsed.Err != nil {
			fmt.Fprintf(stderr, "userdown-watchd: %v\n", parsed.Err)
		}
		return parsed.Code
	}
	if c.EnsureRunning {
		return ensureRunning(c, stdout, stderr, getenv)
	}
	logw := stderr
	if c.LogFile != "" {
		f, err := os.OpenFile(c.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			fmt.Fprintf(stderr, "userdown-watchd: log file: %v\n", err)
			return cli.ExitUsage
		}
		defer f.Close()
		logw = f
	}
	level := slog.LevelInfo
	if c.Verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: level})).With("prog", "userdown-watchd")
	notify := newNotifier(getenv)

	cfg, err := config.LoadFrom(c.Config, getenv)
	if err != nil {
		log.Error(err.Error())
		return cli.ExitUsage
	}
	if !cfg.Events.Enabled {
		log.Info("[events] enabled is false: not watching", "config", cfg.Path)
		notify.send("READY=1\nSTATUS=disabled by [events] enabled = false")
		notify.send("STOPPING=1")
		return cli.ExitOK
	}
	wd, err := watchdogInterval(getenv)
	if err != nil {
		log.Warn("no watchdog", "err", err)
	}

	store := state.Open(cfg.State.Dir)
	lctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	lock, err := store.LockDaemon(lctx)
	cancel()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			log.Error("another userdown-watchd runs on this state dir", "lock", store.DaemonLockPath())
			return cli.ExitFailed
		}
		log.Error("state dir unusable", "err", err)
		return cli.ExitUnreadable
	}
	defer lock.Unlock()

	r := &runner{log: log, flag: c.Config, getenv: getenv, started: time.Now()}
	dcfg, err := r.load(cfg)
	if err != nil {
		log.Error(err.Error())
		return cli.ExitUsage
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, os.Interrupt, syscall.SIGHUP)
	defer signal.Stop(sigs)
	stop := make(chan struct{})
	hup := make(chan struct{}, 1)
	go func() {
		for s := range sigs {
			if s == syscall.SIGHUP {
				select {
				case hup <- struct{}{}:
				default: // a reload is already asked for
				}
				continue
			}
			log.Info("stopping: finishing the run in flight", "signal", s.String())
			notify.send("STOPPING=1")
			close(stop)
			return
		}
	}()

	d := &watcher.Daemon{
		Clock:  watcher.RealClock{},
		Log:    log,
		Reload: r.reload,
		Ready: func() {
			if err := notify.send("READY=1\nSTATUS=watching " + dcfg.Key); err != nil {
				log.Warn("systemd not told", "err", err)
			}
			log.Info("watching", "xenstore", dcfg.Key, "debounce", dcfg.Debounce, "rescan", dcfg.Rescan)
		},
		StepTimeout: stepTimeout,
		MinBackoff:  500 * time.Millisecond,
		MaxBackoff:  30 * time.Second,
	}
	if wd > 0 {
		d.WatchdogInterval = wd
		d.Watchdog = func() { notify.send("WATCHDOG=1") }
	}
	if err := d.Run(stop, hup, dcfg); err != nil {
		log.Error(err.Error())
		return cli.ExitFailed
	}
	log.Info("stopped")
	return cli.ExitOK
}

// stepTimeout bounds one run, as the watcher hook bounds its own.
const stepTimeout = 5 * time.Minute
