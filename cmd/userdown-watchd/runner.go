package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"ganeti-userdown/internal/config"
	"ganeti-userdown/internal/ganeti"
	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/xen"
	"ganeti-userdown/internal/xenstore"
	"ganeti-userdown/watcher"
)

// runner is the daemon's imperative shell: it loads the configuration
// and runs one step of the pipeline under the run lock.
type runner struct {
	log     *slog.Logger
	flag    string
	getenv  func(string) string
	started time.Time

	cfg config.Config
	src watcher.Sources
	x   *xen.Client
}

// load makes cfg the running configuration. Each run builds its own
// cluster client (a client serves one run: [cluster] run_timeout bounds
// it), and only when some domain is shut down.
func (r *runner) load(cfg config.Config) (watcher.DaemonConfig, error) {
	src, x, err := watcher.FromConfig(cfg, r.log)
	if err != nil {
		return watcher.DaemonConfig{}, err
	}
	r.cfg, r.src, r.x = cfg, src, x
	path := cfg.Events.XenStore
	if path == "" {
		// $XENSTORED_PATH, else Xen's default, as libxenstore resolves it.
		path = xenstore.DefaultPath()
	}
	return watcher.DaemonConfig{
		Debounce: cfg.Events.Debounce.Duration,
		Rescan:   cfg.Events.Rescan.Duration,
		Events:   xenstoreSource{path: path},
		Key:      path,
		Step:     r.step,
	}, nil
}

// reload reads the configuration again (SIGHUP). The state dir cannot
// change under a running daemon: its locks live there.
func (r *runner) reload() (watcher.DaemonConfig, error) {
	cfg, err := config.LoadFrom(r.flag, r.getenv)
	if err != nil {
		return watcher.DaemonConfig{}, err
	}
	if cfg.State.Dir != r.cfg.State.Dir {
		return watcher.DaemonConfig{}, fmt.Errorf("[state] dir changed from %s to %s: restart userdown-watchd to use it", r.cfg.State.Dir, cfg.State.Dir)
	}
	if !cfg.Events.Enabled {
		r.log.Warn("[events] enabled is now false: stop the daemon (systemctl stop userdown-watchd) to have it take effect; it keeps running meanwhile")
	}
	return r.load(cfg)
}

// step runs the pipeline once under the run lock and records the run.
// The error (unreadable state, such as a master that does not answer, or
// the lock not taken) makes the daemon retry with backoff. An item that
// failed (a mark-down job Ganeti failed) is not retried before the next
// rescan: retrying it every few seconds would only fill Ganeti's job
// queue with failed jobs.
func (r *runner) step(ctx context.Context, t watcher.Trigger) error {
	lock, err := r.src.Store.LockRun(ctx)
	if err != nil {
		return fmt.Errorf("take the run lock: %w", err)
	}
	defer lock.Unlock()
	rep, failed, err := watcher.Run(ctx, r.src, r.x, watcher.RunOptions{
		MarkDown: true,
		Destroy:  true,
		DestroyOptions: watcher.DestroyOptions{
			DumpDir: r.cfg.Crash.DumpDir, Keep: r.cfg.Crash.Keep, Now: time.Now, Log: r.log,
		},
		Source:  "userdown-watchd",
		Metrics: watcher.MetricsRecorder(r.cfg),
		Event:   t.Event,
	})

	st, _, lerr := r.src.Store.LoadDaemonStatus()
	if lerr != nil || st.PID != os.Getpid() {
		st = state.DaemonStatus{PID: os.Getpid(), Started: r.started}
	}
	now := time.Now()
	st.LastRun, st.LastTrigger, st.LastError = now, t.Why, ""
	switch {
	case err != nil:
		st.LastError = err.Error()
	case failed:
		st.LastError = "some items failed: see the log"
	}
	if what := acted(rep); what != "" {
		st.LastAction, st.LastActionWhat = now, what
		r.log.Info("acted", "trigger", t.Why, "what", what)
	} else {
		r.log.Debug("nothing to do", "trigger", t.Why, "events", t.Events)
	}
	if serr := r.src.Store.SaveDaemonStatus(st); serr != nil {
		r.log.Warn("daemon status not saved", "err", serr)
	}
	return err
}

// acted summarises what a run changed, or "".
func acted(rep watcher.Report) string {
	var marked, destroyed, started []string
	for _, j := range rep.Jobs {
		if j.Status == ganeti.JobSuccess {
			marked = append(marked, j.Instance)
		}
	}
	for _, a := range rep.Actions {
		if a.Destroyed {
			destroyed = append(destroyed, a.Name)
		}
	}
	for _, s := range rep.Starts {
		if s.Started {
			started = append(started, s.Instance)
		}
	}
	var parts []string
	for _, p := range []struct {
		verb  string
		names []string
	}{{"marked down", marked}, {"destroyed", destroyed}, {"started", started}} {
		if len(p.names) > 0 {
			parts = append(parts, p.verb+" "+strings.Join(p.names, ", "))
		}
	}
	return strings.Join(parts, "; ")
}
