package watcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"ganeti-userdown/destroy"
	"ganeti-userdown/detect"
	"ganeti-userdown/internal/ganeti"
	"ganeti-userdown/internal/state"
)

// MarkDownReason is the reason text recorded in Ganeti's job for marking
// the instance of decision d down.
func MarkDownReason(node string, d detect.Decision) string {
	return fmt.Sprintf("ganeti-userdown: %s was powered off from inside the guest (domain %d, state %s on %s)",
		d.Name, d.DomID, d.State, node)
}

// MarkDown marks down every instance the report (built by Node from s)
// says to, one after another: a failing instance does not stop the others. The results are
// appended to rep.Jobs; it returns whether any item failed.
//
// Right before submitting each mark-down it re-reads the intents, then the
// domain by domid, and skips the instance when the domain is gone, changed
// uuid or name, is no longer powered off, or an intent now covers it: the
// state the decision was taken on no longer holds (a Ganeti reboot that
// finished in between, a reaper that destroyed a host-initiated shutdown
// and cleared its intent). Intents are read first: whoever clears an
// intent does so after the domain was destroyed or started again, so
// either the intent or the change is seen.
//
// A mark-down whose job the instance-stop pre hook refused because the
// domain runs again (detect.GuardStop), a skipped mark-down, one deferred
// by the cluster client (ganeti.ErrJobDeferred: its job waited for
// another job and was cancelled) and an instance the cluster no longer
// knows are reported, not failed; the next run decides again.
func MarkDown(ctx context.Context, c ganeti.Client, s Sources, rep *Report) (failed bool) {
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, d := range rep.Domains {
		if d.Decision != detect.MarkDown {
			continue
		}
		res := JobResult{Instance: d.Name}
		skip, err := recheckMarkDown(ctx, s, d)
		switch {
		case err != nil:
			res.Status, res.Error, res.Failed = "not submitted", err.Error(), true
			failed = true
			log.Error("mark down not submitted: the domain could not be re-read", "instance", d.Name, "domid", d.DomID, "err", err)
			rep.Jobs = append(rep.Jobs, res)
			continue
		case skip != "":
			res.Status, res.Why = "skipped", skip
			log.Info("mark down skipped", "instance", d.Name, "domid", d.DomID, "why", skip)
			rep.Jobs = append(rep.Jobs, res)
			continue
		}
		// The start guard's record goes first: Ganeti may run a restart
		// queued behind this job the moment it ends, before the job's
		// end is seen here (design.md, "The start guard").
		// So does the stop guard's: the job may wait behind a reboot
		// that starts the domain again (design.md, "The stop guard").
		md := state.MarkDown{Instance: d.Name, DomID: d.DomID, UUID: d.UUID, State: d.State, Submitted: s.Now().UTC()}
		if err := s.Store.RecordMarkDown(md); err != nil {
			log.Warn("mark-down record not written: the start guard will not see this mark-down", "instance", d.Name, "err", err)
		}
		if err := s.Store.RecordMarkDownInFlight(md); err != nil {
			log.Warn("in-flight mark-down record not written: the stop guard will not see this mark-down", "instance", d.Name, "err", err)
		}
		req := ganeti.MarkDownRequest{Name: d.Name, Reason: MarkDownReason(rep.Node, d), UserSource: d.UserSource}
		job, err := c.MarkDown(ctx, req)
		res.JobID, res.Status, res.Error = job.ID, job.Status, job.Error
		// A job still unfinished when the wait ended may yet run: its
		// record stays, bounded by detect.MarkDownInFlightFor.
		if !errors.Is(err, ganeti.ErrJobUnfinished) {
			if cerr := s.Store.ClearMarkDownInFlight(d.Name); cerr != nil {
				log.Warn("in-flight mark-down record not removed", "instance", d.Name, "err", cerr)
			}
		}
		refused := RefusedByStopGuard(err)
		if err != nil && (job.ID == 0 || refused || errors.Is(err, ganeti.ErrJobDeferred) || errors.Is(err, ganeti.ErrInstanceGone)) {
			// Nothing was marked down: no start is to be refused for it.
			if cerr := s.Store.ClearMarkDown(d.Name); cerr != nil {
				log.Warn("mark-down record not removed", "instance", d.Name, "err", cerr)
			}
		}
		switch {
		case err == nil:
			log.Info("marked down", "instance", d.Name, "job", job.ID)
		case errors.Is(err, ganeti.ErrJobDeferred):
			res.Status, res.Why, res.Error = "deferred", err.Error(), ""
			log.Info("mark down deferred to the next run", "instance", d.Name, "job", job.ID, "why", err)
		case errors.Is(err, ganeti.ErrInstanceGone):
			res.Status, res.Error = "gone", err.Error()
			log.Info("instance no longer known to the cluster", "instance", d.Name)
		case refused:
			// Our own stop guard aborted the job: the domain runs again,
			// nothing was marked down, nothing is to be done.
			res.Status, res.Error = "refused", ""
			res.Why = fmt.Sprintf("mark-down refused by the instance-stop pre hook: %s was started again since its domain %d was powered off, and keeps running (job %d)", d.Name, d.DomID, job.ID)
			log.Info("mark down refused: the domain runs again", "instance", d.Name, "job", job.ID, "domid", d.DomID)
		default:
			res.Failed = true
			res.Error = err.Error()
			if res.Status == "" {
				res.Status = "not submitted"
			}
			failed = true
			log.Error("mark down failed", "instance", d.Name, "job", job.ID, "err", err)
		}
		res.Finished = s.Now()
		rep.Jobs = append(rep.Jobs, res)
	}
	return failed
}

