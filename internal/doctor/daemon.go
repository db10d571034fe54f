package doctor

import (
	"fmt"
	"time"

	"ganeti-userdown/internal/state"
)

// DaemonFacts is what gathering found about userdown-watchd.
type DaemonFacts struct {
	// Running: a process holds the daemon's lock in the state dir;
	// RunningErr says why that could not be told.
	Running    bool
	RunningErr string
	// Status is the daemon's status file; StatusFound is false when no
	// daemon ever ran here.
	Status      state.DaemonStatus
	StatusFound bool
	StatusErr   string
	// Now is when the facts were gathered.
	Now time.Time
}

// checkDaemon reports whether the event daemon runs and when it last ran
// and acted. A daemon that does not run is a warning, not a failure: the
// watcher hook alone protects the node, only minutes later.
func checkDaemon(f Facts) Result {
	d := f.Daemon
	ev := f.Config.Events
	start := "systemctl start userdown-watchd (the watcher hook also starts it at its next run); journalctl -u userdown-watchd says why it stopped"
	switch {
	case !ev.Enabled:
		return Result{"daemon", OK, "userdown-watchd disabled ([events] enabled = false): poweroffs and crashes are handled at the watcher's runs only", ""}
	case d.RunningErr != "":
		return Result{"daemon", Warn, "cannot tell whether userdown-watchd runs: " + d.RunningErr, "check [state] dir"}
	case !d.Running:
		msg := "userdown-watchd does not run: poweroffs and crashes wait for the next watcher run"
		if d.StatusFound {
			msg += fmt.Sprintf(" (it last ran %s)", ago(d.Now, d.Status.LastRun))
		}
		return Result{"daemon", Warn, msg, start}
	case d.StatusErr != "":
		return Result{"daemon", Warn, "userdown-watchd runs, but its status is unreadable: " + d.StatusErr, "it rewrites the file at its next run (within [events] rescan)"}
	case !d.StatusFound:
		return Result{"daemon", OK, "userdown-watchd runs; it has not finished a run yet", ""}
	}
	st := d.Status
	acted := "has not acted yet"
	if !st.LastAction.IsZero() {
		acted = fmt.Sprintf("last acted %s: %s", ago(d.Now, st.LastAction), st.LastActionWhat)
	}
	msg := fmt.Sprintf("userdown-watchd runs (pid %d, since %s); last run %s (%s); %s",
		st.PID, st.Started.UTC().Format(time.RFC3339), ago(d.Now, st.LastRun), st.LastTrigger, acted)
	// A run starts at least every rescan; one may take up to 5 minutes.
	if late := ev.Rescan.Duration*2 + 5*time.Minute; d.Now.Sub(st.LastRun) > late {
		return Result{"daemon", Warn, msg + fmt.Sprintf(": no run for more than %s, it may hang", late.Round(time.Second)),
			"systemctl restart userdown-watchd"}
	}
	if st.LastError != "" {
		return Result{"daemon", Warn, msg + "; its last run failed: " + st.LastError,
			"see journalctl -u userdown-watchd; it retries with backoff"}
	}
	return Result{"daemon", OK, msg, ""}
}

// ago says how long before now t was.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return now.Sub(t).Round(time.Second).String() + " ago"
}
