package hooks

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"ganeti-userdown/destroy"
	"ganeti-userdown/detect"
	"ganeti-userdown/hvconfig"
	"ganeti-userdown/internal/config"
	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/xen"
)

// Toolstack is what the hook actions need from Xen (satisfied by
// *xen.Client).
type Toolstack interface {
	destroy.Toolstack
	List(ctx context.Context) ([]xen.Domain, error)
	Actions(ctx context.Context, dom string) (map[string]string, error)
	DumpCore(ctx context.Context, domid int, path string) error
}

// IntentStore is what the hook actions need from the state directory
// (satisfied by *state.Store).
type IntentStore interface {
	RecordIntent(in state.Intent) error
	ClearIntents(instance, op string) error
	Intents(now time.Time) (live []state.Intent, problems []error)
}

// StartRecords is what the start guard reads and uses up in the state
// directory (satisfied by *state.Store).
type StartRecords interface {
	MarkDownRecord(instance string) (state.MarkDown, bool, error)
	ClearMarkDown(instance string) error
	StartAllowanceOf(instance string) (state.StartAllowance, bool, error)
	ClearStartAllowance(instance string) error
	// MarkDownInFlight is read by the stop guard.
	MarkDownInFlight(instance string) (state.MarkDown, bool, error)
}

// Runner carries out a Decision on this node.
type Runner struct {
	Xen     Toolstack
	Intents IntentStore
	// Records holds the start and stop guards' records; when nil the
	// guards let every start and shutdown through.
	Records StartRecords
	// DefaultPolicy is [policy] default, for the start guard.
	DefaultPolicy string
	// ConfigDir holds the stored domain configs, one file per instance.
	ConfigDir string
	// Actions are the domain actions to write and verify.
	Actions []config.KeyValue
	// IntentTTL is how long a recorded intent stays live.
	IntentTTL time.Duration
	// DumpDir, when set, receives a core dump of a crashed domain before
	// a hook destroys it; Keep dumps are kept per instance ([crash] keep,
	// default 3).
	DumpDir string
	Keep    int
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Log receives the details behind the outcomes: domains left alone,
	// failed dumps, intent files that could not be read (slog.Default
	// when nil).
	Log *slog.Logger
}

// Outcome is what one action did.
type Outcome struct {
	Action Action `json:"action"`
	// Done says what happened, in one line.
	Done string `json:"done,omitempty"`
	// Problem is a finding the operator must see (a domain running
	// without preserve), in one line.
	Problem string `json:"problem,omitempty"`
	// Refused is set when the start or stop guard refused the job: the
	// message for the operator. The actions after it were not run.
	Refused string `json:"refused,omitempty"`
	// Verdict is the start guard's verdict, for GuardStart.
	Verdict *detect.StartVerdict `json:"verdict,omitempty"`
	// Stop is the stop guard's verdict, for GuardStop.
	Stop *detect.StopVerdict `json:"stop_verdict,omitempty"`
	// Err is set when the action failed.
	Err error `json:"-"`
	// Error is Err's text, for JSON.
	Error string `json:"error,omitempty"`
}

// Failed reports whether the outcome is a failure, a problem or a
// refusal.
func (o Outcome) Failed() bool { return o.Err != nil || o.Problem != "" || o.Refused != "" }

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// keep is [crash] keep, 3 when unset.
func (r *Runner) keep() int {
	if r.Keep > 0 {
		return r.Keep
	}
	return 3
}

func (r *Runner) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.Default()
}

// Run performs every action of d in order and reports each (the caller
// prints or logs the outcomes; Run logs only the details behind them).
// One failing action does not stop the others; a refused start does:
// nothing after it runs.
func (r *Runner) Run(ctx context.Context, d Decision) []Outcome {
	out := make([]Outcome, 0, len(d.Actions))
	var rs runState
	for _, a := range d.Actions {
		o := r.do(ctx, a, &rs)
		o.Action = a
		if o.Err != nil {
			o.Error = o.Err.Error()
		}
		out = append(out, o)
		if o.Refused != "" {
			break
		}
	}
	return out
}

