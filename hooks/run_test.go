package hooks

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/config"
	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/xen"
)

// dom builds a domain from xl's state letters.
func dom(t *testing.T, name string, id int, uuid, letters string) xen.Domain {
	t.Helper()
	st, err := xen.ParseState(xen.XL, letters)
	if err != nil {
		t.Fatal(err)
	}
	return xen.Domain{Name: name, ID: id, UUID: uuid, State: st, MemMiB: 512, VCPUs: 1}
}

// fakeXen is an in-memory toolstack: a domain table by domid, live
// actions by name, and a record of what was done to it.
type fakeXen struct {
	doms      map[int]xen.Domain
	actions   map[string]map[string]string
	destroyed []int
	dumped    []string
	listErr   error
}

func newFakeXen(doms ...xen.Domain) *fakeXen {
	f := &fakeXen{doms: map[int]xen.Domain{}, actions: map[string]map[string]string{}}
	for _, d := range doms {
		f.doms[d.ID] = d
	}
	return f
}

func (f *fakeXen) List(ctx context.Context) ([]xen.Domain, error) {
	if f.listErr != nil {
		return nil, f.listErr
	}
	var out []xen.Domain
	for _, d := range f.doms {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (f *fakeXen) Lookup(ctx context.Context, domid int) (xen.Domain, bool, error) {
	d, ok := f.doms[domid]
	return d, ok, nil
}

func (f *fakeXen) Destroy(ctx context.Context, domid int) error {
	if _, ok := f.doms[domid]; !ok {
		return fmt.Errorf("domain %d does not exist", domid)
	}
	delete(f.doms, domid)
	f.destroyed = append(f.destroyed, domid)
	return nil
}

func (f *fakeXen) Actions(ctx context.Context, name string) (map[string]string, error) {
	a, ok := f.actions[name]
	if !ok {
		return nil, fmt.Errorf("xl list -l %s: domain does not exist", name)
	}
	return a, nil
}

func (f *fakeXen) DumpCore(ctx context.Context, domid int, path string) error {
	f.dumped = append(f.dumped, path)
	return os.WriteFile(path, []byte("core"), 0o600)
}

var preserve = config.Default().Actions.ActionList()

func newRunner(t *testing.T, x *fakeXen) (*Runner, *state.Store) {
	t.Helper()
	st := state.Open(t.TempDir())
	return &Runner{
		Xen:       x,
		Intents:   st,
		ConfigDir: t.TempDir(),
		Actions:   preserve,
		IntentTTL: time.Hour,
		Now:       func() time.Time { return time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC) },
	}, st
}

// TestStartPreDestroysOnlyThisInstancesDeadDomain: the start's pre phase
// destroys the preserved dead domain of the instance being started, and
// nothing else.
//
// Reference: design.md, "Hooks": instance-start pre "destroy a preserved
// dead domain of this instance (the admin is starting it)"; "Decisions",
// safety rule 1: "Never destroy a domain that is not shut down or
// crashed."
func TestStartPreDestroysOnlyThisInstancesDeadDomain(t *testing.T) {
	tests := []struct {
		name    string
		doms    []xen.Domain
		want    []int
		wantMsg string
	}{
		{"powered off", []xen.Domain{dom(t, "Domain-0", 0, "", "r-----"), dom(t, "xen1.example.com", 7, "u7", "---s--"), dom(t, "web1.example.com", 8, "u8", "---s--")}, []int{7}, "destroyed domain 7"},
		{"crashed", []xen.Domain{dom(t, "xen1.example.com", 7, "u7", "---sc-")}, []int{7}, "destroyed domain 7"},
		{"running", []xen.Domain{dom(t, "xen1.example.com", 7, "u7", "-b----")}, nil, "no preserved dead domain"},
		{"paused", []xen.Domain{dom(t, "xen1.example.com", 7, "u7", "--p---")}, nil, "no preserved dead domain"},
		{"rebooting", []xen.Domain{dom(t, "xen1.example.com", 7, "u7", "---sr-")}, nil, "no preserved dead domain"},
		{"suspended", []xen.Domain{dom(t, "xen1.example.com", 7, "u7", "---ss-")}, nil, "no preserved dead domain"},
		{"dying", []xen.Domain{dom(t, "xen1.example.com", 7, "u7", "---s-d")}, nil, "no preserved dead domain"},
		{"name differs in case", []xen.Domain{dom(t, "XEN1.example.com", 7, "u7", "---s--")}, nil, "no preserved dead domain"},
		{"absent", []xen.Domain{dom(t, "Domain-0", 0, "", "r-----")}, nil, "no preserved dead domain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := newFakeXen(tt.doms...)
			r, _ := newRunner(t, x)
			out := r.Run(context.Background(), Decision{Actions: []Action{{Kind: DestroyDead, Instance: "xen1.example.com"}}})
			if len(out) != 1 || out[0].Failed() {
				t.Fatalf("outcome %+v", out)
			}
			if diff := cmp.Diff(tt.want, x.destroyed); diff != "" {
				t.Errorf("destroyed (-want +got):\n%s", diff)
			}
			if !strings.Contains(out[0].Done, tt.wantMsg) {
				t.Errorf("done %q, want %q in it", out[0].Done, tt.wantMsg)
			}
		})
	}
}

