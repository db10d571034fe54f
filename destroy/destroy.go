// Package destroy removes preserved Xen domains without ever touching a
// running one: every destruction re-reads the domain by domid right before
// acting and gives up when anything about it changed.
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
// name still match and the domain is Dead(); otherwise it reports why it
// skipped. Only a domain that stopped for good is destroyed: powered off,
// crashed or stopped by its watchdog; suspend, reboot and soft reset in
// flight, unknown reasons and dying domains are skipped. The control
// domain is never destroyed. An error means the domain could not be read
// or the destruction failed.
func Safely(ctx context.Context, x Toolstack, want xen.Domain) (Result, error) {
	if want.IsDom0() {
		return Result{Skipped: "domain 0 is the control domain"}, nil
	}
	got, ok, err := x.Lookup(ctx, want.ID)
	if err != nil {
		return Result{}, fmt.Errorf("re-read domain %d (%s): %w", want.ID, want.Name, err)
	}
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
	case got.State.Dying:
		return fmt.Sprintf("domain %d is dying (%s): Xen is already destroying it", want.ID, got.State.Letters)
	case got.State.Shutdown && got.State.Reason != xen.ReasonPoweroff &&
		got.State.Reason != xen.ReasonCrash && got.State.Reason != xen.ReasonWatchdog:
		return fmt.Sprintf("domain %d is shut down for %s (%s), an operation in flight", want.ID, got.State.Reason, got.State.Letters)
	case !got.State.Dead():
		return fmt.Sprintf("domain %d is not shut down or crashed (%s)", want.ID, got.State.Letters)
	}
	return ""
}
