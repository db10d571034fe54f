// Package destroy removes preserved Xen domains without ever touching a
// running one: every destruction re-reads the domain by domid right before
// acting and gives up when anything about it changed. It acts only: what
// to destroy is decided in package detect, and the one rule it enforces
// itself, safety rule 1, is the state classification of internal/xen.
// It also names and prunes core dumps and runs the shim's reaper.
package destroy

import (
	"context"
	"fmt"

	"ganeti-userdown/internal/xen"
)

// Toolstack is what safe destruction needs (satisfied by *xen.Client).
type Toolstack interface {
	Lookup(ctx context.Context, domid int) (xen.Domain, bool, error)
	Destroy(ctx context.Context, domid int) error
}

// Result says what Safely did.
type Result struct {
	// Destroyed is true when the domain was destroyed.
	Destroyed bool `json:"destroyed"`
	// Skipped says why the domain was left alone, when it was.
	Skipped string `json:"skipped,omitempty"`
}

// Safely re-reads want.ID and destroys it only if the uuid (when known) and
// name still match and the domain is of class stopped; otherwise it
// reports why it skipped. Only a domain that stopped for good is
// destroyed: powered off, crashed or stopped by its watchdog; alive
// domains, suspend, reboot and soft reset in flight, unknown reasons and
// dying domains are skipped (design.md, "Decisions", safety rule 1). The
// control domain is never destroyed. An error means the domain could not be read
// or the destruction failed.
func Safely(ctx context.Context, x Toolstack, want xen.Domain) (Result, error) {
	if want.IsDom0() {
		return Result{Skipped: "domain 0 is the control domain"}, nil
	}
	got, ok, err := x.Lookup(ctx, want.ID)
	if err != nil {
		return Result{}, fmt.Errorf("re-read domain %d (%s): %w", want.ID, want.Name, err)
	}
	return destroyReread(ctx, x, want, got, ok)
}

// destroyReread destroys want.ID if the domain re-read just now (got,
// present when ok) may go (Refuse). Every destruction goes through it.
func destroyReread(ctx context.Context, x Toolstack, want, got xen.Domain, ok bool) (Result, error) {
	if why := Refuse(want, got, ok); why != "" {
		return Result{Skipped: why}, nil
	}
	if err := x.Destroy(ctx, want.ID); err != nil {
		return Result{}, fmt.Errorf("destroy domain %d (%s): %w", want.ID, want.Name, err)
	}
	return Result{Destroyed: true}, nil
}

// Refuse is the pure check behind Safely: given the domain a decision was
// made on (want) and the same domid re-read just now (got, present when
// ok), it returns why destroying it now would be wrong, or "" when it may
// go.
func Refuse(want, got xen.Domain, ok bool) string {
	switch {
	case want.IsDom0():
		return "domain 0 is the control domain"
	case !ok:
		return fmt.Sprintf("domain %d is gone", want.ID)
	case got.ID != want.ID:
		return fmt.Sprintf("re-read returned domain %d, not %d", got.ID, want.ID)
	case want.UUID != "" && got.UUID != want.UUID:
		if got.UUID == "" {
			return fmt.Sprintf("domain %d: uuid could not be read back (want %s)", want.ID, want.UUID)
		}
		return fmt.Sprintf("domain %d changed uuid: %s, was %s", want.ID, got.UUID, want.UUID)
	case got.Name != want.Name:
		return fmt.Sprintf("domain %d changed name: %q, was %q", want.ID, got.Name, want.Name)
	case got.State.Class() != xen.ClassStopped:
		// Safety rule 1: only a domain that stopped for good goes.
		return fmt.Sprintf("domain %d is %s: not shut down or crashed for good", want.ID, got.State.Describe())
	}
	return ""
}
