package ganeti

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
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
