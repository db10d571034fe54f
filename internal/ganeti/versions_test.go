package ganeti

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/testdata/ganetifake"
)

func versionFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "versions", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLockFormatsPerVersion reads the lock query of every version, through
// both backends' parsers, on literal outputs: Ganeti 2.10 (thread-name
// owners, every lock listed, null for free), 2.12 and later (job ids as
// strings, other clients JSON-quoted), 3.0.2 (captured). Any owner or
// pending entry, whatever its spelling, means held; a job id is read where
// the text carries one.
//
// Reference: doc/design.md, "Safety rules", rule 3: never mark down an
// instance that a Ganeti job holds.
func TestLockFormatsPerVersion(t *testing.T) {
	names := []string{"web1.example.com", "db1.example.com", "mail1.example.com"}
	cases := []struct {
		name       string
		parse      func([]byte) ([]Lock, error)
		file       string
		wantLocked map[string]bool
		// wantMail1 is lock instance/mail1.example.com as parsed.
		wantMail1 Lock
	}{
		{
			name: "2.10 rapi busy", parse: ParseLockQuery, file: "2.10-query-lock-busy.json",
			wantLocked: map[string]bool{"mail1.example.com": true},
			wantMail1: Lock{Name: "instance/mail1.example.com", Mode: "exclusive",
				Owners:  []LockHolder{{"Jq3/Job15/I_SHUTDOWN", 15}},
				Pending: []LockHolder{{"Jq1/Job16/I_STARTUP", 16}}},
		},
		{
			name: "2.10 cli busy", parse: ParseLockList, file: "2.10-gnt-debug-locks-busy.txt",
			wantLocked: map[string]bool{"mail1.example.com": true},
			wantMail1: Lock{Name: "instance/mail1.example.com", Mode: "exclusive",
				Owners:  []LockHolder{{"Jq3/Job15/I_SHUTDOWN", 15}},
				Pending: []LockHolder{{"Jq1/Job16/I_STARTUP", 16}}},
		},
		{
			name: "2.10 rapi idle", parse: ParseLockQuery, file: "2.10-query-lock-idle.json",
			wantLocked: map[string]bool{}, wantMail1: Lock{Name: "instance/mail1.example.com"},
		},
		{
			name: "2.10 cli idle", parse: ParseLockList, file: "2.10-gnt-debug-locks-idle.txt",
			wantLocked: map[string]bool{}, wantMail1: Lock{Name: "instance/mail1.example.com"},
		},
		{
			name: "2.12 rapi other client", parse: ParseLockQuery, file: "2.12-query-lock-other-client.json",
			wantLocked: map[string]bool{"mail1.example.com": true, "db1.example.com": true},
			wantMail1: Lock{Name: "instance/mail1.example.com", Mode: "exclusive",
				Owners: []LockHolder{{"31", 31}}, Pending: []LockHolder{{"32", 32}}},
		},
		{
			name: "2.12 cli other client", parse: ParseLockList, file: "2.12-gnt-debug-locks-other-client.txt",
			wantLocked: map[string]bool{"mail1.example.com": true, "db1.example.com": true},
			wantMail1: Lock{Name: "instance/mail1.example.com", Mode: "exclusive",
				Owners: []LockHolder{{"31", 31}}, Pending: []LockHolder{{"32", 32}}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			locks, err := tc.parse(versionFixture(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.wantLocked, LockedInstances(locks, names)); d != "" {
				t.Errorf("locked (-want +got):\n%s", d)
			}
			var mail1 Lock
			for _, l := range locks {
				if l.Name == "instance/mail1.example.com" {
					mail1 = l
				}
			}
			if d := cmp.Diff(tc.wantMail1, mail1); d != "" {
				t.Errorf("instance/mail1 (-want +got):\n%s", d)
			}
		})
	}
	// The other 2.x rows parse too: job/<id> rows with numeric pending
	// ids, rpc/ rows with a thread owner and null pending.
	locks, err := ParseLockQuery(versionFixture(t, "2.10-query-lock-busy.json"))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Lock{}
	for _, l := range locks {
		byName[l.Name] = l
	}
	if d := cmp.Diff(Lock{Name: "job/15", Pending: []LockHolder{{"17", 17}}}, byName["job/15"]); d != "" {
		t.Errorf("job/15 (-want +got):\n%s", d)
	}
	if d := cmp.Diff(Lock{Name: "rpc/node2.example.com/instance_shutdown", Owners: []LockHolder{{"Jq3/Job15/I_SHUTDOWN", 15}}},
		byName["rpc/node2.example.com/instance_shutdown"]); d != "" {
		t.Errorf("rpc row (-want +got):\n%s", d)
	}
}

// TestParseLockHolder: every spelling of a lock owner, and the job id read
// from it.
func TestParseLockHolder(t *testing.T) {
	for in, want := range map[string]int64{
		"27":                        27,
		"Jq3/Job15/I_SHUTDOWN":      15,   // 2.9-2.11 job worker running an opcode
		"Jq12/Job4821":              4821, // between two opcodes
		"Jq7/Job4821/I_STARTUP":     4821,
		`"MainThread"`:              0, // 2.12+ client that is no job
		`"luxid-ThreadId 7"`:        0,
		"ClientReq3":                0, // another masterd thread
		"Jq3":                       0, // an idle worker names no job
		"Jq3/JobX/I_SHUTDOWN":       0,
		"0":                         0,
		"-5":                        0,
		"Job15":                     0,
		"rpc/node2.example.com/x_y": 0,
	} {
		h, err := ParseLockHolder(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if h != (LockHolder{Name: in, Job: want}) {
			t.Errorf("%q: got %+v, want job %d", in, h, want)
		}
	}
	if _, err := ParseLockHolder(""); err == nil {
		t.Error("an empty owner was accepted")
	}
}

// TestOtherOwner: the RAPI backend cancels its own waiting job when
// instance/<name> is owned by anything but that job, including a holder
// that names no job.
func TestOtherOwner(t *testing.T) {
	lock := func(owners ...LockHolder) []Lock {
		return []Lock{{Name: "instance/web1", Mode: "exclusive", Owners: owners}}
	}
	for _, tc := range []struct {
		locks []Lock
		want  string
	}{
		{lock(LockHolder{"Jq3/Job20/I_SHUTDOWN", 20}), ""},
		{lock(LockHolder{"20", 20}), ""},
		{lock(LockHolder{"Jq1/Job16/I_STARTUP", 16}), "Jq1/Job16/I_STARTUP"},
		{lock(LockHolder{`"MainThread"`, 0}), `"MainThread"`},
		{lock(), ""},
	} {
		if got := OtherOwner(tc.locks, "web1", 20); got != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.locks, got, tc.want)
		}
	}
}

