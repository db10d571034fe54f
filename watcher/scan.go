// Package watcher is the pipeline every watcher run of a node goes
// through: sources (the Xen domains, the recorded intents and
// observations, and only when some domain is shut down, the cluster's view
// of this node's instances and their locks), the pure decisions of
// detect.Decide, then the actions (mark down, destroy, reap). It is a
// top-level package because userdown-detect, userdown-destroy and the
// event daemon all run this one pipeline.
//
// It is the imperative shell around the decision core: every source is an
// interface or a function, so tests give it fakes.
package watcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"ganeti-userdown/detect"
	"ganeti-userdown/internal/cli"
	"ganeti-userdown/internal/ganeti"
	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/xen"
)

// Lister lists the node's domains (satisfied by *xen.Client).
type Lister interface {
	List(ctx context.Context) ([]xen.Domain, error)
}

// Looker re-reads one domain by domid (satisfied by *xen.Client).
type Looker interface {
	Lookup(ctx context.Context, domid int) (xen.Domain, bool, error)
}

// Reader is what a run reads the node's domains with (satisfied by
// *xen.Client): the whole list for the scan, and one domain by domid for
// the re-check right before each mark-down.
type Reader interface {
	Lister
	Looker
}

// Sources are where a scan reads from.
type Sources struct {
	// Node is this node's Ganeti name.
	Node string
	// Flavour is the toolstack's flavour.
	Flavour xen.Flavour
	// Xen lists the domains, and MarkDown re-reads each domain through
	// it right before marking its instance down.
	Xen Reader
	// Cluster returns the Ganeti client; it is called only when some
	// domain is shut down, so a node whose domains all run makes no
	// request to the master (nor reads the credentials).
	Cluster func(ctx context.Context) (ganeti.Client, error)
	// UserShutdown reports whether the cluster's own user-shutdown
	// handling is on; called only with Cluster. nil means off.
	UserShutdown func() (bool, error)
	// Store holds intents and observations.
	Store *state.Store
	// DefaultPolicy, Settle and DumpCrashes come from the configuration.
	DefaultPolicy string
	Settle        time.Duration
	DumpCrashes   bool
	// Now is the clock.
	Now func() time.Time
	// Log receives warnings about problems that do not stop the scan.
	Log *slog.Logger
}

// Report is what a run saw and decided; `--json` prints it.
type Report struct {
	Node      string    `json:"node"`
	Toolstack string    `json:"toolstack"`
	Time      time.Time `json:"time"`
	// ClusterQueried says whether the master was asked (only when some
	// domain is shut down).
	ClusterQueried bool `json:"cluster_queried"`
	// ClusterUserShutdown: the cluster's own user-shutdown handling is on.
	ClusterUserShutdown bool              `json:"cluster_user_shutdown"`
	Domains             []detect.Decision `json:"domains"`
	// MarkDown names the instances to mark down, sorted.
	MarkDown []string `json:"mark_down"`
	// Problems are the warnings of the run (corrupt intent files, ...).
	Problems []string `json:"problems,omitempty"`
	// Jobs are the mark-down jobs (userdown-detect --mark-down).
	Jobs []JobResult `json:"jobs,omitempty"`
	// Actions are the destructions (userdown-destroy).
	Actions []ActionResult `json:"actions,omitempty"`
	// Starts are the crashed instances started again after their
	// destruction (StartCrashed).
	Starts []StartResult `json:"starts,omitempty"`
	// SpentIntents say which hook intents outlived their Ganeti job (a
	// real run removes them, Record).
	SpentIntents []string `json:"spent_intents,omitempty"`
}

