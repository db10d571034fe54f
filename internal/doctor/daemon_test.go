package doctor

import (
	"strings"
	"testing"
	"time"

	"ganeti-userdown/internal/state"
)

var daemonNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// runningDaemon is a daemon that runs and acted a minute ago.
func runningDaemon() DaemonFacts {
	return DaemonFacts{Running: true, StatusFound: true, Now: daemonNow, Status: state.DaemonStatus{
		PID: 812, Started: daemonNow.Add(-24 * time.Hour), LastRun: daemonNow.Add(-20 * time.Second), LastTrigger: "rescan",
		LastAction: daemonNow.Add(-time.Minute), LastActionWhat: "marked down web1.example.com",
	}}
}

// Reference: doc/design.md, "Event daemon": doctor reports whether the
// daemon runs and when it last acted.
func TestDaemonCheck(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Facts)
		status Status
		says   []string
	}{
		{"runs and acted", func(*Facts) {}, OK, []string{"pid 812", "last run 20s ago (rescan)", "last acted 1m0s ago: marked down web1.example.com"}},
		{"runs, never acted", func(f *Facts) { f.Daemon.Status.LastAction = time.Time{} }, OK, []string{"has not acted yet"}},
		{"just started", func(f *Facts) { f.Daemon.StatusFound, f.Daemon.Status = false, state.DaemonStatus{} }, OK, []string{"not finished a run yet"}},
		{"not running", func(f *Facts) { f.Daemon.Running = false }, Warn, []string{"does not run", "it last ran 20s ago"}},
		{"never ran", func(f *Facts) { f.Daemon = DaemonFacts{Now: daemonNow} }, Warn, []string{"does not run"}},
		{"disabled", func(f *Facts) { f.Config.Events.Enabled = false; f.Daemon = DaemonFacts{} }, OK, []string{"disabled"}},
		{"last run failed", func(f *Facts) { f.Daemon.Status.LastError = "query the instances: 503" }, Warn, []string{"last run failed: query the instances: 503"}},
		{"hangs", func(f *Facts) { f.Daemon.Status.LastRun = daemonNow.Add(-time.Hour) }, Warn, []string{"may hang"}},
		{"lock unreadable", func(f *Facts) { f.Daemon = DaemonFacts{RunningErr: "permission denied"} }, Warn, []string{"permission denied"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := healthy()
			tc.change(&f)
			r := Check(f)
			var got Result
			for _, c := range r.Checks {
				if c.Check == "daemon" {
					got = c
				}
			}
			if got.Status != tc.status {
				t.Errorf("status %s, want %s: %s", got.Status, tc.status, got.Message)
			}
			for _, s := range tc.says {
				if !strings.Contains(got.Message, s) {
					t.Errorf("message %q does not say %q", got.Message, s)
				}
			}
			if tc.status != OK && got.Fix == "" {
				t.Errorf("%s without a fix", tc.status)
			}
			if !r.OK {
				t.Errorf("the daemon's state fails the node:\n%s", r.Text())
			}
		})
	}
}
