package hooks

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/config"
	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/xen"
	"ganeti-userdown/internal/xen/xentest"
)

// newFakeXen is the in-memory toolstack holding doms.
func newFakeXen(doms ...xen.Domain) *xentest.Toolstack { return xentest.NewToolstack(doms...) }

var preserve = config.Default().Actions.ActionList()

func newRunner(t *testing.T, x *xentest.Toolstack) (*Runner, *state.Store) {
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
		{"powered off", []xen.Domain{xentest.Domain("Domain-0", 0, "", "r-----"), xentest.Domain("xen1.example.com", 7, "u7", "---s--"), xentest.Domain("web1.example.com", 8, "u8", "---s--")}, []int{7}, "destroyed domain 7"},
		{"crashed", []xen.Domain{xentest.Domain("xen1.example.com", 7, "u7", "---sc-")}, []int{7}, "destroyed domain 7"},
		{"running", []xen.Domain{xentest.Domain("xen1.example.com", 7, "u7", "-b----")}, nil, "no preserved dead domain"},
		{"paused", []xen.Domain{xentest.Domain("xen1.example.com", 7, "u7", "--p---")}, nil, "no preserved dead domain"},
		{"rebooting", []xen.Domain{xentest.Domain("xen1.example.com", 7, "u7", "---sr-")}, nil, "no preserved dead domain"},
		{"suspended", []xen.Domain{xentest.Domain("xen1.example.com", 7, "u7", "---ss-")}, nil, "no preserved dead domain"},
		{"dying", []xen.Domain{xentest.Domain("xen1.example.com", 7, "u7", "---s-d")}, nil, "no preserved dead domain"},
		{"name differs in case", []xen.Domain{xentest.Domain("XEN1.example.com", 7, "u7", "---s--")}, nil, "no preserved dead domain"},
		{"absent", []xen.Domain{xentest.Domain("Domain-0", 0, "", "r-----")}, nil, "no preserved dead domain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := newFakeXen(tt.doms...)
			r, _ := newRunner(t, x)
			out := r.Run(context.Background(), Decision{Actions: []Action{{Kind: DestroyDead, Instance: "xen1.example.com"}}})
			if len(out) != 1 || out[0].Failed() {
				t.Fatalf("outcome %+v", out)
			}
			if diff := cmp.Diff(tt.want, x.Destroyed()); diff != "" {
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
	x := &racingXen{Toolstack: newFakeXen(xentest.Domain("xen1.example.com", 7, "u7", "---s--"))}
	x.after = xentest.Domain("xen1.example.com", 7, "other-uuid", "-b----")
	r, _ := newRunner(t, x.Toolstack)
	r.Xen = x
	out := r.Run(context.Background(), Decision{Actions: []Action{{Kind: DestroyDead, Instance: "xen1.example.com"}}})
	if len(x.Destroyed()) != 0 {
		t.Fatalf("destroyed %v after the domain changed", x.Destroyed())
	}
	if !strings.Contains(out[0].Done, "left domain 7") {
		t.Errorf("done %q does not say the domain was left", out[0].Done)
	}
}

// racingXen replaces a domain right after it was listed.
type racingXen struct {
	*xentest.Toolstack
	after xen.Domain
}

func (r *racingXen) List(ctx context.Context) ([]xen.Domain, error) {
	l, err := r.Toolstack.List(ctx)
	r.Set(r.after)
	return l, err
}

// TestStartPreDumpsCrashedDomain: with [crash] dump_dir set, a crashed
// domain is dumped before the start's pre phase destroys it.
//
// Reference: design.md, "Configuration", [crash] dump_dir: "when set,
// dump-core crashed domains here before destroying".
func TestStartPreDumpsCrashedDomain(t *testing.T) {
	x := newFakeXen(xentest.Domain("xen1.example.com", 7, "u7", "---sc-"))
	r, _ := newRunner(t, x)
	r.DumpDir = t.TempDir()
	out := r.Run(context.Background(), Decision{Actions: []Action{{Kind: DestroyDead, Instance: "xen1.example.com"}}})
	want := filepath.Join(r.DumpDir, "xen1.example.com.20261125T010000.000Z.core")
	if diff := cmp.Diff([]string{"dump-core 7 " + filepath.Base(want), "destroy 7"}, x.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if !strings.Contains(out[0].Done, "core dumped to "+want) {
		t.Errorf("done %q", out[0].Done)
	}
}

// TestIntentsRecordedAndCleared: pre phases record an intent with the
// configured expiry, scoped to the instance's domains of the moment, and
// post phases clear only that op.
//
// Reference: design.md, "Hooks": instance-stop, instance-reboot,
// instance-remove "record an intent for the instance" / "clear it";
// "State files": "An intent covers only the domains it was recorded
// for."
func TestIntentsRecordedAndCleared(t *testing.T) {
	r, st := newRunner(t, newFakeXen(
		xentest.Domain("Domain-0", 0, "00000000-0000-0000-0000-000000000000", "r-----"),
		xentest.Domain("xen1.example.com", 7, "4ba122ea-0913-43ab-a12c-2a23ecaca36f", "-b----"),
		xentest.Domain("other.example.com", 8, "27209fc5-f579-46f3-89e5-fe9df487abf7", "---s--"),
	))
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
		{Instance: "xen1.example.com", Listed: true, DomIDs: []int{7}, Op: "migrate", Source: "hook", Created: now, Expires: now.Add(time.Hour)},
		{Instance: "xen1.example.com", Listed: true, DomIDs: []int{7}, Op: "stop", Source: "hook", Created: now, Expires: now.Add(time.Hour)},
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

// TestIntentScope: an instance with no domain here gets an intent that
// covers none (listed, no domids); when the domains cannot be listed the
// intent covers any domain of the instance, as before scoping.
//
// Reference: design.md, "State files": "An intent covers only the
// domains it was recorded for"; "one recorded without that knowledge
// covers every domain of its name".
func TestIntentScope(t *testing.T) {
	for _, tc := range []struct {
		name    string
		listErr error
		want    state.Intent
	}{
		{"no domain of the instance", nil, state.Intent{Listed: true}},
		{"listing failed", errors.New("xl list: timed out"), state.Intent{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := newFakeXen(xentest.Domain("other.example.com", 8, "27209fc5-f579-46f3-89e5-fe9df487abf7", "-b----"))
			x.ListErr = tc.listErr
			r, st := newRunner(t, x)
			now := r.Now()
			out := r.Run(context.Background(), Decision{Actions: []Action{{Kind: RecordIntent, Instance: "xen1.example.com", Op: "stop"}}})
			if out[0].Failed() {
				t.Fatalf("%+v", out[0])
			}
			want := tc.want
			want.Instance, want.Op, want.Source, want.Created, want.Expires = "xen1.example.com", "stop", "hook", now, now.Add(time.Hour)
			live, _ := st.Intents(now)
			if diff := cmp.Diff([]state.Intent{want}, live); diff != "" {
				t.Errorf("intents (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFreeMemoryDestroysChosen runs the action against the fake toolstack
// and a real intent store.
func TestFreeMemoryDestroysChosen(t *testing.T) {
	x := newFakeXen(
		xentest.Domain("stopped.example.com", 3, "u3", "---s--"),
		xentest.Domain("user.example.com", 5, "u5", "---s--"),
	)
	r, st := newRunner(t, x)
	if err := st.RecordIntent(NewIntent("stopped.example.com", "stop", r.Now(), time.Hour)); err != nil {
		t.Fatal(err)
	}
	out := r.Run(context.Background(), Decision{Actions: []Action{{Kind: FreeMemory, Instance: "new.example.com"}}})
	if out[0].Failed() {
		t.Fatalf("%+v", out[0])
	}
	if diff := cmp.Diff([]int{3}, x.Destroyed()); diff != "" {
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
	live := map[string]string{"on_poweroff": "preserve", "on_reboot": "restart", "on_watchdog": "destroy", "on_crash": "restart", "on_soft_reset": "soft-reset"}
	x.SetActions("xen1.example.com", live)
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
	live["on_crash"] = "preserve"
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
	x.SetActions("xen1.example.com", nil)
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