// JobResult is the outcome of marking one instance down.
type JobResult struct {
	Instance string `json:"instance"`
	JobID    int64  `json:"job_id,omitempty"`
	// Status is the job's final status ("success", "error", ...), or
	// "skipped" (not submitted: the re-check right before it found the
	// domain or the intents changed), "deferred" (submitted, but it waited
	// for another job holding the instance and was cancelled before it
	// ran), "refused" (the instance-stop pre hook's stop guard aborted
	// it: the domain runs again), "gone" or "not submitted".
	Status string `json:"status"`
	// Why says why a mark-down was skipped, deferred or refused.
	Why   string `json:"why,omitempty"`
	Error string `json:"error,omitempty"`
	// Failed: this item makes the run exit 1.
	Failed bool `json:"failed"`
	// Finished is when the job ended (or the item was given up).
	Finished time.Time `json:"finished,omitzero"`
}

// ActionResult is the outcome of destroying one domain.
type ActionResult struct {
	Name      string   `json:"name"`
	DomID     int      `json:"domid"`
	UUID      string   `json:"uuid,omitempty"`
	Destroyed bool     `json:"destroyed"`
	DryRun    bool     `json:"dry_run,omitempty"`
	Skipped   string   `json:"skipped,omitempty"`
	Dump      string   `json:"dump,omitempty"`
	Pruned    []string `json:"pruned_dumps,omitempty"`
	Error     string   `json:"error,omitempty"`
	Failed    bool     `json:"failed"`
}

// UnreadableError says Xen's or the cluster's state could not be read or
// parsed: nothing was decided and nothing may change (exit 3).
type UnreadableError struct {
	What string
	Err  error
}

// Error names what could not be read and why.
func (e *UnreadableError) Error() string { return e.What + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *UnreadableError) Unwrap() error { return e.Err }

// ClientError says the cluster client could not be set up from the
// configuration (exit 2).
type ClientError struct{ Err error }

// Error says the cluster client could not be set up, and why.
func (e *ClientError) Error() string { return "cluster client: " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *ClientError) Unwrap() error { return e.Err }

// Result is a finished scan: the report, the client when the cluster
// was queried (for marking down without building another), and the
// observations a real run saves (Record).
type Result struct {
	Report Report
	Client ganeti.Client
	// Observations are the observations after this scan; Changed says
	// they differ from the stored ones.
	Observations state.Observations
	Changed      bool
	// Spent are the hook intents their jobs left behind, which Record
	// removes (detect.Spent).
	Spent []state.Intent
}

