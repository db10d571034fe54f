// Package ganeti is ganeti-userdown's client of the Ganeti cluster: the
// config-only view of this node's instances, the instance locks held by
// jobs, and marking an instance down with Ganeti's own shutdown.
//
// Two backends implement Client: RAPI (every node) and the gnt-* commands
// (the master only).
package ganeti

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"ganeti-userdown/internal/dnsname"
)

// AdminState is the state Ganeti wants an instance in.
type AdminState string

// Admin states as Ganeti reports them in the admin_state field.
const (
	AdminUp      AdminState = "up"
	AdminDown    AdminState = "down"
	AdminOffline AdminState = "offline"
)

// Instance is the config-only view of one instance: no live field, so the
// query does not make the master contact every node.
type Instance struct {
	Name        string
	PrimaryNode string
	AdminState  AdminState
	// AdminStateSource is "admin" or "user" where the cluster reports it
	// (Ganeti 2.12 and later), else "".
	AdminStateSource string
	Tags             []string
}

// MarkDownRequest asks Ganeti to shut an instance down and mark it down.
type MarkDownRequest struct {
	Name string
	// Reason is the reason text recorded in the job, naming
	// ganeti-userdown and what it saw.
	Reason string
	// UserSource sends admin_state_source "user"; only valid while the
	// cluster reports the instance as USER_down.
	UserSource bool
}

// StartUpRequest asks Ganeti to start an instance (Ganeti's
// OpInstanceStartup, which also records the instance as admin up).
type StartUpRequest struct {
	Name string
	// Reason is the reason text recorded in the job, naming
	// ganeti-userdown and what it saw.
	Reason string
}

// Job is a finished (or abandoned) Ganeti job.
type Job struct {
	ID int64 `json:"id"`
	// Status is Ganeti's final job status ("success", "error",
	// "canceled"), or "running"/"queued"/"waiting" when the wait was
	// bounded before the job ended.
	Status string `json:"status"`
	// Error is Ganeti's error text for a failed job.
	Error string `json:"error,omitempty"`
}

// Client is what detect, destroy and doctor need from Ganeti.
type Client interface {
	// Instances returns the instances whose primary node is node. An
	// instance whose name is not a DNS name (dnsname.Check) is left out:
	// the error is then a *BadNamesError naming it, and the instances
	// returned beside it are good to use.
	Instances(ctx context.Context, node string) ([]Instance, error)
	// Locked returns which of names a Ganeti job holds right now
	// (lock "instance/<name>").
	Locked(ctx context.Context, names []string) (map[string]bool, error)
	// MarkDown submits Ganeti's instance shutdown with a short positive
	// timeout and waits, bounded, for the job. The error is nil only when
	// the job finished with status "success"; otherwise it wraps
	// ErrInstanceGone, ErrJobFailed, ErrJobUnfinished, ErrJobDeferred (the
	// job would have run after another job holding the instance, and was
	// not run) or says why the job could not be submitted, and Job holds
	// what is known of the job.
	MarkDown(ctx context.Context, req MarkDownRequest) (Job, error)
	// StartUp submits Ganeti's instance startup and waits, bounded, for
	// the job, with the same errors and the same deferral as MarkDown: a
	// start queued behind another job holding the instance (an
	// administrator's shutdown) is not run after it.
	StartUp(ctx context.Context, req StartUpRequest) (Job, error)
}

// Default reasons of the jobs, when the caller gives none.
const (
	markDownReason = "the instance was shut down from inside the guest"
	startUpReason  = "the instance's domain failed and was destroyed"
)

// BadNamesError is returned by Instances, beside the instances it kept,
// when instances of the node have names that are not DNS names: they are
// left out, so nothing acts on them or puts their names in a path or a
// command line.
type BadNamesError struct {
	// Problems say, for each instance left out, what is wrong with its
	// name (quoted and cut short).
	Problems []string
}