// Refused returns the refusal message of outcomes, or "".
func Refused(outcomes []Outcome) string {
	for _, o := range outcomes {
		if o.Refused != "" {
			return o.Refused
		}
	}
	return ""
}

// runState is what one action of a run leaves for the next: this node's
// domains as first listed, so that one hook run lists them once, and the
// start's DestroyDead destroys only a domain the start guard saw dead (a
// domain its user powers off while the start's pre hook runs is kept:
// the start then finds it in the way). A listing that failed is not
// kept: the next action that needs one tries again.
type runState struct {
	domains []xen.Domain
	listed  bool
}

// list returns the run's listing of this node's domains, listing them
// the first time.
func (rs *runState) list(ctx context.Context, x Toolstack) ([]xen.Domain, error) {
	if rs.listed {
		return rs.domains, nil
	}
	doms, err := x.List(ctx)
	if err != nil {
		return nil, err
	}
	rs.domains, rs.listed = doms, true
	return doms, nil
}

func (r *Runner) do(ctx context.Context, a Action, rs *runState) Outcome {
	// Plan validated the name already; check again since a Decision
	// can be built by hand.
	if err := ValidName(a.Instance); err != nil {
		return Outcome{Err: fmt.Errorf("instance name: %w", err)}
	}
	switch a.Kind {
	case GuardStart:
		return r.guardStart(ctx, a, rs)
	case GuardStop:
		return r.guardStop(ctx, a, rs)
	case DestroyDead:
		return r.destroyDead(ctx, a.Instance, rs)
	case RewriteConfig:
		return r.rewrite(a.Instance, a.Optional)
	case VerifyActions:
		return r.verify(ctx, a.Instance)
	case RecordIntent:
		now := r.now()
		in := NewIntent(a.Instance, a.Op, now, r.IntentTTL)
		scope := "any domain of it"
		if doms, err := rs.list(ctx, r.Xen); err != nil {
			// Unscoped, it covers every domain of the instance until
			// it is cleared or expires: never a mark-down of what
			// Ganeti is shutting down.
			r.log().Warn("domains not listed: the intent covers any domain of the instance", "instance", a.Instance, "err", err)
		} else {
			in = ScopeIntent(in, doms)
			scope = fmt.Sprintf("domids %v", in.DomIDs)
		}
		if err := r.Intents.RecordIntent(in); err != nil {
			return Outcome{Err: err}
		}
		return Outcome{Done: fmt.Sprintf("recorded a %s intent for %s (%s) until %s", a.Op, a.Instance, scope, in.Expires.Format(time.RFC3339))}
	case ClearIntents:
		if err := r.Intents.ClearIntents(a.Instance, a.Op); err != nil {
			return Outcome{Err: err}
		}
		return Outcome{Done: fmt.Sprintf("cleared the %s intents of %s", a.Op, a.Instance)}
	case FreeMemory:
		return r.freeMemory(ctx, a.Instance)
	}
	return Outcome{Err: fmt.Errorf("unknown action %q", a.Kind)}
}

// guardStart reads what detect.GuardStart decides on and carries out its
// verdict. Whatever it cannot read it logs and goes without: a guard that
// cannot see a user's poweroff lets the start through, as every other
// pre-hook path does (design.md, "The start guard").
func (r *Runner) guardStart(ctx context.Context, a Action, rs *runState) Outcome {
	if a.Start == nil || r.Records == nil {
		return Outcome{Done: "start guard not set up: start let through"}
	}
	now := r.now()
	in := detect.StartInput{Request: *a.Start, DefaultPolicy: r.DefaultPolicy, Now: now}
	doms, err := rs.list(ctx, r.Xen)
	if err != nil {
		r.log().Warn("start guard: domains not listed; judging on the records alone", "instance", a.Instance, "err", err)
	}
	in.Domains = doms
	intents, problems := r.Intents.Intents(now)
	for _, p := range problems {
		r.log().Warn("intent store", "problem", p)
	}
	in.Intents = intents
	if md, ok, err := r.Records.MarkDownRecord(a.Instance); err != nil {
		r.log().Warn("start guard: mark-down record unreadable, ignored", "instance", a.Instance, "err", err)
	} else if ok {
		in.MarkDown = &md
	}
	if al, ok, err := r.Records.StartAllowanceOf(a.Instance); err != nil {
		r.log().Warn("start guard: start allowance unreadable, ignored", "instance", a.Instance, "err", err)
	} else if ok {
		in.Allowance = &al
	}
	v := detect.GuardStart(in)
	if v.ClearMarkDown {
		if err := r.Records.ClearMarkDown(a.Instance); err != nil {
			r.log().Warn("start guard: mark-down record not removed", "instance", a.Instance, "err", err)
		}
	}
	if v.ClearAllowance {
		if err := r.Records.ClearStartAllowance(a.Instance); err != nil {
			r.log().Warn("start guard: start allowance not removed", "instance", a.Instance, "err", err)
		}
	}
	o := Outcome{Verdict: &v}
	if v.Refuse {
		o.Refused = v.Message
		return o
	}
	o.Done = "start of " + a.Instance + " let through: " + v.Why
	return o
}

