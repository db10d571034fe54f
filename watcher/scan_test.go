package watcher

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/detect"
	"ganeti-userdown/internal/ganeti"
	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/xen"
	"ganeti-userdown/internal/xen/xentest"
	"ganeti-userdown/testdata/ganetifake"
)

const node = "node1.example.com"

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

var (
	running  = xentest.MustState(xen.XL, "r-----")
	poweroff = xentest.MustState(xen.XL, "---s--")
	crashed  = xentest.MustState(xen.XL, "---sc-")
	reboot   = xentest.MustState(xen.XL, "---sr-")
)

// newFakeXen is a node's toolstack in memory, dom0 and ds.
func newFakeXen(ds ...xen.Domain) *xentest.Toolstack {
	return xentest.NewToolstack(append([]xen.Domain{{Name: "Domain-0", ID: 0, State: running}}, ds...)...)
}

// fakeCluster is a Ganeti client in memory that counts every request.
type fakeCluster struct {
	instances  []ganeti.Instance
	locked     map[string]bool
	instErr    error
	lockErr    error
	markErr    map[string]error
	requests   []string
	markedDown []ganeti.MarkDownRequest
}

func (c *fakeCluster) Instances(_ context.Context, n string) ([]ganeti.Instance, error) {
	c.requests = append(c.requests, "instances "+n)
	return c.instances, c.instErr
}

func (c *fakeCluster) Locked(_ context.Context, names []string) (map[string]bool, error) {
	c.requests = append(c.requests, "locks "+strings.Join(names, ","))
	return c.locked, c.lockErr
}

func (c *fakeCluster) MarkDown(_ context.Context, r ganeti.MarkDownRequest) (ganeti.Job, error) {
	c.requests = append(c.requests, "markdown "+r.Name)
	if err := c.markErr[r.Name]; err != nil {
		return ganeti.Job{ID: 7, Status: "error", Error: "boom"}, err
	}
	c.markedDown = append(c.markedDown, r)
	return ganeti.Job{ID: int64(100 + len(c.markedDown)), Status: "success"}, nil
}

// StartUp is not used by the scan: a call fails the run's assertions
// through the recorded request.
func (c *fakeCluster) StartUp(_ context.Context, r ganeti.StartUpRequest) (ganeti.Job, error) {
	c.requests = append(c.requests, "startup "+r.Name)
	return ganeti.Job{}, errors.New("fakeCluster: startup not expected")
}

func up(name string, tags ...string) ganeti.Instance {
	return ganeti.Instance{Name: name, PrimaryNode: node, AdminState: ganeti.AdminUp, Tags: tags}
}

func dom(name string, id int, st xen.State) xen.Domain {
	return xen.Domain{Name: name, ID: id, UUID: "uuid-" + name, State: st}
}

func sources(t *testing.T, x *xentest.Toolstack, c *fakeCluster) (Sources, *int) {
	calls := 0
	return Sources{
		Node: node, Flavour: xen.XL, Xen: x,
		Cluster: func(context.Context) (ganeti.Client, error) {
			calls++
			return c, nil
		},
		Store:         state.Open(t.TempDir()),
		DefaultPolicy: detect.PolicyDown,
		Now:           func() time.Time { return t0 },
	}, &calls
}

