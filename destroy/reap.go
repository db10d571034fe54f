package destroy

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"ganeti-userdown/internal/xen"
)

// ReapOptions configure Reap.
type ReapOptions struct {
	DomID int
	UUID  string
	// Wait bounds the whole wait.
	Wait time.Duration
	// Poll is the interval between two looks at the domain.
	Poll time.Duration
	Log  *slog.Logger
}

// ReapResult says how a reap ended.
type ReapResult struct {
	Destroyed bool   `json:"destroyed"`
	Outcome   string `json:"outcome"`
}

// Reap waits for one domain, whose shutdown Ganeti or an operator asked
// for, to reach a preserved shutdown, destroys it and returns: the shim's
// reaper. It looks at the domain once per poll and destroys only what
// that look shows may go (Refuse, as Safely does). It returns without
// acting when the domain disappears, changes uuid, runs again after
// having been seen shut down, or Wait passes.
func Reap(ctx context.Context, x Toolstack, o ReapOptions) (ReapResult, error) {
	if o.Poll <= 0 {
		o.Poll = 200 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, o.Wait)
	defer cancel()
	seenDown := false
	var lastErr error
	for {
		d, ok, err := x.Lookup(ctx, o.DomID)
		switch {
		case err != nil:
			// A failing look is retried until the wait ends.
			lastErr = err
		case !ok:
			return ReapResult{Outcome: fmt.Sprintf("domain %d is gone", o.DomID)}, nil
		case o.UUID != "" && d.UUID != o.UUID:
			return ReapResult{Outcome: fmt.Sprintf("domain %d now has uuid %q, not %s", o.DomID, d.UUID, o.UUID)}, nil
		case d.State.Class() == xen.ClassAlive && seenDown:
			return ReapResult{Outcome: fmt.Sprintf("domain %d runs again (%s)", o.DomID, d.State.Letters)}, nil
		case d.State.Class() != xen.ClassAlive:
			seenDown = true
			// Not yet stopped for good (a shutdown in flight): Refuse
			// says so, and the next poll looks again.
			r, err := destroyReread(ctx, x, xen.Domain{Name: d.Name, ID: o.DomID, UUID: o.UUID}, d, true)
			if err != nil {
				return ReapResult{}, err
			}
			if r.Destroyed {
				return ReapResult{Destroyed: true, Outcome: fmt.Sprintf("domain %d (%s) destroyed after its shutdown (%s)", o.DomID, d.Name, d.State.Letters)}, nil
			}
		}
		t := time.NewTimer(o.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			out := fmt.Sprintf("domain %d did not reach a preserved shutdown within %s", o.DomID, o.Wait)
			if lastErr != nil {
				out += " (last error: " + lastErr.Error() + ")"
			}
			return ReapResult{Outcome: out}, nil
		case <-t.C:
		}
	}
}
