package watcher

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/ganeti"
	"ganeti-userdown/internal/state"
)

// recordingCluster checks, at the moment each mark-down is submitted,
// whether the start guard's record of the instance is already written.
type recordingCluster struct {
	*fakeCluster
	store       *state.Store
	atSubmitted map[string]bool
}

func (c *recordingCluster) MarkDown(ctx context.Context, r ganeti.MarkDownRequest) (ganeti.Job, error) {
	_, found, err := c.store.MarkDownRecord(r.Name)
	c.atSubmitted[r.Name] = found && err == nil
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