// Error lists the instances left out.
func (e *BadNamesError) Error() string {
	return "instances left out, their names from the cluster are not DNS names: " + strings.Join(e.Problems, "; ")
}

// checkNames keeps the instances whose name and primary node are DNS
// names, and reports the others in a *BadNamesError (nil when none).
func checkNames(all []Instance) ([]Instance, error) {
	out := all[:0:0]
	var bad []string
	for _, in := range all {
		err := dnsname.Check(in.Name)
		if err == nil {
			if err = dnsname.Check(in.PrimaryNode); err != nil {
				err = fmt.Errorf("instance %s: primary node: %w", in.Name, err)
			}
		}
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		out = append(out, in)
	}
	if bad != nil {
		return out, &BadNamesError{Problems: bad}
	}
	return out, nil
}

// ErrInstanceGone is returned (wrapped) by MarkDown when the cluster no
// longer knows the instance: reported, not a failed run.
var ErrInstanceGone = errors.New("instance not known to the cluster")

// ErrJobFailed is returned (wrapped) by MarkDown when Ganeti's shutdown
// job ended in "error" or "canceled"; the Job then carries Ganeti's error
// text. The instance may not be marked down.
var ErrJobFailed = errors.New("ganeti job failed")

// ErrJobUnfinished is returned (wrapped) by MarkDown when the job did not
// finish within [cluster] timeout. The job keeps running in Ganeti; the
// returned Job has its id and last seen status.
var ErrJobUnfinished = errors.New("ganeti job did not finish in time")

// ErrJobDeferred is returned (wrapped) by MarkDown when another job holds
// or waits for the instance (a start, a reboot, a migration) and the
// shutdown job was therefore not run: cancelled while it waited (RAPI), or
// not submitted (CLI). Run after that other job, Ganeti's shutdown could
// find the domain running again and stop it. Nothing was changed; the next
// watcher run decides again. A cancelled Job has status "canceled".
var ErrJobDeferred = errors.New("another job holds the instance: mark-down deferred to the next run")

// ErrNotMaster is returned (wrapped) by the CLI backend on a node that is
// not the Ganeti master, where every gnt-instance query and job fails.
var ErrNotMaster = errors.New(`this node is not the Ganeti master: the cli backend works only on the master; use backend = "rapi" in [cluster] on the other nodes`)

// Job statuses as Ganeti reports them.
const (
	JobQueued    = "queued"
	JobWaiting   = "waiting"
	JobCanceling = "canceling"
	JobRunning   = "running"
	JobCanceled  = "canceled"
	JobSuccess   = "success"
	JobError     = "error"
)

// JobFinished reports whether status is a final job status.
func JobFinished(status string) bool {
	return status == JobSuccess || status == JobError || status == JobCanceled
}

// reasonText returns the reason recorded in Ganeti's job: the caller's
// text (fallback when empty), always naming ganeti-userdown.
func reasonText(r, fallback string) string {
	r = strings.TrimSpace(r)
	switch {
	case r == "":
		return "ganeti-userdown: " + fallback
	case strings.Contains(r, "ganeti-userdown"):
		return r
	default:
		return "ganeti-userdown: " + r
	}
}

// shutdownSeconds converts the mark-down shutdown timeout to the whole,
// positive number of seconds Ganeti takes. 0 is refused: Ganeti 3.x reads
// it as "no timeout" and 2.9 as "destroy at once".
func shutdownSeconds(d time.Duration) (int, error) {
	if d < time.Second || d%time.Second != 0 {
		return 0, fmt.Errorf("shutdown timeout must be a positive whole number of seconds, got %s", d)
	}
	return int(d / time.Second), nil
}

// instanceFields are the only fields asked of Ganeti: config fields, so the
// master answers from its configuration without contacting any node.
var instanceFields = []string{"name", "pnode", "admin_state", "admin_state_source", "tags"}

// lockFields are the fields of the lock query.
var lockFields = []string{"name", "mode", "owner", "pending"}