// guardStop reads what detect.GuardStop decides on and reports its
// verdict. Whatever it cannot read it logs and lets the shutdown through:
// an operator's stop is never blocked on an error (design.md, "The stop
// guard").
func (r *Runner) guardStop(ctx context.Context, a Action, rs *runState) Outcome {
	if r.Records == nil {
		return Outcome{Done: "stop guard not set up: shutdown let through"}
	}
	md, ok, err := r.Records.MarkDownInFlight(a.Instance)
	switch {
	case err != nil:
		r.log().Warn("stop guard: in-flight mark-down record unreadable; shutdown let through", "instance", a.Instance, "err", err)
		return Outcome{Done: "in-flight mark-down record unreadable: shutdown of " + a.Instance + " let through"}
	case !ok:
		return Outcome{Done: "shutdown of " + a.Instance + " let through: no mark-down by ganeti-userdown in flight"}
	}
	doms, err := rs.list(ctx, r.Xen)
	if err != nil {
		r.log().Warn("stop guard: domains not listed; shutdown let through", "instance", a.Instance, "err", err)
		return Outcome{Done: "domains not listed: shutdown of " + a.Instance + " let through"}
	}
	v := detect.GuardStop(detect.StopInput{Instance: a.Instance, Node: a.Node, Domains: doms, InFlight: &md, Now: r.now()})
	if v.Refuse {
		r.log().Warn("stop guard: shutdown refused", "instance", a.Instance, "why", v.Why)
		return Outcome{Refused: v.Message, Stop: &v}
	}
	return Outcome{Done: "shutdown of " + a.Instance + " let through: " + v.Why, Stop: &v}
}

// destroyDead destroys the preserved dead domains of instance, by domid,
// each re-checked right before (destroy.Safely). A crashed one is dumped
// first when a dump directory is configured. It considers the run's
// listing, so after the start guard only the domains the guard judged
// (destroy.Safely then skips any whose state changed since).
func (r *Runner) destroyDead(ctx context.Context, instance string, rs *runState) Outcome {
	doms, err := rs.list(ctx, r.Xen)
	if err != nil {
		return Outcome{Err: fmt.Errorf("list domains: %w", err)}
	}
	dead := detect.DeadDomainsOf(doms, instance)
	if len(dead) == 0 {
		return Outcome{Done: fmt.Sprintf("no preserved dead domain of %s", instance)}
	}
	var done []string
	var errs []error
	for _, d := range dead {
		msg, err := r.destroyOne(ctx, d, "the administrator is starting "+instance)
		if err != nil {
			errs = append(errs, err)
		}
		if msg != "" {
			done = append(done, msg)
		}
	}
	return Outcome{Done: strings.Join(done, "; "), Err: errors.Join(errs...)}
}

