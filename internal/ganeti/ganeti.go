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
	// Instances returns the instances whose primary node is node.
	Instances(ctx context.Context, node string) ([]Instance, error)
	// Locked returns which of names a Ganeti job holds right now
	// (lock "instance/<name>").
	Locked(ctx context.Context, names []string) (map[string]bool, error)
	// MarkDown submits Ganeti's instance shutdown with a short positive
	// timeout and waits, bounded, for the job.
	MarkDown(ctx context.Context, req MarkDownRequest) (Job, error)
}

// ErrInstanceGone is returned (wrapped) by MarkDown when the cluster no
// longer knows the instance: reported, not a failed run.
var ErrInstanceGone = errors.New("instance not known to the cluster")