// userDownCluster starts a fake cluster of version whose web1 the cluster
// reports USER_down (user shutdown on), with the Server header replaced
// by serverHeader unless it is empty, and a RAPI client that queried its
// instances, as a run does first.
func userDownCluster(t *testing.T, version, serverHeader string) (*ganetifake.Server, *RAPI) {
	t.Helper()
	st := fakeState()
	st.Cluster.Version = version
	st.Knobs.ServerHeader = serverHeader
	st.Cluster.UserShutdown = true
	st.Instances[0].Status = "USER_down"
	f := ganetifake.Start(t, st)
	c := newRAPI(t, f, nil)
	if _, err := c.Instances(context.Background(), "node1.example.com"); err != nil {
		t.Fatal(err)
	}
	return f, c
}

// TestRAPIPerVersion: the RAPI client learns the version from the Server
// header of the answers it gets anyway (no request of its own when a run
// queried instances first), filters lock queries only on a Ganeti that
// filters them (2.12+), and sends admin_state_source only to a Ganeti
// that has it (2.11.2+): 2.10 would refuse the whole shutdown with 400.
//
// Reference: doc/ganeti-versions.md, lock query and shutdown rows.
func TestRAPIPerVersion(t *testing.T) {
	for _, tc := range []struct {
		version    string
		release    Version
		lockFilter bool
		source     string
	}{
		{"2.10", Version{2, 10, 8}, false, "admin"},
		{"2.12", Version{2, 12, 6}, true, "user"},
		{"2.16", Version{2, 16, 2}, true, "user"},
		{"3.0", Version{3, 0, 2}, true, "user"},
	} {
		t.Run(tc.version, func(t *testing.T) {
			f, c := userDownCluster(t, tc.version, "")
			ctx := context.Background()
			if v, ok := c.Version(); !ok || v != tc.release {
				t.Errorf("version %v %v, want %v", v, ok, tc.release)
			}
			locked, err := c.Locked(ctx, []string{"web1.example.com", "db1.example.com"})
			if err != nil || len(locked) != 0 {
				t.Fatalf("locked %v %v", locked, err)
			}
			if _, err := c.MarkDown(ctx, MarkDownRequest{Name: "web1.example.com", UserSource: true}); err != nil {
				t.Fatal(err)
			}
			reqs := f.Requests()
			if reqs[0].Path != "/2/query/instance" || reqs[1].Path != "/2/query/lock" || reqs[2].Path != "/2/instances/web1.example.com/shutdown" {
				t.Fatalf("requests %+v", reqs[:3])
			}
			var lq struct {
				QFilter []any `json:"qfilter"`
			}
			json.Unmarshal([]byte(reqs[1].Body), &lq)
			wantFilter := []any(nil)
			if tc.lockFilter {
				wantFilter = []any{"|", []any{"=", "name", "instance/web1.example.com"}, []any{"=", "name", "instance/db1.example.com"}}
			}
			if d := cmp.Diff(wantFilter, lq.QFilter); d != "" {
				t.Errorf("lock qfilter (-want +got):\n%s", d)
			}
			if reqs[1].Status != 200 {
				t.Errorf("lock query answered %d", reqs[1].Status)
			}
			wantBody := `{"timeout":3,"admin_state_source":"user"}`
			if tc.source == "admin" {
				wantBody = `{"timeout":3}`
			}
			if reqs[2].Body != wantBody || reqs[2].Status != 200 {
				t.Errorf("shutdown body %s answered %d, want %s", reqs[2].Body, reqs[2].Status, wantBody)
			}
			if in := f.State().Instances[0]; in.AdminState != "down" || in.AdminStateSource != tc.source {
				t.Errorf("after the mark-down: %+v", in)
			}
		})
	}
}

