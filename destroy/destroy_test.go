package destroy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/xen"
)

// fakeToolstack answers Lookup from a fixed set of domains and records
// every Destroy.
type fakeToolstack struct {
	domains    map[int]xen.Domain
	lookupErr  error
	destroyErr error
	destroyed  []int
}

func (f *fakeToolstack) Lookup(_ context.Context, id int) (xen.Domain, bool, error) {
	if f.lookupErr != nil {
		return xen.Domain{}, false, f.lookupErr
	}
	d, ok := f.domains[id]
	return d, ok, nil
}

func (f *fakeToolstack) Destroy(_ context.Context, id int) error {
	if f.destroyErr != nil {
		return f.destroyErr
	}
	f.destroyed = append(f.destroyed, id)
	return nil
}

var (
	running   = xen.State{Running: true, Letters: "r-----"}
	blocked   = xen.State{Blocked: true, Letters: "-b----"}
	paused    = xen.State{Paused: true, Letters: "--p---"}
	idle      = xen.State{Letters: "------"}
	poweroff  = xen.State{Shutdown: true, Reason: xen.ReasonPoweroff, Letters: "---s--"}
	crashed   = xen.State{Shutdown: true, Reason: xen.ReasonCrash, Letters: "---sc-"}
	xmCrashed = xen.State{Reason: xen.ReasonCrash, Letters: "----c-"}
	watchdog  = xen.State{Shutdown: true, Reason: xen.ReasonWatchdog, Letters: "---sw-"}
	suspended = xen.State{Shutdown: true, Reason: xen.ReasonSuspend, Letters: "---ss-"}
	rebooting = xen.State{Shutdown: true, Reason: xen.ReasonReboot, Letters: "---sr-"}
	softReset = xen.State{Shutdown: true, Reason: xen.ReasonSoftReset, Letters: "---sS-"}
	unknown   = xen.State{Shutdown: true, Reason: xen.ReasonUnknown, Letters: "---s?-"}
	dying     = xen.State{Shutdown: true, Reason: xen.ReasonPoweroff, Dying: true, Letters: "---s-d"}
)

func dom(name string, id int, uuid string, st xen.State) xen.Domain {
	return xen.Domain{Name: name, ID: id, UUID: uuid, State: st}
}

// Reference: design.md, "Decisions", safety rule 1: "Never destroy a
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
		{"suspend in flight", dom("web1", 5, u1, poweroff), map[int]xen.Domain{5: dom("web1", 5, u1, suspended)}, false, "suspend"},
		{"reboot in flight", dom("web1", 5, u1, poweroff), map[int]xen.Domain{5: dom("web1", 5, u1, rebooting)}, false, "reboot"},
		{"soft reset", dom("web1", 5, u1, poweroff), map[int]xen.Domain{5: dom("web1", 5, u1, softReset)}, false, "soft_reset"},
		{"unknown reason", dom("web1", 5, u1, poweroff), map[int]xen.Domain{5: dom("web1", 5, u1, unknown)}, false, "unknown"},
		{"dom0", dom("Domain-0", 0, "00000000-0000-0000-0000-000000000000", poweroff), map[int]xen.Domain{0: dom("Domain-0", 0, "00000000-0000-0000-0000-000000000000", poweroff)}, false, "control domain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeToolstack{domains: tc.now}
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
			if d := cmp.Diff(wantCalls, f.destroyed); d != "" {
				t.Errorf("destroy calls (-want +got):\n%s", d)
			}
		})
	}
}

// Reference: design.md, "Decisions", safety rule 4: "When Xen or cluster
// state cannot be read or parsed, do nothing and say so."
func TestSafelyLookupErrorDestroysNothing(t *testing.T) {
	f := &fakeToolstack{lookupErr: errors.New("xl list: exit status 1")}
	res, err := Safely(context.Background(), f, dom("web1", 5, "u", poweroff))
	if err == nil || !strings.Contains(err.Error(), "web1") {
		t.Errorf("err = %v, want an error naming web1", err)
	}
	if res.Destroyed || len(f.destroyed) != 0 {
		t.Errorf("destroyed after a failed re-read: %+v %v", res, f.destroyed)
	}
}

func TestSafelyReportsDestroyFailure(t *testing.T) {
	f := &fakeToolstack{domains: map[int]xen.Domain{5: dom("web1", 5, "u", poweroff)}, destroyErr: errors.New("xl destroy: exit status 1")}
	res, err := Safely(context.Background(), f, dom("web1", 5, "u", poweroff))
	if err == nil || !strings.Contains(err.Error(), "domain 5") {
		t.Errorf("err = %v, want an error naming domain 5", err)
	}
	if res.Destroyed {
		t.Errorf("Destroyed = true after a failed destroy")
	}
}