// recheckMarkDown re-reads the intents and then d's domain, and returns
// why the mark-down must not be submitted, or "" (detect.MarkDownChanged).
func recheckMarkDown(ctx context.Context, s Sources, d detect.Decision) (string, error) {
	now := s.Now()
	intents, _ := s.Store.Intents(now) // unreadable files were reported by the scan
	got, ok, err := s.Xen.Lookup(ctx, d.DomID)
	if err != nil {
		return "", fmt.Errorf("re-read domain %d: %w", d.DomID, err)
	}
	return detect.MarkDownChanged(d, got, ok, intents, now), nil
}

// Toolstack is what destroying with dumps needs (satisfied by
// *xen.Client).
type Toolstack interface {
	destroy.Toolstack
	DumpCore(ctx context.Context, domid int, path string) error
}

// DestroyOptions configure Destroy.
type DestroyOptions struct {
	// DryRun reports what would be done and changes nothing.
	DryRun bool
	// DumpDir and Keep are [crash] dump_dir and keep.
	DumpDir string
	Keep    int
	// Now is the clock, for dump file names.
	Now func() time.Time
	Log *slog.Logger
}

// Destroy destroys the domains the report says to, each through
// destroy.Safely (re-read by domid, unchanged and dead, or skipped), after
// a core dump when the decision asks for one. Results are appended to
// rep.Actions; it returns whether any item failed.
func Destroy(ctx context.Context, x Toolstack, rep *Report, o DestroyOptions) (failed bool) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, d := range rep.Domains {
		if d.Decision != detect.Destroy {
			continue
		}
		res := ActionResult{Name: d.Name, DomID: d.DomID, UUID: d.UUID, DryRun: o.DryRun}
		want := d.Domain()
		if o.DryRun {
			// Say what the re-read would say, without destroying.
			got, ok, err := x.Lookup(ctx, d.DomID)
			switch {
			case err != nil:
				res.Error, res.Failed, failed = err.Error(), true, true
			default:
				res.Skipped = destroy.Refuse(want, got, ok)
			}
			if d.DumpCore && o.DumpDir != "" && res.Skipped == "" && res.Error == "" {
				res.Dump = destroy.DumpPath(o.DumpDir, d.Name, o.Now())
			}
			rep.Actions = append(rep.Actions, res)
			continue
		}
		if d.DumpCore && o.DumpDir != "" {
			path, pruned, err := dump(ctx, x, d, o)
			res.Dump, res.Pruned = path, pruned
			if err != nil {
				// The dump is evidence, but a crashed instance left down
				// is worse: report the failure and destroy anyway.
				res.Error, res.Failed, failed = err.Error(), true, true
				log.Error("core dump failed", "domain", d.Name, "domid", d.DomID, "err", err)
			}
		}
		r, err := destroy.Safely(ctx, x, want)
		res.Destroyed, res.Skipped = r.Destroyed, r.Skipped
		switch {
		case err != nil:
			if res.Error != "" {
				res.Error += "; "
			}
			res.Error += err.Error()
			res.Failed, failed = true, true
			log.Error("destroy failed", "domain", d.Name, "domid", d.DomID, "err", err)
		case r.Destroyed:
			log.Info("destroyed", "domain", d.Name, "domid", d.DomID, "why", d.Why)
		default:
			log.Info("not destroyed", "domain", d.Name, "domid", d.DomID, "skipped", r.Skipped)
		}
		rep.Actions = append(rep.Actions, res)
	}
	return failed
}

// dump writes the core of d's domain into the dump dir, then prunes the
// instance's dumps beyond the newest Keep (destroy.DumpCore), if the
// domain is still the one the decision was about.
func dump(ctx context.Context, x Toolstack, d detect.Decision, o DestroyOptions) (string, []string, error) {
	got, ok, err := x.Lookup(ctx, d.DomID)
	if err != nil {
		return "", nil, err
	}
	if why := destroy.Refuse(d.Domain(), got, ok); why != "" {
		return "", nil, nil
	}
	return destroy.DumpCore(ctx, x, d.Domain(), o.DumpDir, o.Keep, o.Now())
}

// RefusedByStopGuard reports a mark-down whose job ganeti-userdown's own
// instance-stop pre hook aborted, from the error the backend (RAPI or
// CLI) returned for it: the domain runs again and nothing was marked
// down (design.md, "The stop guard").
func RefusedByStopGuard(err error) bool {
	return errors.Is(err, ganeti.ErrJobFailed) && strings.Contains(err.Error(), detect.StopRefused)
}
