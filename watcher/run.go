package watcher

import (
	"context"
	"errors"
	"time"

	"ganeti-userdown/internal/metrics"
)

// RunOptions select the steps of one run and configure them.
type RunOptions struct {
	// MarkDown marks down the user shutdowns (userdown-detect
	// --mark-down, the daemon).
	MarkDown bool
	// Destroy destroys the domains that may go and then starts crashed
	// instances Ganeti wants up again (userdown-destroy, the daemon).
	Destroy        bool
	DestroyOptions DestroyOptions
	// Source names the program, for the metrics.
	Source string
	// Metrics, when set, receives the run (dry runs are not counted).
	// The caller holds the run lock, under which the totals are read and
	// written back.
	Metrics *metrics.Recorder
	// Event is when the event that led to this run arrived; zero when the
	// run was not triggered by an event (a scan at start, a rescan, the
	// watcher hook). It gives the event to mark-down delays.
	Event time.Time
}

// Run is one pass of the watcher pipeline over fresh state: Node (and,
// for a run that acts, Record), then MarkDown, then Destroy and
// StartCrashed, as o selects. The caller holds
// the run lock. The error is Node's (*UnreadableError or *ClientError):
// then nothing was decided or changed. failed reports that some item
// failed (exit 1).
func Run(ctx context.Context, s Sources, x Toolstack, o RunOptions) (rep Report, failed bool, err error) {
	start := s.Now()
	res, err := Node(ctx, s)
	if err != nil {
		o.record(s, Report{}, err, start)
		return Report{}, false, err
	}
	if o.MarkDown || o.Destroy && !o.DestroyOptions.DryRun {
		// A real run: it records its observations and prunes intents.
		Record(s, &res)
	}
	rep = res.Report
	if o.MarkDown && len(rep.MarkDown) > 0 {
		failed = MarkDown(ctx, res.Client, s, &rep) || failed
	}
	if o.Destroy {
		failed = Destroy(ctx, x, &rep, o.DestroyOptions) || failed
		if !o.DestroyOptions.DryRun {
			failed = StartCrashed(ctx, res.Client, s, &rep) || failed
		}
	}
	o.record(s, rep, nil, start)
	return rep, failed, nil
}

// record counts the run in the metrics, logging (not failing) when they
// cannot be written: metrics never stop a run.
func (o RunOptions) record(s Sources, rep Report, err error, start time.Time) {
	if o.Metrics == nil || o.DestroyOptions.DryRun {
		return
	}
	r := RunMetrics(rep, err, o.Event)
	r.Source, r.Start, r.Duration = o.Source, start, s.Now().Sub(start)
	if werr := o.Metrics.Record(r); werr != nil && s.Log != nil {
		s.Log.Warn("metrics not recorded", "err", werr)
	}
}

// RunMetrics counts what a run decided and did: decisions by kind,
// successful mark-downs, destructions and restarts, failures by kind, and
// with event set, the delay from the event to each finished mark-down.
// A run that stopped at err counts one "config" or "unreadable" failure.
func RunMetrics(rep Report, err error, event time.Time) metrics.Run {
	r := metrics.Run{Decisions: map[string]int{}, Failures: map[string]int{}}
	if err != nil {
		var ce *ClientError
		if errors.As(err, &ce) {
			r.Failures["config"]++
		} else {
			r.Failures["unreadable"]++
		}
		return r
	}
	for _, d := range rep.Domains {
		r.Decisions[string(d.Decision)]++
	}
	for _, j := range rep.Jobs {
		switch {
		case j.Failed:
			r.Failures["mark-down"]++
		case j.Status == "success":
			r.MarkDowns++
			if !event.IsZero() && !j.Finished.IsZero() {
				r.Delays = append(r.Delays, j.Finished.Sub(event))
			}
		}
	}
	for _, a := range rep.Actions {
		switch {
		case a.Destroyed:
			r.Destroys++
			if a.Failed {
				r.Failures["dump"]++
			}
		case a.Failed:
			r.Failures["destroy"]++
		}
	}
	for _, st := range rep.Starts {
		switch {
		case st.Started:
			r.CrashRestarts++
		case st.Failed:
			r.Failures["start"]++
		}
	}
	return r
}
