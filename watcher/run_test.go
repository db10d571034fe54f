package watcher

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/ganeti"
	"ganeti-userdown/internal/metrics"
	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/xen/xentest"
)

// startingCluster is fakeCluster that starts instances, and whose
// instances may change after the first query (an operator acting between
// the scan and the start).
type startingCluster struct {
	*fakeCluster
	started  []ganeti.StartUpRequest
	startErr error
	queries  int
	// after replaces the instances from the second query on.
	after []ganeti.Instance
}

func (c *startingCluster) Instances(ctx context.Context, n string) ([]ganeti.Instance, error) {
	c.queries++
	if c.queries > 1 && c.after != nil {
		c.fakeCluster.instances = c.after
	}
	return c.fakeCluster.Instances(ctx, n)
}

func (c *startingCluster) StartUp(_ context.Context, r ganeti.StartUpRequest) (ganeti.Job, error) {
	c.requests = append(c.requests, "startup "+r.Name)
	if c.startErr != nil {
		return ganeti.Job{ID: 9, Status: "error"}, c.startErr
	}
	c.started = append(c.started, r)
	return ganeti.Job{ID: int64(200 + len(c.started)), Status: "success"}, nil
}

func runSources(t *testing.T, x *xentest.Toolstack, c ganeti.Client) Sources {
	s, _ := sources(t, x, nil)
	s.Cluster = func(context.Context) (ganeti.Client, error) { return c, nil }
	return s
}

// Reference: doc/design.md, "Event daemon": a crashed domain of an
// instance Ganeti wants up is destroyed, then the instance is started
// through Ganeti, after a fresh look at the cluster.
func TestRunDestroysAndStartsCrashes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		after     []ganeti.Instance
		intent    *state.Intent
		startErr  error
		wantReqs  []string
		wantStart []string
		failed    bool
	}{
		{name: "crash of an admin-up instance",
			wantReqs:  []string{"instances " + node, "locks crash,user", "markdown user", "instances " + node, "locks crash", "startup crash"},
			wantStart: []string{"crash started=true"}},
		{name: "marked down by an operator after the scan",
			after:     []ganeti.Instance{up("user"), {Name: "crash", PrimaryNode: node, AdminState: ganeti.AdminDown}},
			wantReqs:  []string{"instances " + node, "locks crash,user", "markdown user", "instances " + node, "locks crash"},
			wantStart: []string{"crash started=false skipped"}},
		{name: "an intent recorded after the scan",
			intent:    &state.Intent{Instance: "crash", Op: "stop", Source: "hook"},
			wantReqs:  []string{"instances " + node, "locks crash,user", "markdown user", "instances " + node, "locks crash"},
			wantStart: []string{"crash started=false skipped"}},
		{name: "the start fails",
			startErr:  fmt.Errorf("job 9: %w", ganeti.ErrJobFailed),
			wantReqs:  []string{"instances " + node, "locks crash,user", "markdown user", "instances " + node, "locks crash", "startup crash"},
			wantStart: []string{"crash started=false error"}, failed: true},
		{name: "the start waits behind another job",
			startErr:  fmt.Errorf("job 9: %w", ganeti.ErrJobDeferred),
			wantReqs:  []string{"instances " + node, "locks crash,user", "markdown user", "instances " + node, "locks crash", "startup crash"},
			wantStart: []string{"crash started=false deferred"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := newFakeXen(dom("crash", 2, crashed), dom("user", 3, poweroff), dom("web", 4, running))
			c := &startingCluster{fakeCluster: &fakeCluster{instances: []ganeti.Instance{up("crash"), up("user"), up("web")}}, after: tc.after, startErr: tc.startErr}
			s := runSources(t, x, c)
			if tc.intent != nil {
				// Recorded by a hook between the scan and the start:
				// right after the destruction.
				it := *tc.intent
				it.Created, it.Expires = t0, t0.Add(60*60e9)
				x.OnLookup = func(*xentest.Toolstack, int) {
					if err := s.Store.RecordIntent(it); err != nil {
						t.Error(err)
					}
				}
			}
			rc := &metrics.Recorder{Store: s.Store}
			rep, failed, err := Run(context.Background(), s, x, RunOptions{MarkDown: true, Destroy: true, Source: "test", Metrics: rc, DestroyOptions: DestroyOptions{Now: s.Now}})
			if err != nil {
				t.Fatal(err)
			}
			if failed != tc.failed {
				t.Errorf("failed = %v, want %v (%+v)", failed, tc.failed, rep.Starts)
			}
			if d := cmp.Diff(tc.wantReqs, c.requests); d != "" {
				t.Errorf("requests (-want +got):\n%s", d)
			}
			var got []string
			for _, st := range rep.Starts {
				got = append(got, fmt.Sprintf("%s started=%v %s", st.Instance, st.Started, st.Status))
			}
			for i := range got {
				got[i] = strings.TrimSuffix(got[i], " success")
			}
			if d := cmp.Diff(tc.wantStart, got); d != "" {
				t.Errorf("starts (-want +got):\n%s", d)
			}
			for _, r := range c.started {
				if !strings.Contains(r.Reason, "ganeti-userdown") {
					t.Errorf("start reason %q does not name ganeti-userdown", r.Reason)
				}
			}
			tot, err := metrics.Load(rc.Store)
			if err != nil {
				t.Fatal(err)
			}
			st := tot.Sources["test"]
			wantRestarts := float64(len(c.started))
			if st == nil || st.Runs != 1 || st.Destroys != 1 || st.MarkDowns != 1 || st.CrashRestarts != wantRestarts || st.Decisions["running"] != 1 {
				t.Errorf("metrics: %+v", st)
			}
			if tc.failed && st.Failures["start"] != 1 {
				t.Errorf("failed start not counted: %+v", st.Failures)
			}
		})
	}
}

// A run that cannot read the state changes nothing and counts one
// failure; no crash destroyed means no second query.
func TestRunUnreadableAndNoCrash(t *testing.T) {
	x := newFakeXen(dom("a", 1, poweroff))
	x.ListErr = errors.New("xl list: exit 1")
	c := &startingCluster{fakeCluster: &fakeCluster{instances: []ganeti.Instance{up("a")}}}
	s := runSources(t, x, c)
	rc := &metrics.Recorder{Store: s.Store}
	if _, _, err := Run(context.Background(), s, x, RunOptions{MarkDown: true, Destroy: true, Source: "test", Metrics: rc}); err == nil {
		t.Fatal("no error")
	}
	tot, _ := metrics.Load(rc.Store)
	if st := tot.Sources["test"]; st == nil || st.Failures["unreadable"] != 1 {
		t.Errorf("unreadable run not counted: %+v", st)
	}
	x.ListErr = nil
	rep, _, err := Run(context.Background(), s, x, RunOptions{MarkDown: true, Destroy: true, Source: "test", Metrics: rc})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"instances " + node, "locks a", "markdown a"}, c.requests); d != "" || len(rep.Starts) != 0 {
		t.Errorf("requests (-want +got):\n%s; starts %+v", d, rep.Starts)
	}
}