// destroyOne dumps a crashed domain when configured, then destroys it
// safely, and says what happened.
func (r *Runner) destroyOne(ctx context.Context, d xen.Domain, why string) (string, error) {
	var notes []string
	if d.State.Crashed() && r.DumpDir != "" {
		path, _, err := destroy.DumpCore(ctx, r.Xen, d, r.DumpDir, r.keep(), r.now())
		switch {
		case path == "":
			// A lost dump must not block the start: say so and go on.
			r.log().Warn("core dump failed; destroying anyway", "domain", d.Name, "domid", d.ID, "err", err)
			notes = append(notes, "core dump failed")
		case err != nil:
			r.log().Warn("old core dumps not pruned", "domain", d.Name, "err", err)
			notes = append(notes, "core dumped to "+path)
		default:
			notes = append(notes, "core dumped to "+path)
		}
	}
	res, err := destroy.Safely(ctx, r.Xen, d)
	if err != nil {
		return "", err
	}
	if !res.Destroyed {
		return fmt.Sprintf("left domain %d (%s): %s", d.ID, d.Name, res.Skipped), nil
	}
	s := fmt.Sprintf("destroyed domain %d (%s, %s): %s", d.ID, d.Name, d.State.Letters, why)
	if len(notes) > 0 {
		s += " (" + strings.Join(notes, ", ") + ")"
	}
	return s, nil
}

// rewrite sets the configured actions in <config_dir>/<instance>.
func (r *Runner) rewrite(instance string, optional bool) Outcome {
	path := filepath.Join(r.ConfigDir, instance)
	changed, err := hvconfig.RewriteFile(path, r.Actions)
	switch {
	case err != nil && optional && errors.Is(err, fs.ErrNotExist):
		return Outcome{Done: "no stored config " + path + " on this node"}
	case err != nil:
		return Outcome{Err: err} // names the file already
	case changed:
		return Outcome{Done: "rewrote " + path + " with " + formatActions(r.Actions)}
	}
	return Outcome{Done: path + " already has " + formatActions(r.Actions)}
}

// verify checks the live domain's actions.
func (r *Runner) verify(ctx context.Context, instance string) Outcome {
	live, err := r.Xen.Actions(ctx, instance)
	if err != nil {
		return Outcome{Err: fmt.Errorf("read the live actions of %s: %w", instance, err)}
	}
	miss := MissingActions(live, r.Actions)
	if len(miss) == 0 {
		return Outcome{Done: fmt.Sprintf("domain %s runs with %s", instance, formatActions(r.Actions))}
	}
	parts := make([]string, len(miss))
	for i, m := range miss {
		parts[i] = fmt.Sprintf("%s=%s (want %s)", m.Key, m.Got, m.Want)
	}
	return Outcome{Problem: fmt.Sprintf("instance %s runs with %s: a shutdown from inside will not be kept for detection; check that the toolstack shim is installed (userdown-hvconfig doctor)",
		instance, strings.Join(parts, ", "))}
}

// freeMemory destroys the certainly-safe preserved domains
// (detect.Freeable).
func (r *Runner) freeMemory(ctx context.Context, instance string) Outcome {
	doms, err := r.Xen.List(ctx)
	if err != nil {
		return Outcome{Err: fmt.Errorf("list domains: %w", err)}
	}
	intents, problems := r.Intents.Intents(r.now())
	for _, p := range problems {
		r.log().Warn("intent store", "problem", p)
	}
	chosen, skipped := detect.Freeable(doms, intents, instance, r.now())
	for _, s := range skipped {
		r.log().Info("preserved domain left alone", "domain", s.Domain.Name, "domid", s.Domain.ID, "why", s.Why)
	}
	var done []string
	var errs []error
	for _, c := range chosen {
		msg, err := r.destroyOne(ctx, c.Domain, c.Why)
		if err != nil {
			errs = append(errs, err)
		}
		if msg != "" {
			done = append(done, msg)
		}
	}
	if len(skipped) > 0 {
		done = append(done, fmt.Sprintf("%d preserved domain(s) left to the watcher", len(skipped)))
	}
	if len(done) == 0 {
		done = append(done, "no preserved domain to free")
	}
	return Outcome{Done: strings.Join(done, "; "), Err: errors.Join(errs...)}
}

func formatActions(kvs []config.KeyValue) string {
	parts := make([]string, len(kvs))
	for i, kv := range kvs {
		parts[i] = kv.Key + "=" + kv.Value
	}
	return strings.Join(parts, ", ")
}