// TestRAPILockFilterRefused: a Ganeti 2.10 behind something that claims
// 2.12 refuses the filtered lock query with HTTP 500 "Lock queries can't
// be filtered"; the client asks once more without the filter (no retry
// of the 500), and sends no filter again.
func TestRAPILockFilterRefused(t *testing.T) {
	st := fakeState()
	st.Cluster.Version = "2.10"
	st.Knobs.ServerHeader = "Ganeti 2.12.6"
	f := ganetifake.Start(t, st)
	c := newRAPI(t, f, nil)
	ctx := context.Background()
	if _, err := c.Instances(ctx, "node1.example.com"); err != nil {
		t.Fatal(err)
	}
	id, err := f.Engine.HoldLock("web1.example.com", "OP_INSTANCE_REBOOT")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Engine.Finish(id, "success", nil)
	for i := 0; i < 2; i++ {
		got, err := c.Locked(ctx, []string{"web1.example.com"})
		if d := cmp.Diff(map[string]bool{"web1.example.com": true}, got); d != "" || err != nil {
			t.Fatalf("call %d: locked (-want +got):\n%s %v", i, d, err)
		}
	}
	var got []string
	for _, r := range f.Requests()[1:] {
		got = append(got, fmt.Sprintf("%d filtered=%v", r.Status, strings.Contains(r.Body, "qfilter")))
	}
	if d := cmp.Diff([]string{"500 filtered=true", "200 filtered=false", "200 filtered=false"}, got); d != "" {
		t.Errorf("lock queries (-want +got):\n%s", d)
	}
}

