package destroy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/xen"
	"ganeti-userdown/internal/xen/xentest"
)

// The states of the design's letters table, decoded by the real parser.
var (
	running   = xentest.MustState(xen.XL, "r-----")
	blocked   = xentest.MustState(xen.XL, "-b----")
	paused    = xentest.MustState(xen.XL, "--p---")
	idle      = xentest.MustState(xen.XL, "------")
	poweroff  = xentest.MustState(xen.XL, "---s--")
	crashed   = xentest.MustState(xen.XL, "---sc-")
	xmCrashed = xentest.MustState(xen.XM, "----c-")
	watchdog  = xentest.MustState(xen.XL, "---sw-")
	suspended = xentest.MustState(xen.XL, "---ss-")
	rebooting = xentest.MustState(xen.XL, "---sr-")
	softReset = xentest.MustState(xen.XL, "---sS-")
	unknown   = xentest.MustState(xen.XL, "---s?-")
	dying     = xentest.MustState(xen.XL, "---s-d")
)

func dom(name string, id int, uuid string, st xen.State) xen.Domain {
	return xen.Domain{Name: name, ID: id, UUID: uuid, State: st}
}

// Reference: doc/design.md, "Decisions", safety rule 1: "Never destroy a
// domain that is not shut down or crashed. Destroy re-reads the domain by
// domid right before acting and skips it if its uuid or state changed."
func TestSafely(t *testing.T) {
	const u1, u2 = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
	tests := []struct {
		name      string
		want      xen.Domain
		now       map[int]xen.Domain
		destroyed bool
		skipped   string // substring of Result.Skipped
	}{
		{"powered off, unchanged", dom("web1", 5, u1, poweroff), map[int]xen.Domain{5: dom("web1", 5, u1, poweroff)}, true, ""},
		{"crashed, unchanged", dom("web1", 5, u1, crashed), map[int]xen.Domain{5: dom("web1", 5, u1, crashed)}, true, ""},
		{"xm crashed, no uuid", dom("web1", 5, "", xmCrashed), map[int]xen.Domain{5: dom("web1", 5, "", xmCrashed)}, true, ""},
		{"watchdog", dom("web1", 5, u1, watchdog), map[int]xen.Domain{5: dom("web1", 5, u1, watchdog)}, true, ""},
		{"decided off, runs now", dom("web1", 5, u1, poweroff), map[int]xen.Domain{5: dom("web1", 5, u1, running)}, false, "not shut down or crashed"},
		{"blocked now", dom("web1", 5, u1, poweroff), map[int]xen.Domain{5: dom("web1", 5, u1, blocked)}, false, "not shut down or crashed"},
		{"paused now", dom("web1", 5, u1, poweroff), map[int]xen.Domain{5: dom("web1", 5, u1, paused)}, false, "not shut down or crashed"},
		{"not scheduled now", dom("web1", 5, u1, poweroff), map[int]xen.Domain{5: dom("web1", 5, u1, idle)}, false, "not shut down or crashed"},
		{"domid reused by another domain", dom("web1", 5, u1, poweroff), map[int]xen.Domain{5: dom("web1", 5, u2, poweroff)}, false, "changed uuid"},
		{"uuid unreadable", dom("web1", 5, u1, poweroff), map[int]xen.Domain{5: dom("web1", 5, "", poweroff)}, false, "could not be read back"},
		{"renamed", dom("web1", 5, u1, poweroff), map[int]xen.Domain{5: dom("web1-old", 5, u1, poweroff)}, false, "changed name"},
		{"gone", dom("web1", 5, u1, poweroff), map[int]xen.Domain{}, false, "gone"},
		{"dying", dom("web1", 5, u1, poweroff), map[int]xen.Domain{5: dom("web1", 5, u1, dying)}, false, "dying"},
		{"suspend in flight", dom("web1", 5, u1, poweroff), map[int]xen.Domain{5: dom("web1", 5, u1, suspended)}, false, "in-flight: suspend"},
		{"reboot in flight", dom("web1", 5, u1, poweroff), map[int]xen.Domain{5: dom("web1", 5, u1, rebooting)}, false, "in-flight: reboot"},
		{"soft reset", dom("web1", 5, u1, poweroff), map[int]xen.Domain{5: dom("web1", 5, u1, softReset)}, false, "in-flight: soft_reset"},
		{"unknown reason", dom("web1", 5, u1, poweroff), map[int]xen.Domain{5: dom("web1", 5, u1, unknown)}, false, "unknown: unknown"},
		{"dom0", dom("Domain-0", 0, "00000000-0000-0000-0000-000000000000", poweroff), map[int]xen.Domain{0: dom("Domain-0", 0, "00000000-0000-0000-0000-000000000000", poweroff)}, false, "control domain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := xentest.NewToolstack()
			for _, d := range tc.now {
				f.Set(d)
			}
			res, err := Safely(context.Background(), f, tc.want)
			if err != nil {
				t.Fatal(err)
			}
			if res.Destroyed != tc.destroyed {
				t.Errorf("Destroyed = %v, want %v (skipped: %q)", res.Destroyed, tc.destroyed, res.Skipped)
			}
			var wantCalls []int
			if tc.destroyed {
				wantCalls = []int{tc.want.ID}
				if res.Skipped != "" {
					t.Errorf("destroyed but Skipped = %q", res.Skipped)
				}
			} else if !strings.Contains(res.Skipped, tc.skipped) {
				t.Errorf("Skipped = %q, want it to mention %q", res.Skipped, tc.skipped)
			}
			if d := cmp.Diff(wantCalls, f.Destroyed()); d != "" {
				t.Errorf("destroy calls (-want +got):\n%s", d)
			}
		})
	}
}

// Reference: design.md, "Decisions", safety rule 4: "When Xen or cluster
// state cannot be read or parsed, do nothing and say so."
func TestSafelyLookupErrorDestroysNothing(t *testing.T) {
	f := xentest.NewToolstack(dom("web1", 5, "u", poweroff))
	f.LookupErr = errors.New("xl list: exit status 1")
	res, err := Safely(context.Background(), f, dom("web1", 5, "u", poweroff))
	if err == nil || !strings.Contains(err.Error(), "web1") {
		t.Errorf("err = %v, want an error naming web1", err)
	}
	if res.Destroyed || len(f.Destroyed()) != 0 {
		t.Errorf("destroyed after a failed re-read: %+v %v", res, f.Destroyed())
	}
}

func TestSafelyReportsDestroyFailure(t *testing.T) {
	f := xentest.NewToolstack(dom("web1", 5, "u", poweroff))
	f.DestroyErr = errors.New("xl destroy: exit status 1")
	res, err := Safely(context.Background(), f, dom("web1", 5, "u", poweroff))
	if err == nil || !strings.Contains(err.Error(), "domain 5") {
		t.Errorf("err = %v, want an error naming domain 5", err)
	}
	if res.Destroyed {
		t.Errorf("Destroyed = true after a failed destroy")
	}
}
