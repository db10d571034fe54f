package watcher

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/detect"
	"ganeti-userdown/internal/ganeti"
	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/testbin"
)

// seedState fills the store with what a scan could be tempted to write:
// an expired intent (pruned by a real run), a new shutdown (a new
// observation) and a corrupt intent file.
func seedState(t *testing.T, s *state.Store) {
	t.Helper()
	if err := s.RecordIntent(state.Intent{Instance: "old", Op: "stop", Source: "hook", Created: t0.Add(-2 * time.Hour), Expires: t0.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveObservations(state.Observations{}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir(), "intents", "instance@bad@stop.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A scan only reads: the state dir is byte-identical after it (names,
// modes, contents), whatever it found; the writes are Record's, which
// only real runs call.
//
// Reference: doc/design.md, "State files": reading changes nothing.
func TestScanChangesNothingRecordWrites(t *testing.T) {
	x := newFakeXen(dom("a", 1, poweroff), dom("crash", 2, crashed))
	c := &fakeCluster{instances: []ganeti.Instance{up("a"), up("crash")}}
	s, _ := sources(t, x, c)
	seedState(t, s.Store)
	before := testbin.Snapshot(t, s.Store.Dir())
	res, err := Node(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	rep := res.Report
	Destroy(context.Background(), x, &rep, DestroyOptions{DryRun: true, Now: s.Now})
	if d := cmp.Diff(before, testbin.Snapshot(t, s.Store.Dir())); d != "" {
		t.Errorf("a scan and a dry run changed the state dir (-before +after):\n%s", d)
	}
	if !res.Changed || len(res.Observations) != 2 {
		t.Errorf("Changed = %v, observations %v; want the two new shutdowns", res.Changed, res.Observations)
	}

	Record(s, &res)
	obs, problems := s.Store.LoadObservations(t0)
	if len(problems) > 0 || len(obs) != 2 {
		t.Errorf("after Record: observations %v, problems %v; want the two saved", obs, problems)
	}
	if _, err := os.Stat(filepath.Join(s.Store.Dir(), "intents", "instance@old@stop.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Record did not prune the expired intent: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Store.Dir(), "intents", "instance@bad@stop.json")); err != nil {
		t.Errorf("Record removed the corrupt intent (kept for the operator): %v", err)
	}
}

// A state dir that others may write in stops the scan (exit 3): its
// intents could make a run destroy what it must not.
//
// Reference: doc/design.md, "State files"; "Decisions", safety rule 4.
func TestUnsafeStateDirStopsTheScan(t *testing.T) {
	x := newFakeXen(dom("a", 1, poweroff))
	c := &fakeCluster{instances: []ganeti.Instance{up("a")}}
	s, _ := sources(t, x, c)
	seedState(t, s.Store)
	if err := os.Chmod(s.Store.Dir(), 0o777); err != nil {
		t.Fatal(err)
	}
	_, err := Node(context.Background(), s)
	var ue *UnreadableError
	var unsafe *state.UnsafeDirError
	if !errors.As(err, &ue) || !errors.As(err, &unsafe) || ExitCode(err) != 3 {
		t.Fatalf("err = %v, want an UnreadableError for the unsafe dir (exit 3)", err)
	}
	if len(c.requests) != 0 {
		t.Errorf("asked the cluster: %v", c.requests)
	}
}

// An intent file that cannot be read keeps its instance from being
// marked down (it may be Ganeti's own stop) and is reported.
//
// Reference: doc/design.md, "State files" (issue 14 #6).
func TestUnreadableIntentPreventsMarkDown(t *testing.T) {
	x := newFakeXen(dom("a", 1, poweroff), dom("b", 2, poweroff))
	c := &fakeCluster{instances: []ganeti.Instance{up("a"), up("b")}}
	s, _ := sources(t, x, c)
	if err := s.Store.RecordIntent(state.Intent{Instance: "a", Op: "stop", Source: "hook", Created: t0, Expires: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(s.Store.Dir(), "intents", "instance@a@stop.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 30); err != nil { // a sparse 1 GiB file
		t.Fatal(err)
	}
	f.Close()
	res, err := Node(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]detect.Kind{}
	for _, d := range res.Report.Domains {
		got[d.Name] = d.Decision
	}
	if got["a"] != detect.Wait || got["b"] != detect.MarkDown {
		t.Errorf("decisions %v, want a wait (its intent is unreadable), b mark-down", got)
	}
	if d := cmp.Diff([]string{"b"}, res.Report.MarkDown); d != "" {
		t.Errorf("mark down (-want +got):\n%s", d)
	}
	if len(res.Report.Problems) != 1 {
		t.Errorf("problems %v, want the unreadable intent", res.Report.Problems)
	}
}