// TestRAPIVersionUnknown: without a Server header (a proxy), the client
// learns from the instance query whether admin_state_source exists, and
// sends no lock filter.
func TestRAPIVersionUnknown(t *testing.T) {
	for _, tc := range []struct {
		version string
		body    string
	}{
		{"2.10", `{"timeout":3}`},
		{"3.0", `{"timeout":3,"admin_state_source":"user"}`},
	} {
		t.Run(tc.version, func(t *testing.T) {
			f, c := userDownCluster(t, tc.version, "-")
			ctx := context.Background()
			if _, ok := c.Version(); ok {
				t.Error("version known without a Server header")
			}
			if _, err := c.Locked(ctx, []string{"web1.example.com"}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.MarkDown(ctx, MarkDownRequest{Name: "web1.example.com", UserSource: true}); err != nil {
				t.Fatal(err)
			}
			reqs := f.Requests()
			if strings.Contains(reqs[1].Body, "qfilter") {
				t.Errorf("lock filter sent to an unknown version: %s", reqs[1].Body)
			}
			if reqs[2].Body != tc.body {
				t.Errorf("shutdown body %s, want %s", reqs[2].Body, tc.body)
			}
		})
	}
}

// TestParseVersion reads Ganeti's release strings.
func TestParseVersion(t *testing.T) {
	for in, want := range map[string]Version{
		"2.10.8": {2, 10, 8}, "3.0.2": {3, 0, 2}, "2.16.0~rc1": {2, 16, 0}, "2.16.0rc1": {2, 16, 0}, "2.12": {2, 12, 0}, "3.0.2-1": {3, 0, 2},
	} {
		if got, err := ParseVersion(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "2", "x.1", "2.x.1", "2.10.x", "-1.2.3", "+2.1"} {
		if v, err := ParseVersion(bad); err == nil {
			t.Errorf("%q accepted as %v", bad, v)
		}
	}
	if v, ok := serverVersion("Ganeti 2.10.8"); !ok || v != (Version{2, 10, 8}) {
		t.Errorf("server header: %v %v", v, ok)
	}
	if _, ok := serverVersion("nginx/1.22"); ok {
		t.Error("a proxy's header read as a version")
	}
	if !(Version{2, 11, 2}).AtLeast(versionAdminStateSource) || (Version{2, 11, 1}).AtLeast(versionAdminStateSource) ||
		!(Version{3, 0, 0}).AtLeast(versionLockFilter) || (Version{2, 11, 8}).AtLeast(versionLockFilter) {
		t.Error("AtLeast")
	}
}

// TestBadNamesLeftOut: an instance whose name from the cluster is not a
// DNS name ("../escape/pwn" once put a core dump outside dump_dir) is left
// out of Instances, through both backends, and reported; the others are
// returned. No mark-down or start is ever sent for such a name.
func TestBadNamesLeftOut(t *testing.T) {
	for name, mk := range map[string]backendMaker{"rapi": rapiBackend, "cli": cliBackend} {
		t.Run(name, func(t *testing.T) {
			st := fakeState()
			st.Instances = append(st.Instances,
				ganetifake.Instance{Name: "../escape/pwn", PrimaryNode: "node1.example.com", AdminState: "up"},
				ganetifake.Instance{Name: "-rf", PrimaryNode: "node1.example.com", AdminState: "up"})
			b := mk(t, st, 5*time.Second)
			ctx := context.Background()
			got, err := b.client.Instances(ctx, "node1.example.com")
			var bad *BadNamesError
			if !errors.As(err, &bad) || len(bad.Problems) != 2 ||
				!strings.Contains(err.Error(), `"../escape/pwn"`) || !strings.Contains(err.Error(), `"-rf"`) {
				t.Fatalf("error %v; want a BadNamesError naming both", err)
			}
			var names []string
			for _, in := range got {
				names = append(names, in.Name)
			}
			if d := cmp.Diff([]string{"db1.example.com", "web1.example.com"}, names); d != "" {
				t.Errorf("instances kept (-want +got):\n%s", d)
			}
			n := b.requests()
			if _, err := b.client.MarkDown(ctx, MarkDownRequest{Name: "../escape/pwn"}); err == nil {
				t.Error("mark-down of a bad name accepted")
			}
			if _, err := b.client.StartUp(ctx, StartUpRequest{Name: "-rf"}); err == nil {
				t.Error("start of a bad name accepted")
			}
			if b.requests() != n {
				t.Error("a request was sent for a bad name")
			}
		})
	}
}

// TestLockFilterRefusalRead: the literal answer of Ganeti 2.10 to a
// filtered lock query is read as that refusal, which is not retried.
func TestLockFilterRefusalRead(t *testing.T) {
	ae, ok := parseAPIError(versionFixture(t, "2.10-query-lock-filtered-500.json"))
	if !ok {
		t.Fatal("error body not read")
	}
	re := &RAPIError{Method: "PUT", Path: "/2/query/lock", Status: ae.Code, Message: ae.Message, Explain: ae.Explain}
	if !lockFilterRefused(re) || retryable(re) {
		t.Errorf("%v: refused %v, retryable %v", re, lockFilterRefused(re), retryable(re))
	}
	other := &RAPIError{Method: "PUT", Path: "/2/query/lock", Status: 500, Message: "Internal Server Error"}
	if lockFilterRefused(other) || !retryable(other) {
		t.Errorf("a plain 500 taken for the refusal")
	}
}
