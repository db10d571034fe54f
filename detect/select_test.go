package detect

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/xen"
	"ganeti-userdown/internal/xen/xentest"
)

func hookIntent(instance, op string, now time.Time) state.Intent {
	return state.Intent{Instance: instance, Op: op, Source: "hook", Created: now, Expires: now.Add(time.Hour)}
}

// TestFreeable: only the certainly safe preserved domains are chosen.
//
// Reference: doc/design.md, "Hooks": instance-add and move targets
// "destroy the certainly safe preserved domains"; "Decisions", safety rule
// 2: "Never destroy a user-shut-down domain of an instance that Ganeti
// still wants up before Ganeti has marked it down".
func TestFreeable(t *testing.T) {
	doms := []xen.Domain{
		xentest.Domain("Domain-0", 0, "", "r-----"),
		xentest.Domain("stopped.example.com", 3, "u3", "---s--"),   // hook intent
		xentest.Domain("shim.example.com", 4, "U4", "---s--"),      // shim intent by uuid (case differs)
		xentest.Domain("user.example.com", 5, "u5", "---s--"),      // no intent: maybe a user shutdown
		xentest.Domain("crashed.example.com", 6, "u6", "---sc-"),   // crash, no intent
		xentest.Domain("coming.example.com", 7, "u7", "---s--"),    // leftover of the coming instance
		xentest.Domain("running.example.com", 8, "u8", "-b----"),   // alive, even with an intent
		xentest.Domain("rebooting.example.com", 9, "u9", "---sr-"), // in flight, even with an intent
		xentest.Domain("expired.example.com", 10, "u10", "---s--"), // its intent expired
		xentest.Domain("dying.example.com", 11, "u11", "---s-d"),   // dying: not considered
	}
	intents := []state.Intent{
		hookIntent("stopped.example.com", "stop", now),
		{UUID: "u4", Op: "shutdown", Source: "shim", Created: now, Expires: now.Add(time.Hour)},
		hookIntent("running.example.com", "stop", now),
		hookIntent("rebooting.example.com", "reboot", now),
		hookIntent("expired.example.com", "stop", now.Add(-2*time.Hour)),
	}
	chosen, skipped := Freeable(doms, intents, "coming.example.com", now)
	var chosenIDs, skippedIDs []int
	for _, c := range chosen {
		chosenIDs = append(chosenIDs, c.Domain.ID)
	}
	for _, s := range skipped {
		skippedIDs = append(skippedIDs, s.Domain.ID)
		if s.Why == "" {
			t.Errorf("domain %d skipped without a reason", s.Domain.ID)
		}
	}
	sort.Ints(skippedIDs)
	if diff := cmp.Diff([]int{3, 4, 7}, chosenIDs); diff != "" {
		t.Errorf("chosen (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{5, 6, 9, 10}, skippedIDs); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
}

// TestDeadDomainsOf: instance-start's pre phase destroys only domains of
// class stopped named exactly like the instance.
// Reference: doc/design.md, "Hooks": instance-start pre "destroy a
// preserved dead domain of this instance"; "Decisions", safety rule 1.
func TestDeadDomainsOf(t *testing.T) {
	var doms []xen.Domain
	for i, letters := range []string{"r-----", "-b----", "---s--", "---sc-", "---sw-", "---sr-", "---ss-", "---sS-", "---s?-", "---s-d"} {
		doms = append(doms, xentest.Domain("web1.example.com", i+1, "", letters))
	}
	doms = append(doms, xentest.Domain("WEB1.example.com", 20, "", "---s--"), xentest.Domain("Domain-0", 0, "", "---s--"))
	var got []string
	for _, d := range DeadDomainsOf(doms, "web1.example.com") {
		got = append(got, d.State.Letters)
	}
	if diff := cmp.Diff([]string{"---s--", "---sc-", "---sw-"}, got); diff != "" {
		t.Errorf("DeadDomainsOf (-want +got):\n%s", diff)
	}
}

// TestMarkDownChanged: the re-check right before a mark-down.
// Reference: doc/design.md, "Decisions", safety rule 3, and "The re-check
// before a mark-down".
func TestMarkDownChanged(t *testing.T) {
	off := xentest.Domain("a", 5, "uuid-a", "---s--")
	dec := Decision{Name: "a", DomID: 5, UUID: "uuid-a", Decision: MarkDown}
	rename := off
	rename.Name = "b"
	other := off
	other.UUID = "uuid-other"
	for _, tc := range []struct {
		name    string
		got     xen.Domain
		found   bool
		intents []state.Intent
		want    string // substring; "" for "still holds"
	}{
		{"unchanged", off, true, nil, ""},
		{"upper-case uuid read back", xentest.Domain("a", 5, "UUID-A", "---s--"), true, nil, ""},
		{"gone", xen.Domain{}, false, nil, "is gone"},
		{"another uuid", other, true, nil, "now has uuid"},
		{"renamed", rename, true, nil, "now named"},
		{"runs again", xentest.Domain("a", 5, "uuid-a", "r-----"), true, nil, "no longer powered off"},
		{"crashed now", xentest.Domain("a", 5, "uuid-a", "---sc-"), true, nil, "no longer powered off"},
		{"a hook intent", off, true, []state.Intent{hookIntent("a", "stop", now)}, "an intent now covers it"},
		{"a shim intent", off, true, []state.Intent{{UUID: "UUID-a", Op: "shutdown", Source: "shim", Expires: now.Add(time.Minute)}}, "an intent now covers it"},
		{"an expired intent", off, true, []state.Intent{hookIntent("a", "stop", now.Add(-2*time.Hour))}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := MarkDownChanged(dec, tc.got, tc.found, tc.intents, now)
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("MarkDownChanged = %q, want %q", got, tc.want)
			}
		})
	}
}
