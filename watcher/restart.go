package watcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"ganeti-userdown/detect"
	"ganeti-userdown/internal/ganeti"
	"ganeti-userdown/internal/xen"
)

// StartResult is the outcome of starting one crashed instance again.
type StartResult struct {
	Instance string `json:"instance"`
	DomID    int    `json:"domid"`
	JobID    int64  `json:"job_id,omitempty"`
	// Status is the start job's final status, "skipped" (the rule said
	// no; Why says why) or "not submitted".
	Status  string `json:"status"`
	Started bool   `json:"started"`
	Why     string `json:"why,omitempty"`
	Error   string `json:"error,omitempty"`
	Failed  bool   `json:"failed"`
}

// StartCrashed asks Ganeti to start again the instances whose crashed (or
// watchdog-stopped) domains rep.Actions destroyed, when
// detect.StartAfterDestroy allows it over a fresh view: the instances and
// their locks are queried again after the destruction, and the intents
// re-read, so that an operator's stop in between is never undone. The
// results are appended to rep.Starts; it returns whether any item failed.
// Without a crash destroyed it makes no request.
func StartCrashed(ctx context.Context, c ganeti.Client, s Sources, rep *Report) (failed bool) {
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var cands []detect.Decision
	for _, a := range rep.Actions {
		if !a.Destroyed || a.DryRun {
			continue
		}
		for _, d := range rep.Domains {
			if d.DomID == a.DomID && d.Name == a.Name && d.Decision == detect.Destroy &&
				(d.Reason == xen.ReasonCrash || d.Reason == xen.ReasonWatchdog) && d.AdminState == ganeti.AdminUp {
				cands = append(cands, d)
			}
		}
	}
	if len(cands) == 0 {
		return false
	}
	add := func(r StartResult) { rep.Starts = append(rep.Starts, r) }
	if c == nil {
		for _, d := range cands {
			add(StartResult{Instance: d.Name, DomID: d.DomID, Status: "skipped", Why: "the cluster was not queried: Ganeti's watcher starts it"})
		}
		return false
	}
	notSubmitted := func(d detect.Decision, err error) {
		add(StartResult{Instance: d.Name, DomID: d.DomID, Status: "not submitted", Error: err.Error(), Failed: true})
		log.Error("crashed instance not started: the cluster could not be asked; Ganeti's watcher starts it", "instance", d.Name, "err", err)
	}
	insts, err := c.Instances(ctx, s.Node)
	var locked map[string]bool
	if err == nil {
		names := make([]string, len(cands))
		for i, d := range cands {
			names[i] = d.Name
		}
		locked, err = c.Locked(ctx, names)
	}
	if err != nil {
		for _, d := range cands {
			notSubmitted(d, fmt.Errorf("re-read the cluster after destroying: %w", err))
		}
		return true
	}
	now := s.Now()
	intents, _ := s.Store.Intents(now)
	for _, d := range cands {
		check := detect.StartCheck{Locked: locked[d.Name], Intents: intents, Node: s.Node, DefaultPolicy: s.DefaultPolicy, Now: now}
		for _, in := range insts {
			if in.Name == d.Name {
				check.Instance, check.Found = in, true
			}
		}
		start, why := detect.StartAfterDestroy(d, check)
		if !start {
			add(StartResult{Instance: d.Name, DomID: d.DomID, Status: "skipped", Why: why})
			log.Info("crashed instance not started", "instance", d.Name, "why", why)
			continue
		}
		job, err := c.StartUp(ctx, ganeti.StartUpRequest{Name: d.Name, Reason: detect.StartReason(s.Node, d)})
		res := StartResult{Instance: d.Name, DomID: d.DomID, JobID: job.ID, Status: job.Status, Why: why}
		switch {
		case errors.Is(err, ganeti.ErrJobDeferred), errors.Is(err, ganeti.ErrInstanceGone):
			// Another job holds it (an operator's shutdown, say), or
			// it is gone: not ours to insist.
			res.Status, res.Why = "deferred", err.Error()
			log.Info("crashed instance not started", "instance", d.Name, "why", err)
		case err != nil:
			res.Error, res.Failed, failed = err.Error(), true, true
			if res.Status == "" {
				res.Status = "not submitted"
			}
			log.Error("starting the crashed instance failed; Ganeti's watcher starts it", "instance", d.Name, "job", job.ID, "err", err)
		default:
			res.Started = true
			log.Info("crashed instance started again", "instance", d.Name, "job", job.ID)
		}
		add(res)
	}
	return failed
}