// TestStartPreRechecksBeforeDestroying: a domain that came back to life
// between the listing and the destruction is left alone.
//
// Reference: design.md, "Decisions", safety rule 1: "Destroy re-reads the
// domain by domid right before acting and skips it if its uuid or state
// changed."
func TestStartPreRechecksBeforeDestroying(t *testing.T) {
	x := &racingXen{fakeXen: newFakeXen(dom(t, "xen1.example.com", 7, "u7", "---s--"))}
	x.after = dom(t, "xen1.example.com", 7, "other-uuid", "-b----")
	r, _ := newRunner(t, x.fakeXen)
	r.Xen = x
	out := r.Run(context.Background(), Decision{Actions: []Action{{Kind: DestroyDead, Instance: "xen1.example.com"}}})
	if len(x.destroyed) != 0 {
		t.Fatalf("destroyed %v after the domain changed", x.destroyed)
	}
	if !strings.Contains(out[0].Done, "left domain 7") {
		t.Errorf("done %q does not say the domain was left", out[0].Done)
	}
}

// racingXen replaces a domain right after it was listed.
type racingXen struct {
	*fakeXen
	after xen.Domain
}

func (r *racingXen) List(ctx context.Context) ([]xen.Domain, error) {
	l, err := r.fakeXen.List(ctx)
	r.doms[r.after.ID] = r.after
	return l, err
}

