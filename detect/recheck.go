package detect

import (
	"fmt"
	"strings"
	"time"

	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/xen"
)

// MarkDownChanged compares a mark-down decision with the domain re-read by
// its domid right before the mark-down (found false: no such domain) and
// the intents read just before that, and returns why the decision no
// longer holds, or "": the domain must still be there with the same uuid
// and name, still a user poweroff (class stopped, reason poweroff), and
// no live intent may cover it.
//
// Reference: doc/design.md, "Decisions", safety rule 3: "Never mark down an
// instance whose shutdown Ganeti or an operator asked for", and "The
// re-check before a mark-down".
func MarkDownChanged(d Decision, got xen.Domain, found bool, intents []state.Intent, now time.Time) string {
	switch {
	case !found:
		return fmt.Sprintf("domain %d is gone since the decision (destroyed, or started again under a new domid)", d.DomID)
	case d.UUID != "" && !strings.EqualFold(got.UUID, d.UUID):
		return fmt.Sprintf("domain %d now has uuid %q, not %s", d.DomID, got.UUID, d.UUID)
	case got.Name != d.Name:
		return fmt.Sprintf("domain %d is now named %q, not %s", d.DomID, got.Name, d.Name)
	case !got.State.UserPoweredOff():
		return fmt.Sprintf("domain %d is now %s, no longer powered off", d.DomID, got.State.Letters)
	}
	ix := newIntentIndex(intents, now)
	it, ok := ix.lookup(xen.Domain{Name: d.Name, ID: d.DomID, UUID: d.UUID})
	if !ok {
		it, ok = ix.lookup(xen.Domain{ID: got.ID, UUID: got.UUID})
	}
	if ok {
		return fmt.Sprintf("an intent now covers it: %s asked through the %s (expires %s)", it.Op, it.Source, it.Expires.UTC().Format(time.RFC3339))
	}
	return ""
}