// Reference: design.md, "Decisions": "Cost: when every local domain is
// running, detect and destroy make no request to the master."
func TestNoRequestWhenAllRun(t *testing.T) {
	x := newFakeXen(dom("a", 1, running), dom("b", 2, reboot))
	c := &fakeCluster{}
	s, built := sources(t, x, c)
	res, err := Node(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if *built != 0 || len(c.requests) != 0 {
		t.Errorf("cluster client built %d times, requests %v; want none", *built, c.requests)
	}
	for _, d := range res.Report.Domains {
		if d.Decision != detect.Running && d.Decision != detect.Dom0 {
			t.Errorf("%s: %s, want running", d.Name, d.Decision)
		}
	}
	if _, err := os.Stat(s.Store.ObservationsPath()); !os.IsNotExist(err) {
		t.Errorf("observations written although nothing is shut down: %v", err)
	}
}

// Reference: design.md, "Decisions": "Otherwise one config-only query,
// filtered to this node"; and the budget of at most two reads plus one job
// per instance to mark.
func TestRequestsPerRun(t *testing.T) {
	x := newFakeXen(dom("a", 1, poweroff), dom("b", 2, poweroff), dom("c", 3, running), dom("d", 4, crashed))
	c := &fakeCluster{instances: []ganeti.Instance{up("a"), up("b"), up("c"), up("d")}}
	s, _ := sources(t, x, c)
	res, err := Node(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	rep := res.Report
	if failed := MarkDown(context.Background(), res.Client, s, &rep); failed {
		t.Fatalf("mark down failed: %+v", rep.Jobs)
	}
	want := []string{"instances " + node, "locks a,b,d", "markdown a", "markdown b"}
	if d := cmp.Diff(want, c.requests); d != "" {
		t.Errorf("requests (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"a", "b"}, rep.MarkDown); d != "" {
		t.Errorf("MarkDown (-want +got):\n%s", d)
	}
	if len(c.markedDown) != 2 || !strings.Contains(c.markedDown[0].Reason, "ganeti-userdown") {
		t.Errorf("mark-down requests %+v: want two naming ganeti-userdown", c.markedDown)
	}
}

// Reference: design.md, "Decisions", safety rule 4: "When Xen or cluster
// state cannot be read or parsed, do nothing and say so."
func TestUnreadableStateChangesNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		x    *xentest.Toolstack
		c    *fakeCluster
	}{
		{"xen list fails", func() *xentest.Toolstack {
			f := newFakeXen(dom("a", 1, poweroff))
			f.ListErr = errors.New("xl list: exit 1")
			return f
		}(), &fakeCluster{}},
		{"instance query fails", newFakeXen(dom("a", 1, poweroff)), &fakeCluster{instErr: errors.New("503")}},
		{"lock query fails", newFakeXen(dom("a", 1, poweroff)), &fakeCluster{instances: []ganeti.Instance{up("a")}, lockErr: errors.New("503")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := sources(t, tc.x, tc.c)
			_, err := Node(context.Background(), s)
			var ue *UnreadableError
			if !errors.As(err, &ue) || ExitCode(err) != 3 {
				t.Fatalf("err = %v, want an UnreadableError (exit 3)", err)
			}
			for _, r := range tc.c.requests {
				if strings.HasPrefix(r, "markdown") {
					t.Errorf("acted: %s", r)
				}
			}
			if len(tc.x.Calls()) != 0 {
				t.Errorf("acted on Xen: %v", tc.x.Calls())
			}
		})
	}
}

// A failing instance does not stop the others, and an instance the
// cluster no longer knows is reported, not failed.
func TestMarkDownIsolatesFailures(t *testing.T) {
	x := newFakeXen(dom("a", 1, poweroff), dom("b", 2, poweroff), dom("c", 3, poweroff))
	x.Set(dom("d", 4, poweroff))
	c := &fakeCluster{
		instances: []ganeti.Instance{up("a"), up("b"), up("c"), up("d")},
		markErr: map[string]error{
			"a": fmt.Errorf("job 7: %w", ganeti.ErrJobFailed),
			"b": fmt.Errorf("mark down b: %w", ganeti.ErrInstanceGone),
			"d": fmt.Errorf("mark down d: job 7: %w", ganeti.ErrJobDeferred),
		},
	}
	s, _ := sources(t, x, c)
	res, err := Node(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	rep := res.Report
	if !MarkDown(context.Background(), res.Client, s, &rep) {
		t.Errorf("MarkDown reported no failure")
	}
	var got []string
	for _, j := range rep.Jobs {
		got = append(got, fmt.Sprintf("%s %s failed=%v", j.Instance, j.Status, j.Failed))
	}
	want := []string{"a error failed=true", "b gone failed=false", "c success failed=false", "d deferred failed=false"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("jobs (-want +got):\n%s", d)
	}
}

// Reference: design.md, "Decisions", safety rule 1: "Destroy re-reads the
// domain by domid right before acting and skips it if its uuid or state
// changed."; and safety rule 2: a user shutdown of an admin-up instance
// (policy down) is left for its mark-down.
func TestDestroyActsOnlyOnDestroyDecisions(t *testing.T) {
	x := newFakeXen(
		dom("user", 1, poweroff),    // admin up, policy down: mark-down, not destroyed
		dom("crash", 2, crashed),    // destroyed
		dom("down", 3, poweroff),    // admin down: destroyed
		dom("raced", 4, poweroff),   // admin down, but runs again before the act
		dom("other", 5, poweroff),   // not Ganeti's
		dom("restart", 6, poweroff), // tag userdown:restart: destroyed
	)
	x.OnLookup = func(f *xentest.Toolstack, id int) {
		if id == 4 {
			f.Set(dom("raced", 4, running))
		}
	}
	c := &fakeCluster{instances: []ganeti.Instance{
		up("user"), up("crash"), {Name: "down", PrimaryNode: node, AdminState: ganeti.AdminDown},
		{Name: "raced", PrimaryNode: node, AdminState: ganeti.AdminDown}, up("restart", "userdown:restart"),
	}}
	s, _ := sources(t, x, c)
	res, err := Node(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	rep := res.Report
	if Destroy(context.Background(), x, &rep, DestroyOptions{Now: s.Now}) {
		t.Fatalf("failed: %+v", rep.Actions)
	}
	if d := cmp.Diff([]string{"destroy 2", "destroy 3", "destroy 6"}, x.Calls()); d != "" {
		t.Errorf("toolstack calls (-want +got):\n%s", d)
	}
	var skipped []string
	for _, a := range rep.Actions {
		if a.Skipped != "" {
			skipped = append(skipped, a.Name)
		}
	}
	if d := cmp.Diff([]string{"raced"}, skipped); d != "" {
		t.Errorf("skipped (-want +got):\n%s", d)
	}
}

func TestDestroyDryRunChangesNothing(t *testing.T) {
	x := newFakeXen(dom("crash", 2, crashed))
	c := &fakeCluster{instances: []ganeti.Instance{up("crash")}}
	s, _ := sources(t, x, c)
	res, err := Node(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	rep := res.Report
	Destroy(context.Background(), x, &rep, DestroyOptions{DryRun: true, DumpDir: t.TempDir(), Keep: 1, Now: s.Now})
	if len(x.Calls()) != 0 {
		t.Errorf("dry run called %v", x.Calls())
	}
	if len(rep.Actions) != 1 || rep.Actions[0].Destroyed || !rep.Actions[0].DryRun || rep.Actions[0].Skipped != "" {
		t.Errorf("actions = %+v, want one would-destroy", rep.Actions)
	}
}

// Reference: design.md, "Configuration": "[crash] dump_dir: when set,
// dump-core crashed domains here before destroying; keep: dumps kept per
// instance".
func TestDestroyDumpsCrashesAndKeepsNewest(t *testing.T) {
	dumps := t.TempDir()
	old := []string{"crash.20261101T000000.000Z.core", "crash.20261102T000000.000Z.core", "crashy.20261101T000000.000Z.core"}
	for _, n := range old {
		if err := os.WriteFile(filepath.Join(dumps, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	x := newFakeXen(dom("crash", 2, crashed))
	c := &fakeCluster{instances: []ganeti.Instance{up("crash")}}
	s, _ := sources(t, x, c)
	s.DumpCrashes = true
	res, err := Node(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	rep := res.Report
	if Destroy(context.Background(), x, &rep, DestroyOptions{DumpDir: dumps, Keep: 2, Now: s.Now}) {
		t.Fatalf("failed: %+v", rep.Actions)
	}
	want := []string{"dump-core 2 crash.20261125T120000.000Z.core", "destroy 2"}
	if d := cmp.Diff(want, x.Calls()); d != "" {
		t.Errorf("calls (-want +got):\n%s", d)
	}
	ents, _ := os.ReadDir(dumps)
	var left []string
	for _, e := range ents {
		left = append(left, e.Name())
	}
	wantLeft := []string{"crash.20261102T000000.000Z.core", "crash.20261125T120000.000Z.core", "crashy.20261101T000000.000Z.core"}
	if d := cmp.Diff(wantLeft, left); d != "" {
		t.Errorf("dump dir (-want +got):\n%s", d)
	}
}

// The settle period works across runs through the persisted observations.
func TestSettleAcrossRuns(t *testing.T) {
	x := newFakeXen(dom("a", 1, poweroff))
	c := &fakeCluster{instances: []ganeti.Instance{up("a")}}
	s, _ := sources(t, x, c)
	s.Flavour, s.Settle = xen.XM, time.Minute
	clock := t0
	s.Now = func() time.Time { return clock }
	decisionOfA := func() detect.Kind {
		res, err := Node(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		Record(s, &res)
		return res.Report.Domains[1].Decision
	}
	if k := decisionOfA(); k != detect.Wait {
		t.Errorf("first sight: %s, want wait", k)
	}
	clock = t0.Add(30 * time.Second)
	if k := decisionOfA(); k != detect.Wait {
		t.Errorf("after 30s: %s, want wait", k)
	}
	clock = t0.Add(61 * time.Second)
	if k := decisionOfA(); k != detect.MarkDown {
		t.Errorf("after 61s: %s, want mark-down", k)
	}
	// It ran again in between (a reboot in flight seen twice): start over.
	x.Set(dom("a", 1, running))
	clock = t0.Add(62 * time.Second)
	decisionOfA()
	x.Set(dom("a", 1, poweroff))
	clock = t0.Add(90 * time.Second)
	if k := decisionOfA(); k != detect.Wait {
		t.Errorf("after running again: %s, want wait", k)
	}
}

// TestMarkDownRechecks: right before each mark-down the intents and the
// domain are read again; a decision whose ground changed since the scan
// is skipped and reported with why, and is not a failure.
//
// Reference: design.md, "Decisions", safety rule 3: "Never mark down an
// instance whose shutdown Ganeti or an operator asked for (intents from
// the shim and the hooks)"; and safety rule 2: the mark-down's job is what
// shuts down and destroys the domain, so a domain running again under the
// same name must not get it.
func TestMarkDownRechecks(t *testing.T) {
	for _, tc := range []struct {
		name string
		// between changes the node between the scan and the act.
		between  func(t *testing.T, x *xentest.Toolstack, s Sources)
		skipWhy  string // "" : submitted
		wantSent bool
	}{
		{"unchanged", func(*testing.T, *xentest.Toolstack, Sources) {}, "", true},
		{"a reboot finished: started again under a new domid", func(_ *testing.T, x *xentest.Toolstack, _ Sources) {
			x.Remove(5)
			x.Set(xen.Domain{Name: "a", ID: 6, UUID: "uuid-a2", State: running})
		}, "domain 5 is gone", false},
		{"same domid, now another uuid", func(_ *testing.T, x *xentest.Toolstack, _ Sources) {
			x.Set(xen.Domain{Name: "a", ID: 5, UUID: "uuid-other", State: poweroff})
		}, `now has uuid "uuid-other"`, false},
		{"same domid, renamed", func(_ *testing.T, x *xentest.Toolstack, _ Sources) {
			x.Set(xen.Domain{Name: "a-old", ID: 5, UUID: "uuid-a", State: poweroff})
		}, `now named "a-old"`, false},
		{"same domain, now crashed state", func(_ *testing.T, x *xentest.Toolstack, _ Sources) {
			x.Set(dom("a", 5, crashed))
		}, "no longer powered off", false},
		{"a hook recorded an intent", func(t *testing.T, _ *xentest.Toolstack, s Sources) {
			if err := s.Store.RecordIntent(state.Intent{Instance: "a", Op: "reboot", Source: "hook", Created: t0, Expires: t0.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}, "an intent now covers it: reboot", false},
		{"the shim recorded an intent for the uuid", func(t *testing.T, _ *xentest.Toolstack, s Sources) {
			if err := s.Store.RecordIntent(state.Intent{UUID: "UUID-A", DomID: 5, Op: "shutdown", Source: "shim", Created: t0, Expires: t0.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}, "an intent now covers it: shutdown", false},
		{"an expired intent does not count", func(t *testing.T, _ *xentest.Toolstack, s Sources) {
			if err := s.Store.RecordIntent(state.Intent{Instance: "a", Op: "stop", Source: "hook", Created: t0.Add(-time.Hour), Expires: t0.Add(-time.Minute)}); err != nil {
				t.Fatal(err)
			}
		}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := newFakeXen(dom("a", 5, poweroff))
			c := &fakeCluster{instances: []ganeti.Instance{up("a")}}
			s, _ := sources(t, x, c)
			res, err := Node(context.Background(), s)
			if err != nil {
				t.Fatal(err)
			}
			rep := res.Report
			if d := cmp.Diff([]string{"a"}, rep.MarkDown); d != "" {
				t.Fatalf("decided (-want +got):\n%s", d)
			}
			tc.between(t, x, s)
			if MarkDown(context.Background(), res.Client, s, &rep) {
				t.Errorf("a skipped mark-down counted as a failure: %+v", rep.Jobs)
			}
			sent := len(c.markedDown) == 1
			if sent != tc.wantSent {
				t.Errorf("mark-down submitted = %v, want %v (requests %v)", sent, tc.wantSent, c.requests)
			}
			if len(rep.Jobs) != 1 {
				t.Fatalf("jobs %+v, want one", rep.Jobs)
			}
			j := rep.Jobs[0]
			switch {
			case tc.skipWhy == "" && j.Status != "success":
				t.Errorf("job %+v, want success", j)
			case tc.skipWhy != "" && (j.Status != "skipped" || !strings.Contains(j.Why, tc.skipWhy)):
				t.Errorf("job %+v, want skipped mentioning %q", j, tc.skipWhy)
			}
		})
	}
}

// TestRebootBetweenScanAndMarkDown plays the race against the Ganeti RAPI
// fake: the scan sees the domain that a Ganeti reboot shut down, after
// the reboot's post hook cleared its intent; the reboot then finishes,
// starting the instance under a new domid, before the act. No shutdown
// job reaches Ganeti and the instance stays up.
//
// Reference: design.md, "Decisions", safety rule 3: "Never mark down an
// instance whose shutdown Ganeti or an operator asked for"; and safety
// rule 2 ("Never destroy a user-shut-down domain of an instance that
// Ganeti still wants up before Ganeti has marked it down"): here there is
// no user shutdown at all, and the job would stop the running domain.
func TestRebootBetweenScanAndMarkDown(t *testing.T) {
	f := ganetifake.Start(t, ganetifake.State{
		Cluster:   ganetifake.ClusterInfo{Name: "cluster.example.com", Master: node},
		Instances: []ganetifake.Instance{{Name: "a", PrimaryNode: node, AdminState: "up"}},
	})
	client, err := ganeti.NewRAPI(ganeti.RAPIOptions{URL: f.URL, CAFile: f.CAFile, CredentialsFile: f.WriterCredentials, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	x := newFakeXen(dom("a", 5, poweroff)) // shut down by the reboot job
	s, _ := sources(t, x, nil)
	s.Cluster = func(context.Context) (ganeti.Client, error) { return client, nil }
	res, err := Node(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	rep := res.Report
	if d := cmp.Diff([]string{"a"}, rep.MarkDown); d != "" {
		t.Fatalf("the race did not happen: decided (-want +got):\n%s", d)
	}
	// The reboot starts the instance again.
	x.Remove(5)
	x.Set(xen.Domain{Name: "a", ID: 6, UUID: "uuid-a-new", State: running})

	if MarkDown(context.Background(), res.Client, s, &rep) {
		t.Errorf("failed: %+v", rep.Jobs)
	}
	for _, r := range f.Requests() {
		if strings.HasSuffix(r.Path, "/shutdown") || strings.HasPrefix(r.Path, "/2/jobs") {
			t.Errorf("request reached Ganeti: %s %s", r.Method, r.Path)
		}
	}
	if st := f.State(); st.Instances[0].AdminState != "up" || len(st.Jobs) != 0 {
		t.Errorf("instance admin %s, jobs %+v; want up and no job", st.Instances[0].AdminState, st.Jobs)
	}
	if len(rep.Jobs) != 1 || rep.Jobs[0].Status != "skipped" || !strings.Contains(rep.Jobs[0].Why, "domain 5 is gone") {
		t.Errorf("jobs %+v, want a in the report as skipped: domain 5 is gone", rep.Jobs)
	}
}