// TestStartPreDumpsCrashedDomain: with [crash] dump_dir set, a crashed
// domain is dumped before the start's pre phase destroys it.
//
// Reference: design.md, "Configuration", [crash] dump_dir: "when set,
// dump-core crashed domains here before destroying".
func TestStartPreDumpsCrashedDomain(t *testing.T) {
	x := newFakeXen(dom(t, "xen1.example.com", 7, "u7", "---sc-"))
	r, _ := newRunner(t, x)
	r.DumpDir = t.TempDir()
	out := r.Run(context.Background(), Decision{Actions: []Action{{Kind: DestroyDead, Instance: "xen1.example.com"}}})
	want := filepath.Join(r.DumpDir, "xen1.example.com.20261125T010000.000Z.core")
	if diff := cmp.Diff([]string{want}, x.dumped); diff != "" {
		t.Errorf("dumps (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{7}, x.destroyed); diff != "" {
		t.Errorf("destroyed (-want +got):\n%s", diff)
	}
	if !strings.Contains(out[0].Done, "core dumped to "+want) {
		t.Errorf("done %q", out[0].Done)
	}
}

// TestIntentsRecordedAndCleared: pre phases record an intent with the
// configured expiry, post phases clear only that op.
//
// Reference: design.md, "Hooks": instance-stop, instance-reboot,
// instance-remove "record an intent for the instance" / "clear it".
func TestIntentsRecordedAndCleared(t *testing.T) {
	r, st := newRunner(t, newFakeXen())
	ctx := context.Background()
	now := r.Now()
	out := r.Run(ctx, Decision{Actions: []Action{
		{Kind: RecordIntent, Instance: "xen1.example.com", Op: "stop"},
		{Kind: RecordIntent, Instance: "xen1.example.com", Op: "migrate"},
	}})
	for _, o := range out {
		if o.Failed() {
			t.Fatalf("%+v", o)
		}
	}
	live, problems := st.Intents(now)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	want := []state.Intent{
		{Instance: "xen1.example.com", Op: "migrate", Source: "hook", Created: now, Expires: now.Add(time.Hour)},
		{Instance: "xen1.example.com", Op: "stop", Source: "hook", Created: now, Expires: now.Add(time.Hour)},
	}
	if diff := cmp.Diff(want, live); diff != "" {
		t.Errorf("intents (-want +got):\n%s", diff)
	}
	r.Run(ctx, Decision{Actions: []Action{{Kind: ClearIntents, Instance: "xen1.example.com", Op: "stop"}}})
	live, _ = st.Intents(now)
	if diff := cmp.Diff(want[:1], live); diff != "" {
		t.Errorf("after clearing stop (-want +got):\n%s", diff)
	}
	// An intent no longer counts after the TTL.
	live, _ = st.Intents(now.Add(time.Hour + time.Second))
	if len(live) != 0 {
		t.Errorf("intents live after their TTL: %v", live)
	}
}

// TestFreeable: only the certainly safe preserved domains are chosen.
//
// Reference: design.md, "Hooks": instance-add and move targets "destroy
// preserved domains of down instances"; "Decisions", safety rule 2:
// "Never destroy a user-shut-down domain of an instance that Ganeti still
// wants up before Ganeti has marked it down".
func TestFreeable(t *testing.T) {
	now := time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC)
	doms := []xen.Domain{
		dom(t, "Domain-0", 0, "", "r-----"),
		dom(t, "stopped.example.com", 3, "u3", "---s--"),   // hook intent
		dom(t, "shim.example.com", 4, "U4", "---s--"),      // shim intent by uuid (case differs)
		dom(t, "user.example.com", 5, "u5", "---s--"),      // no intent: maybe a user shutdown
		dom(t, "crashed.example.com", 6, "u6", "---sc-"),   // crash, no intent
		dom(t, "coming.example.com", 7, "u7", "---s--"),    // leftover of the coming instance
		dom(t, "running.example.com", 8, "u8", "-b----"),   // alive, even with an intent
		dom(t, "rebooting.example.com", 9, "u9", "---sr-"), // in flight, even with an intent
	}
	intents := []state.Intent{
		NewIntent("stopped.example.com", "stop", now, time.Hour),
		{UUID: "u4", Op: "shutdown", Source: "shim", Created: now, Expires: now.Add(time.Hour)},
		NewIntent("running.example.com", "stop", now, time.Hour),
		NewIntent("rebooting.example.com", "reboot", now, time.Hour),
	}
	chosen, skipped := Freeable(doms, intents, "coming.example.com")
	ids := func(c []Candidate) []int {
		var out []int
		for _, x := range c {
			out = append(out, x.Domain.ID)
		}
		return out
	}
	if diff := cmp.Diff([]int{3, 4, 7}, ids(chosen)); diff != "" {
		t.Errorf("chosen (-want +got):\n%s", diff)
	}
	var skippedIDs []int
	for _, s := range skipped {
		skippedIDs = append(skippedIDs, s.Domain.ID)
		if s.Why == "" {
			t.Errorf("domain %d skipped without a reason", s.Domain.ID)
		}
	}
	sort.Ints(skippedIDs)
	if diff := cmp.Diff([]int{5, 6, 9}, skippedIDs); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
}

// TestFreeMemoryDestroysChosen runs the action against the fake toolstack
// and a real intent store.
func TestFreeMemoryDestroysChosen(t *testing.T) {
	x := newFakeXen(
		dom(t, "stopped.example.com", 3, "u3", "---s--"),
		dom(t, "user.example.com", 5, "u5", "---s--"),
	)
	r, st := newRunner(t, x)
	if err := st.RecordIntent(NewIntent("stopped.example.com", "stop", r.Now(), time.Hour)); err != nil {
		t.Fatal(err)
	}
	out := r.Run(context.Background(), Decision{Actions: []Action{{Kind: FreeMemory, Instance: "new.example.com"}}})
	if out[0].Failed() {
		t.Fatalf("%+v", out[0])
	}
	if diff := cmp.Diff([]int{3}, x.destroyed); diff != "" {
		t.Errorf("destroyed (-want +got):\n%s", diff)
	}
	if !strings.Contains(out[0].Done, "1 preserved domain(s) left to the watcher") {
		t.Errorf("done %q", out[0].Done)
	}
}

