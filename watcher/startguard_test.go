package watcher

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/detect"
	"ganeti-userdown/internal/ganeti"
	"ganeti-userdown/internal/state"
)

// recordingCluster checks, at the moment each mark-down is submitted,
// whether the start guard's record of the instance is already written.
type recordingCluster struct {
	*fakeCluster
	store       *state.Store
	atSubmitted map[string]bool
	inFlightAt  map[string]bool
}

func (c *recordingCluster) MarkDown(ctx context.Context, r ganeti.MarkDownRequest) (ganeti.Job, error) {
	_, found, err := c.store.MarkDownRecord(r.Name)
	c.atSubmitted[r.Name] = found && err == nil
	if c.inFlightAt != nil {
		_, found, err := c.store.MarkDownInFlight(r.Name)
		c.inFlightAt[r.Name] = found && err == nil
	}
	return c.fakeCluster.MarkDown(ctx, r)
}

// TestMarkDownLeavesStartGuardRecord: every mark-down writes its record
// before the job is submitted (Ganeti runs the restart queued behind the
// job the moment it ends), and removes it when nothing was marked down.
//
// Reference: design.md, "The start guard": markdown@<instance>.json.
func TestMarkDownLeavesStartGuardRecord(t *testing.T) {
	x := newFakeXen(dom("a", 1, poweroff), dom("b", 2, poweroff), dom("c", 3, poweroff), dom("d", 4, poweroff))
	fc := &fakeCluster{
		instances: []ganeti.Instance{up("a"), up("b"), up("c"), up("d")},
		markErr: map[string]error{
			"a": fmt.Errorf("job 7: %w", ganeti.ErrJobFailed),
			"b": fmt.Errorf("mark down b: %w", ganeti.ErrInstanceGone),
			"d": fmt.Errorf("mark down d: job 7: %w", ganeti.ErrJobDeferred),
		},
	}
	s, _ := sources(t, x, fc)
	c := &recordingCluster{fakeCluster: fc, store: s.Store, atSubmitted: map[string]bool{}}
	res, err := Node(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	rep := res.Report
	MarkDown(context.Background(), c, s, &rep)
	if d := cmp.Diff(map[string]bool{"a": true, "b": true, "c": true, "d": true}, c.atSubmitted); d != "" {
		t.Errorf("record present when the job was submitted (-want +got):\n%s", d)
	}
	kept := map[string]bool{}
	for _, name := range []string{"a", "b", "c", "d"} {
		r, found, err := s.Store.MarkDownRecord(name)
		if err != nil {
			t.Fatal(err)
		}
		kept[name] = found
		if found && (r.DomID == 0 || r.UUID != "uuid-"+name || !r.Submitted.Equal(t0)) {
			t.Errorf("record of %s: %+v", name, r)
		}
	}
	// a: the job ran and failed (it may have marked down): kept. b: the
	// instance is gone, d: the job was cancelled: nothing marked down.
	if d := cmp.Diff(map[string]bool{"a": true, "b": false, "c": true, "d": false}, kept); d != "" {
		t.Errorf("records after the run (-want +got):\n%s", d)
	}
}

// TestMarkDownInFlightAndRefused: every mark-down's in-flight record is
// there while its job runs and gone when it ended, whatever the outcome
// (kept when the wait ended with the job unfinished);
// a job our stop guard refused is reported as such (not a failure), and
// its mark-down record is removed: nothing was marked down.
//
// Reference: design.md, "The stop guard".
func TestMarkDownInFlightAndRefused(t *testing.T) {
	x := newFakeXen(dom("a", 1, poweroff), dom("c", 3, poweroff), dom("e", 5, poweroff), dom("u", 6, poweroff))
	fc := &fakeCluster{
		instances: []ganeti.Instance{up("a"), up("c"), up("e"), up("u")},
		markErr: map[string]error{
			"a": fmt.Errorf("job 7: %w: OpExecError", ganeti.ErrJobFailed),
			"u": fmt.Errorf("job 9 still running: %w", ganeti.ErrJobUnfinished),
			"e": fmt.Errorf("job 8: %w: HooksAbort: %se: it was decided ...", ganeti.ErrJobFailed, detect.StopRefused),
		},
	}
	s, _ := sources(t, x, fc)
	c := &recordingCluster{fakeCluster: fc, store: s.Store, atSubmitted: map[string]bool{}, inFlightAt: map[string]bool{}}
	res, err := Node(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	rep := res.Report
	failed := MarkDown(context.Background(), c, s, &rep)
	if d := cmp.Diff(map[string]bool{"a": true, "c": true, "e": true, "u": true}, c.inFlightAt); d != "" {
		t.Errorf("in flight when the job was submitted (-want +got):\n%s", d)
	}
	for _, name := range []string{"a", "c", "e"} {
		if _, found, err := s.Store.MarkDownInFlight(name); found || err != nil {
			t.Errorf("in-flight record of %s after its job: found %v, err %v", name, found, err)
		}
	}
	// u: the wait ended with the job unfinished: it may still run.
	if _, found, err := s.Store.MarkDownInFlight("u"); !found || err != nil {
		t.Errorf("in-flight record of an unfinished job removed: found %v, err %v", found, err)
	}
	if _, found, _ := s.Store.MarkDownRecord("e"); found {
		t.Error("mark-down record of e kept after the stop guard refused its job")
	}
	if !failed {
		t.Error("a's failed job not counted")
	}
	for _, j := range rep.Jobs {
		if j.Instance != "e" {
			continue
		}
		if j.Failed || j.Status != "refused" || !strings.Contains(j.Why, "was started again") || !strings.Contains(j.Why, "keeps running") {
			t.Errorf("refused job reported as %+v", j)
		}
	}
}