// Node reads the node's state and decides. The error is an
// *UnreadableError or a *ClientError; then nothing was decided. It only
// reads: a dry run or a plain listing changes nothing; a real run then
// calls Record.
func Node(ctx context.Context, s Sources) (Result, error) {
	now := s.Now()
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rep := Report{Node: s.Node, Toolstack: string(s.Flavour), Time: now}
	problem := func(err error) {
		log.Warn(err.Error())
		rep.Problems = append(rep.Problems, err.Error())
	}

	domains, err := s.Xen.List(ctx)
	if err != nil {
		return Result{}, &UnreadableError{What: "list Xen domains", Err: err}
	}

	// Intents both forbid marking down and allow destroying: from a
	// state dir others may write in, none can be trusted.
	if err := s.Store.Verify(); err != nil {
		return Result{}, &UnreadableError{What: "read the state dir", Err: err}
	}
	intents, intentProblems := s.Store.Intents(now)
	for _, p := range intentProblems {
		problem(p)
	}
	// A problem with the stored observations (corrupt, dated in the
	// future) is fixed by the next save.
	prev, obsProblems := s.Store.LoadObservations(now)
	for _, p := range obsProblems {
		problem(p)
	}
	obs := state.Observe(prev, domains, now)

	in := detect.Input{
		Node: s.Node, Flavour: s.Flavour, Domains: domains,
		Intents: intents, UnreadableIntents: state.Unreadable(intentProblems), Observations: obs,
		DefaultPolicy: s.DefaultPolicy, Settle: s.Settle, DumpCrashes: s.DumpCrashes,
		Now: now,
	}
	// Hook intents whose job may have ended without its post hook: the
	// locks of their instances tell (detect.Spent).
	spentCands := detect.SpentCandidates(intents, domains, now)
	var spent []state.Intent
	keepSpent := func(what string, err error) {
		problem(fmt.Errorf("intents that may have outlived their job kept: %s: %w", what, err))
	}
	var client ganeti.Client
	if detect.NeedsCluster(domains) {
		client, err = s.Cluster(ctx)
		if err != nil {
			return Result{}, &ClientError{Err: err}
		}
		insts, err := client.Instances(ctx, s.Node)
		var badNames *ganeti.BadNamesError
		if errors.As(err, &badNames) {
			// Left out: their domains read as not-ganeti, never touched.
			problem(err)
			err = nil
		}
		if err != nil {
			return Result{}, &UnreadableError{What: "query the instances of " + s.Node, Err: err}
		}
		in.Queried, in.Instances = true, insts
		rep.ClusterQueried = true
		if s.UserShutdown != nil {
			on, err := s.UserShutdown()
			if err != nil {
				problem(fmt.Errorf("cluster user-shutdown setting unknown, taken as off: %w", err))
			}
			in.UserShutdown = on && err == nil
		}
		rep.ClusterUserShutdown = in.UserShutdown
		// Locks matter only for the instances a decision would act on,
		// and for those with an intent that may be spent.
		acting := detect.LockCandidates(detect.Decide(in))
		if cands := union(acting, spentCands); len(cands) > 0 {
			locked, err := client.Locked(ctx, cands)
			switch {
			case err != nil && len(acting) > 0:
				return Result{}, &UnreadableError{What: "query the instance locks", Err: err}
			case err != nil:
				keepSpent("query the instance locks", err)
			default:
				in.Locked = locked
				spent = detect.Spent(intents, domains, locked, now)
			}
		}
	} else if len(spentCands) > 0 && s.Cluster != nil {
		// Every domain runs: only the spent intents need the cluster,
		// and a failure to ask it costs nothing but their removal.
		if c, err := s.Cluster(ctx); err != nil {
			keepSpent("cluster client", err)
		} else if locked, err := c.Locked(ctx, spentCands); err != nil {
			keepSpent("query the instance locks", err)
		} else {
			spent = detect.Spent(intents, domains, locked, now)
		}
	}
	for _, it := range spent {
		rep.SpentIntents = append(rep.SpentIntents, detect.SpentWhy(it))
	}
	rep.Domains = detect.Decide(in)
	rep.MarkDown = detect.ToMarkDown(rep.Domains)
	if rep.MarkDown == nil {
		rep.MarkDown = []string{}
	}
	return Result{Report: rep, Client: client, Observations: obs, Changed: len(obsProblems) > 0 || !prev.Same(obs), Spent: spent}, nil
}

// union returns the sorted names in a or b, once each.
func union(a, b []string) []string {
	out := append(append([]string(nil), a...), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// Record is what a real run writes after its scan, and nothing else
// does: the observations (when they changed) and the prune of expired
// intents. Dry runs and plain listings skip it. Problems are logged and
// added to the report; they never stop the run.
func Record(s Sources, res *Result) {
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var problems []error
	if res.Changed {
		if err := s.Store.SaveObservations(res.Observations); err != nil {
			problems = append(problems, err)
		}
	}
	problems = append(problems, s.Store.PruneIntents(res.Report.Time)...)
	if len(res.Spent) > 0 {
		problems = append(problems, s.Store.RemoveSpentIntents(res.Spent, res.Report.Time)...)
		for _, it := range res.Spent {
			log.Info("spent intent removed", "why", detect.SpentWhy(it))
		}
	}
	for _, p := range problems {
		log.Warn(p.Error())
		res.Report.Problems = append(res.Report.Problems, p.Error())
	}
}

// ExitCode maps a scan error to the binaries' exit codes:
// cli.ExitUnreadable when state was unreadable, cli.ExitUsage for a
// configuration problem.
func ExitCode(err error) int {
	var ce *ClientError
	if errors.As(err, &ce) {
		return cli.ExitUsage
	}
	return cli.ExitUnreadable
}