const storedConfig = `# Xen configuration generated by Ganeti
kernel = '/boot/vmlinuz-xenU'
memory = 128
name = 'xen1.example.com'
on_poweroff = 'preserve'
on_reboot = 'restart'
on_crash = 'restart'
`

// TestStartPostRewritesAndVerifies: the start's post phase rewrites the
// stored config and fails with one line when the live domain lacks
// preserve.
//
// Reference: design.md, "Hooks": instance-start post "rewrite
// /etc/xen/<instance>; verify the live domain's actions, exit 1 with a
// clear message if not preserve".
func TestStartPostRewritesAndVerifies(t *testing.T) {
	x := newFakeXen()
	r, _ := newRunner(t, x)
	path := filepath.Join(r.ConfigDir, "xen1.example.com")
	if err := os.WriteFile(path, []byte(storedConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	x.actions["xen1.example.com"] = map[string]string{"on_poweroff": "preserve", "on_reboot": "restart", "on_watchdog": "destroy", "on_crash": "restart", "on_soft_reset": "soft-reset"}
	d := Decision{Actions: []Action{{Kind: RewriteConfig, Instance: "xen1.example.com"}, {Kind: VerifyActions, Instance: "xen1.example.com"}}}
	out := r.Run(context.Background(), d)
	if out[0].Failed() || !strings.Contains(out[0].Done, "rewrote "+path) {
		t.Errorf("rewrite: %+v", out[0])
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), "on_crash = 'preserve'") {
		t.Errorf("config not rewritten:\n%s", b)
	}
	wantProblem := "instance xen1.example.com runs with on_crash=restart (want preserve): a shutdown from inside will not be kept for detection; check that the toolstack shim is installed (userdown-hvconfig doctor)"
	if out[1].Problem != wantProblem {
		t.Errorf("problem:\n got %q\nwant %q", out[1].Problem, wantProblem)
	}

	// Once the domain runs with preserve, both pass; the file is left as is.
	x.actions["xen1.example.com"]["on_crash"] = "preserve"
	out = r.Run(context.Background(), d)
	for _, o := range out {
		if o.Failed() {
			t.Errorf("%+v", o)
		}
	}
	if !strings.Contains(out[0].Done, "already has") {
		t.Errorf("second rewrite: %q", out[0].Done)
	}

	// A domain that is not there is an error, not a pass.
	delete(x.actions, "xen1.example.com")
	out = r.Run(context.Background(), Decision{Actions: d.Actions[1:]})
	if out[0].Err == nil {
		t.Errorf("verify of a missing domain passed: %+v", out[0])
	}
}

// TestRewriteMissingConfig: a missing stored config fails the start's
// post phase, but is fine on a move target.
func TestRewriteMissingConfig(t *testing.T) {
	r, _ := newRunner(t, newFakeXen())
	out := r.Run(context.Background(), Decision{Actions: []Action{
		{Kind: RewriteConfig, Instance: "xen1.example.com"},
		{Kind: RewriteConfig, Instance: "xen1.example.com", Optional: true},
	}})
	if out[0].Err == nil {
		t.Errorf("missing config on start: %+v", out[0])
	}
	if out[1].Failed() || !strings.Contains(out[1].Done, "no stored config") {
		t.Errorf("missing config on a target: %+v", out[1])
	}
}

// TestRunRejectsHandBuiltBadName: Run validates names again.
func TestRunRejectsHandBuiltBadName(t *testing.T) {
	r, _ := newRunner(t, newFakeXen())
	out := r.Run(context.Background(), Decision{Actions: []Action{{Kind: RewriteConfig, Instance: "../../etc/passwd"}}})
	if out[0].Err == nil {
		t.Fatal("accepted a path as an instance name")
	}
}

func TestMissingActions(t *testing.T) {
	live := map[string]string{"on_poweroff": "preserve", "on_crash": "coredump-restart", "on_reboot": "restart"}
	want := []config.KeyValue{{Key: "on_poweroff", Value: "preserve"}, {Key: "on_crash", Value: "preserve"}, {Key: "on_shutdown", Value: "preserve"}}
	got := MissingActions(live, want)
	if diff := cmp.Diff([]Mismatch{{Key: "on_crash", Want: "preserve", Got: "coredump-restart"}}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
