package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/testbin"
	"ganeti-userdown/internal/xen"
	"ganeti-userdown/internal/xen/xentest"
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func hookIntent(inst, op string, expires time.Time) Intent {
	return Intent{Instance: inst, Op: op, Source: "hook", Created: t0, Expires: expires}
}

func shimIntent(uuid string, expires time.Time) Intent {
	return Intent{UUID: uuid, DomID: 7, Domain: "web1", Op: "shutdown", Source: "shim", Created: t0, Expires: expires}
}

func TestRecordAndReadIntents(t *testing.T) {
	s := Open(t.TempDir())
	want := []Intent{
		hookIntent("db1.example.com", "stop", t0.Add(time.Hour)),
		hookIntent("web1.example.com", "reboot", t0.Add(time.Hour)),
		shimIntent("0d1e2f3a-0000-4000-8000-000000000001", t0.Add(time.Hour)),
	}
	for _, in := range want {
		if err := s.RecordIntent(in); err != nil {
			t.Fatal(err)
		}
	}
	live, problems := s.Intents(t0)
	if len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	if d := cmp.Diff(want, live); d != "" {
		t.Errorf("intents (-want +got):\n%s", d)
	}
}

func TestRecordReplacesSameInstanceAndOp(t *testing.T) {
	s := Open(t.TempDir())
	if err := s.RecordIntent(hookIntent("a", "stop", t0.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	later := hookIntent("a", "stop", t0.Add(time.Hour))
	if err := s.RecordIntent(later); err != nil {
		t.Fatal(err)
	}
	live, problems := s.Intents(t0.Add(30 * time.Minute))
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if d := cmp.Diff([]Intent{later}, live); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestRecordRejectsInvalidIntents(t *testing.T) {
	s := Open(t.TempDir())
	for _, in := range []Intent{
		{Op: "stop", Source: "hook", Expires: t0},
		{Instance: "a", UUID: "u", Op: "stop", Source: "hook", Expires: t0},
		{Instance: "a", Op: "explode", Source: "hook", Expires: t0},
		{Instance: "a", Op: "stop", Source: "cron", Expires: t0},
		{Instance: "a", Op: "stop", Source: "hook"},
	} {
		if err := s.RecordIntent(in); err == nil {
			t.Errorf("RecordIntent(%+v) succeeded, want an error", in)
		}
	}
	if live, _ := s.Intents(t0.Add(-time.Hour)); len(live) != 0 {
		t.Errorf("invalid intents were stored: %+v", live)
	}
}

func TestClearIntents(t *testing.T) {
	s := Open(t.TempDir())
	exp := t0.Add(time.Hour)
	for _, in := range []Intent{
		hookIntent("a", "stop", exp), hookIntent("a", "reboot", exp),
		hookIntent("ab", "stop", exp), hookIntent("b", "migrate", exp),
		shimIntent("U-1", exp), shimIntent("u-2", exp),
	} {
		if err := s.RecordIntent(in); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ClearIntents("a", "stop"); err != nil {
		t.Fatal(err)
	}
	if err := s.ClearIntents("b", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.ClearUUIDIntents("u-1"); err != nil { // uuids compare case-insensitively
		t.Fatal(err)
	}
	if err := s.ClearIntents("nobody", ""); err != nil {
		t.Errorf("clearing nothing: %v", err)
	}
	live, problems := s.Intents(t0)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	var got []string
	for _, in := range live {
		got = append(got, in.Instance+in.UUID+"/"+in.Op)
	}
	want := []string{"a/reboot", "ab/stop", "u-2/shutdown"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("left after clearing (-want +got):\n%s", d)
	}
}

// Reading intents changes nothing: expired ones stay until the explicit
// PruneIntents of a real run removes them.
//
// Reference: doc/design.md, "State files": reading changes nothing.
func TestExpiredIntentsArePrunedOnlyByPrune(t *testing.T) {
	dir := t.TempDir()
	s := Open(dir)
	if err := s.RecordIntent(hookIntent("old", "stop", t0)); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordIntent(hookIntent("new", "stop", t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	before := testbin.Snapshot(t, dir)
	live, problems := s.Intents(t0) // Expires == now: no longer live
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if len(live) != 1 || live[0].Instance != "new" {
		t.Errorf("live = %+v, want only the intent for new", live)
	}
	if d := cmp.Diff(before, testbin.Snapshot(t, dir)); d != "" {
		t.Errorf("reading intents changed the state dir (-before +after):\n%s", d)
	}
	if problems := s.PruneIntents(t0); len(problems) > 0 {
		t.Fatal(problems)
	}
	if _, err := os.Stat(filepath.Join(dir, "intents", "instance@old@stop.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("expired intent file still there after PruneIntents: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "intents", "instance@new@stop.json")); err != nil {
		t.Errorf("live intent pruned: %v", err)
	}
}

// A corrupt intent file is reported (naming the file) and ignored, never
// fatal, and left in place for the operator.
func TestCorruptIntentReportedAndIgnored(t *testing.T) {
	dir := t.TempDir()
	s := Open(dir)
	if err := s.RecordIntent(hookIntent("good", "stop", t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "intents", "instance@bad@stop.json")
	if err := os.WriteFile(bad, []byte(`{"instance": "bad", "op": `), 0o644); err != nil {
		t.Fatal(err)
	}
	invalid := filepath.Join(dir, "intents", "instance@inv@stop.json")
	if err := os.WriteFile(invalid, []byte(`{"instance": "inv", "op": "stop", "source": "hook"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	live, problems := s.Intents(t0)
	if len(live) != 1 || live[0].Instance != "good" {
		t.Errorf("live = %+v, want only good", live)
	}
	// Reference: doc/design.md, "State files": an unreadable intent
	// blocks the instance its file name gives.
	want := []IntentKey{{Instance: "bad", Op: "stop"}, {Instance: "inv", Op: "stop"}}
	if d := cmp.Diff(want, Unreadable(problems)); d != "" {
		t.Errorf("unreadable intents (-want +got):\n%s", d)
	}
	if len(problems) != 2 {
		t.Fatalf("problems = %v, want two", problems)
	}
	for i, p := range []string{bad, invalid} {
		if !strings.Contains(problems[i].Error(), p) {
			t.Errorf("problem %q does not name %s", problems[i], p)
		}
	}
	if _, err := os.Stat(bad); err != nil {
		t.Errorf("corrupt file was removed (keep it for the operator): %v", err)
	}
}

func TestIntentsOfMissingDirIsEmpty(t *testing.T) {
	live, problems := Open(filepath.Join(t.TempDir(), "absent")).Intents(t0)
	if len(live) != 0 || len(problems) != 0 {
		t.Errorf("got %v, %v; want nothing", live, problems)
	}
}

func TestEscapedNamesStayInTheDirectory(t *testing.T) {
	dir := t.TempDir()
	s := Open(dir)
	odd := []string{"../evil", "a/b", ".hidden", "x@y", "100%"}
	for _, n := range odd {
		if err := s.RecordIntent(hookIntent(n, "stop", t0.Add(time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	live, problems := s.Intents(t0)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if len(live) != len(odd) {
		t.Fatalf("read back %d intents, want %d: %+v", len(live), len(odd), live)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != "intents" {
			t.Errorf("unexpected entry %s outside intents/", e.Name())
		}
	}
	for _, n := range odd {
		if err := s.ClearIntents(n, ""); err != nil {
			t.Fatal(err)
		}
	}
	if live, _ := s.Intents(t0); len(live) != 0 {
		t.Errorf("not cleared: %+v", live)
	}
}

// Concurrent writers and a pruner: every intent written live is read back,
// and no file is ever half-written.
func TestConcurrentWritersAndPruning(t *testing.T) {
	s := Open(t.TempDir())
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each+writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				// Expired and live intents for the same files alternate.
				exp := t0.Add(-time.Minute)
				if i%2 == 1 || i == each-1 {
					exp = t0.Add(time.Hour)
				}
				if err := s.RecordIntent(hookIntent(fmt.Sprintf("i%d", w), "stop", exp)); err != nil {
					errs <- err
				}
				if err := s.RecordIntent(hookIntent(fmt.Sprintf("j%d-%d", w, i), "stop", t0.Add(time.Hour))); err != nil {
					errs <- err
				}
			}
		}(w)
	}
	stop := make(chan struct{})
	var pw sync.WaitGroup
	pw.Add(1)
	go func() {
		defer pw.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if problems := s.PruneIntents(t0); len(problems) > 0 {
				errs <- errors.Join(problems...)
			}
			if _, problems := s.Intents(t0); len(problems) > 0 {
				errs <- errors.Join(problems...)
			}
		}
	}()
	wg.Wait()
	close(stop)
	pw.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	live, problems := s.Intents(t0)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if len(live) != writers+writers*each {
		t.Errorf("read %d live intents, want %d", len(live), writers+writers*each)
	}
}

func TestObserve(t *testing.T) {
	off := xentest.State(t, xen.XL, "---s--")
	run := xentest.State(t, xen.XL, "r-----")
	crashed := xentest.State(t, xen.XM, "----c-")
	dying := xentest.State(t, xen.XL, "---s-d")
	t1 := t0.Add(time.Minute)
	prev := Observations{
		"uuid:u-a":    {Name: "a", DomID: 3, UUID: "u-a", Since: t0},
		"name:b#4":    {Name: "b", DomID: 4, Since: t0},
		"uuid:u-c":    {Name: "c", DomID: 5, UUID: "u-c", Since: t0},
		"uuid:u-gone": {Name: "gone", DomID: 6, UUID: "u-gone", Since: t0},
		"uuid:u-e":    {Name: "e", DomID: 8, UUID: "u-e", Since: t0},
	}
	domains := []xen.Domain{
		{Name: "Domain-0", ID: 0, State: run},
		{Name: "a", ID: 3, UUID: "u-a", State: off},    // still off: keeps t0
		{Name: "b", ID: 4, State: crashed},             // xm, no uuid: keeps t0
		{Name: "c", ID: 5, UUID: "u-c", State: run},    // runs again: dropped
		{Name: "d", ID: 7, UUID: "u-d", State: off},    // new: t1
		{Name: "e", ID: 9, UUID: "u-e", State: off},    // same uuid, new domid: new observation
		{Name: "f", ID: 10, UUID: "u-f", State: dying}, // dying is not preserved: not observed
	}
	want := Observations{
		"uuid:u-a": {Name: "a", DomID: 3, UUID: "u-a", Since: t0},
		"name:b#4": {Name: "b", DomID: 4, Since: t0},
		"uuid:u-d": {Name: "d", DomID: 7, UUID: "u-d", Since: t1},
		"uuid:u-e": {Name: "e", DomID: 9, UUID: "u-e", Since: t1},
	}
	got := Observe(prev, domains, t1)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Observe (-want +got):\n%s", d)
	}
	if len(prev) != 5 {
		t.Errorf("Observe modified prev")
	}
	if s, ok := got.Since(domains[1]); !ok || !s.Equal(t0) {
		t.Errorf("Since(a) = %v, %v; want %v", s, ok, t0)
	}
	if _, ok := got.Since(domains[3]); ok {
		t.Errorf("Since(c) found an observation of a running domain")
	}
}

func TestObservationsRoundTrip(t *testing.T) {
	s := Open(filepath.Join(t.TempDir(), "new"))
	empty, problems := s.LoadObservations(t0)
	if len(problems) > 0 || len(empty) != 0 {
		t.Fatalf("missing file: %v, %v", empty, problems)
	}
	o := Observations{
		"uuid:u-a": {Name: "a", DomID: 3, UUID: "u-a", Since: t0},
		"name:b#4": {Name: "b", DomID: 4, Since: t0.Add(time.Second)},
	}
	if err := s.SaveObservations(o); err != nil {
		t.Fatal(err)
	}
	got, problems := s.LoadObservations(t0.Add(time.Minute))
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if d := cmp.Diff(o, got); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
	if err := os.WriteFile(s.ObservationsPath(), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if o, problems := s.LoadObservations(t0); len(o) != 0 || len(problems) != 1 || !strings.Contains(problems[0].Error(), s.ObservationsPath()) {
		t.Errorf("corrupt observations: %v, %v; want none and one problem naming the file", o, problems)
	}
}

func TestLockRunExcludes(t *testing.T) {
	s := Open(t.TempDir())
	l, err := s.LockRun(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if l2, err := s.LockRun(ctx); err == nil {
		l2.Unlock()
		t.Fatal("second LockRun succeeded while the first is held")
	}
	got := make(chan error, 1)
	go func() {
		l2, err := s.LockRun(context.Background())
		if err == nil {
			l2.Unlock()
		}
		got <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("LockRun did not get the lock after it was released")
	}
}

// TestRemoveSpentIntents: the spent intents' files go; an intent recorded
// again since under the same name (a new job's) and the others stay.
//
// Reference: doc/design.md, "State files": "an intent its job left behind
// is spent".
func TestRemoveSpentIntents(t *testing.T) {
	s := Open(t.TempDir())
	exp := t0.Add(time.Hour)
	a, b, c := hookIntent("a", "migrate", exp), hookIntent("b", "stop", exp), hookIntent("c", "stop", exp)
	for _, in := range []Intent{a, b, c} {
		if err := s.RecordIntent(in); err != nil {
			t.Fatal(err)
		}
	}
	// b is recorded again by a new job after the run read it.
	b2 := b
	b2.Created, b2.Expires = t0.Add(time.Minute), exp.Add(time.Minute)
	if err := s.RecordIntent(b2); err != nil {
		t.Fatal(err)
	}
	if errs := s.RemoveSpentIntents([]Intent{a, b}, t0.Add(2*time.Minute)); len(errs) > 0 {
		t.Fatal(errs)
	}
	live, problems := s.Intents(t0.Add(2 * time.Minute))
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if d := cmp.Diff([]Intent{b2, c}, live); d != "" {
		t.Errorf("left (-want +got):\n%s", d)
	}
	if errs := s.RemoveSpentIntents([]Intent{a}, t0); len(errs) > 0 {
		t.Errorf("removing one already gone: %v", errs)
	}
}
