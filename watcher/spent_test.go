package watcher

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/ganeti"
	"ganeti-userdown/internal/state"
)

// TestSpentIntentsRemovedByRealRuns: every domain runs, and a's migrate
// intent for its domain 3 outlived its job (a failed migration runs no
// post hook). The scan asks the cluster only for the locks of a; the
// listing alone reports the intent spent and keeps it; a real run
// (Record) removes it. While a job holds a, or when the cluster cannot be
// asked, it stays.
//
// Reference: doc/design.md, "State files": "an intent its job left behind
// is spent"; "Decisions": the cost of a run whose domains all run.
func TestSpentIntentsRemovedByRealRuns(t *testing.T) {
	spent := state.Intent{Instance: "a", Listed: true, DomIDs: []int{3}, Op: "migrate", Source: "hook", Created: t0.Add(-5 * time.Minute), Expires: t0.Add(time.Hour)}
	for _, tc := range []struct {
		name     string
		locked   map[string]bool
		lockErr  error
		wantLeft int
		wantReq  []string
	}{
		{"no job holds a", nil, nil, 0, []string{"locks a"}},
		{"a job holds a", map[string]bool{"a": true}, nil, 1, []string{"locks a"}},
		{"locks unreadable", nil, errors.New("RAPI down"), 1, []string{"locks a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := newFakeXen(dom("a", 3, running), dom("b", 4, running))
			c := &fakeCluster{locked: tc.locked, lockErr: tc.lockErr}
			s, _ := sources(t, x, c)
			if err := s.Store.RecordIntent(spent); err != nil {
				t.Fatal(err)
			}
			res, err := Node(context.Background(), s)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.wantReq, c.requests); d != "" {
				t.Errorf("requests (-want +got):\n%s", d)
			}
			if live, _ := s.Store.Intents(t0); len(live) != 1 {
				t.Fatalf("the scan alone changed the intents: %v", live)
			}
			if (len(res.Report.SpentIntents) == 1) != (tc.wantLeft == 0) {
				t.Errorf("reported spent %v", res.Report.SpentIntents)
			}
			if tc.lockErr != nil && len(res.Report.Problems) == 0 {
				t.Error("the lock failure is not reported as a problem")
			}
			Record(s, &res)
			if live, _ := s.Store.Intents(t0); len(live) != tc.wantLeft {
				t.Errorf("after Record %d intents left, want %d: %v", len(live), tc.wantLeft, live)
			}
		})
	}
}

// TestSpentLockFailureDoesNotStopTheRun: a run with a stopped domain it
// would not act on (policy ignore) queries the locks only for a spent
// intent; when that query fails the run goes on, the intent kept and the
// failure reported. A run that would act still stops on it (safety rule
// 4).
//
// Reference: doc/design.md, "State files": "when the cluster cannot be
// asked, the intent stays (a problem of the run)"; "Decisions", safety
// rule 4.
func TestSpentLockFailureDoesNotStopTheRun(t *testing.T) {
	spent := state.Intent{Instance: "a", Listed: true, DomIDs: []int{3}, Op: "migrate", Source: "hook", Created: t0.Add(-5 * time.Minute), Expires: t0.Add(time.Hour)}
	for _, tc := range []struct {
		name    string
		tags    []string
		wantErr bool
	}{
		{"b left alone (policy ignore)", []string{"userdown:ignore"}, false},
		{"b to be marked down", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := newFakeXen(dom("a", 3, running), dom("b", 4, poweroff))
			c := &fakeCluster{instances: []ganeti.Instance{up("a"), up("b", tc.tags...)}, lockErr: errors.New("RAPI down")}
			s, _ := sources(t, x, c)
			if err := s.Store.RecordIntent(spent); err != nil {
				t.Fatal(err)
			}
			res, err := Node(context.Background(), s)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Node: %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if len(res.Spent) != 0 || len(res.Report.Problems) == 0 {
				t.Errorf("spent %v, problems %v: want none spent and the lock failure reported", res.Spent, res.Report.Problems)
			}
		})
	}
}
