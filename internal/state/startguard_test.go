package state

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestStartGuardRecords: the mark-down record and the start allowance
// round-trip, are absent before and after clearing, and a corrupt or
// misnamed file is an error naming it.
//
// Reference: design.md, "The start guard": markdown@<instance>.json and
// allow@<instance>.json.
func TestStartGuardRecords(t *testing.T) {
	s := Open(t.TempDir())
	const x = "x.example.com"
	at := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	if _, found, err := s.MarkDownRecord(x); found || err != nil {
		t.Fatalf("before: found %v, err %v", found, err)
	}
	md := MarkDown{Instance: x, DomID: 7, UUID: "u-7", State: "---s--", Submitted: at}
	if err := s.RecordMarkDown(md); err != nil {
		t.Fatal(err)
	}
	got, found, err := s.MarkDownRecord(x)
	if err != nil || !found {
		t.Fatalf("found %v, err %v", found, err)
	}
	if d := cmp.Diff(md, got); d != "" {
		t.Errorf("record (-want +got):\n%s", d)
	}
	a := StartAllowance{Instance: x, Created: at, Expires: at.Add(time.Minute)}
	if err := s.AllowStart(a); err != nil {
		t.Fatal(err)
	}
	if got, found, err := s.StartAllowanceOf(x); err != nil || !found || !cmp.Equal(a, got) {
		t.Errorf("allowance: %+v %v %v", got, found, err)
	}
	if err := s.ClearMarkDown(x); err != nil {
		t.Fatal(err)
	}
	if err := s.ClearMarkDown(x); err != nil {
		t.Errorf("clearing twice: %v", err)
	}
	if _, found, _ := s.MarkDownRecord(x); found {
		t.Error("record survives clearing")
	}
	if err := s.ClearStartAllowance(x); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := s.StartAllowanceOf(x); found {
		t.Error("allowance survives clearing")
	}

	if err := s.RecordMarkDown(MarkDown{Instance: x}); err == nil {
		t.Error("a record without a time was accepted")
	}
	path := filepath.Join(s.Dir(), "start-guard", "markdown@"+x+".json")
	if err := os.WriteFile(path, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.MarkDownRecord(x); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("corrupt record: %v", err)
	}
	if err := os.WriteFile(path, []byte(`{"instance":"y.example.com","submitted":"2026-12-02T01:00:00Z"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, found, err := s.MarkDownRecord(x); found || err == nil {
		t.Errorf("record naming another instance: found %v, err %v", found, err)
	}

	// A planted link is refused, never followed, and nothing is
	// written through it.
	target := filepath.Join(t.TempDir(), "elsewhere.json")
	if err := os.WriteFile(target, []byte(`{"instance":"x.example.com","submitted":"2026-12-02T01:00:00Z"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	if _, found, err := s.MarkDownRecord(x); found || err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("record behind a link: found %v, err %v", found, err)
	}
	if err := s.ClearMarkDown(x); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(target); err != nil {
		t.Errorf("clearing removed the link's target: %v", err)
	}
}

// TestMarkDownInFlightRecord: the in-flight mark-down round-trips apart
// from the mark-down record, and clearing one leaves the other.
//
// Reference: design.md, "The stop guard": inflight@<instance>.json.
func TestMarkDownInFlightRecord(t *testing.T) {
	s := Open(t.TempDir())
	const x = "x.example.com"
	md := MarkDown{Instance: x, DomID: 7, UUID: "u-7", State: "---s--", Submitted: time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)}
	if _, found, err := s.MarkDownInFlight(x); found || err != nil {
		t.Fatalf("before: found %v, err %v", found, err)
	}
	if err := s.RecordMarkDown(md); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordMarkDownInFlight(md); err != nil {
		t.Fatal(err)
	}
	got, found, err := s.MarkDownInFlight(x)
	if err != nil || !found {
		t.Fatalf("found %v, err %v", found, err)
	}
	if d := cmp.Diff(md, got); d != "" {
		t.Errorf("in flight (-want +got):\n%s", d)
	}
	if err := s.ClearMarkDownInFlight(x); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := s.MarkDownInFlight(x); found {
		t.Error("in-flight record survives clearing")
	}
	if _, found, _ := s.MarkDownRecord(x); !found {
		t.Error("clearing the in-flight record removed the mark-down record")
	}
	if err := s.RecordMarkDownInFlight(MarkDown{Instance: x}); err == nil {
		t.Error("a record without a time was accepted")
	}
}
