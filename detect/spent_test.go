package detect

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/xen"
)

// TestSpent: a hook intent outlives its job when the job failed (Ganeti
// runs no post hook then); once no job holds the instance and the domain
// it was recorded for runs on or is gone, it is spent. One whose domain is
// stopped, whose instance a job holds, younger than SpentGrace, recorded
// without a listing, or the shim's, is not.
//
// Reference: doc/design.md, "State files": "an intent its job left behind
// is spent"; "The start guard", residuals.
func TestSpent(t *testing.T) {
	old := now.Add(-5 * time.Minute)
	hook := func(inst, op string, created time.Time, ids ...int) state.Intent {
		return state.Intent{Instance: inst, Listed: true, DomIDs: ids, Op: op, Source: "hook", Created: created, Expires: created.Add(time.Hour)}
	}
	intents := []state.Intent{
		hook("a", "migrate", old, 3),  // a's domain 3 runs: the migration failed
		hook("b", "stop", old, 4),     // b's domain 4 is powered off: its stop's, maybe
		hook("c", "stop", old),        // c had no domain: the stop of nothing failed
		hook("d", "reboot", old, 6),   // d's domain 6 is gone, and a job holds d
		hook("e", "stop", now, 7),     // recorded just now: within the grace
		hook("f", "migrate", old, 99), // domain 99 gone, f unlocked
		hook("g", "migrate", old, 8),  // domain 8 in flight (suspended)
		{Instance: "h", Op: "stop", Source: "hook", Created: old, Expires: old.Add(time.Hour)}, // not listed
		{UUID: uuidOf("a"), DomID: 3, Op: "shutdown", Source: "shim", Created: old, Expires: old.Add(time.Hour)},
		hook("i", "stop", now.Add(-2*time.Hour), 9), // expired
	}
	domains := []xen.Domain{
		dom0(),
		domain("a", 3, stRunning),
		domain("b", 4, stPoweroff),
		domain("e", 7, stRunning),
		domain("g", 8, stSuspend),
		domain("i", 9, stRunning),
	}
	cands := SpentCandidates(intents, domains, now)
	if d := cmp.Diff([]string{"a", "c", "d", "f"}, cands); d != "" {
		t.Errorf("candidates (-want +got):\n%s", d)
	}
	spent := Spent(intents, domains, map[string]bool{"d": true}, now)
	var got []string
	for _, it := range spent {
		got = append(got, it.Instance+"/"+it.Op)
	}
	if d := cmp.Diff([]string{"a/migrate", "c/stop", "f/migrate"}, got); d != "" {
		t.Errorf("spent (-want +got):\n%s", d)
	}
	for _, it := range spent {
		if SpentWhy(it) == "" {
			t.Errorf("no why for %+v", it)
		}
	}
}
