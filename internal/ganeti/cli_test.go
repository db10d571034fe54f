package ganeti

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
)

// cliCapture returns the output of the command of a cli/*.txt capture
// (the lines between the "$ ..." line and "[exit code: N]") and its exit
// code.
func cliCapture(t *testing.T, name string) (string, string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(capturesDir(t), "cli", name+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	code := ""
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, "$ "), strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "[exit code: "):
			code = strings.TrimSuffix(strings.TrimPrefix(l, "[exit code: "), "]")
			return strings.Join(out, "\n"), code
		default:
			out = append(out, l)
		}
	}
	t.Fatalf("%s: no exit code line", name)
	return "", ""
}

// TestParseCapturedLockLists parses gnt-debug locks output as Ganeti
// 3.0.2 prints it.
func TestParseCapturedLockLists(t *testing.T) {
	out, _ := cliCapture(t, "gnt-debug-locks-held-parsable-pending")
	got, err := ParseLockList([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []Lock{
		{Name: "cluster/BGL", Mode: "shared", Owners: []LockHolder{{"27", 27}, {"28", 28}}},
		{Name: "cluster/[lockset]"},
		{Name: "instance/[lockset]"},
		{Name: "instance/inst2.example.com", Mode: "exclusive", Owners: []LockHolder{{"27", 27}}, Pending: []LockHolder{{"28", 28}}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("locks (-want +got):\n%s", d)
	}
	out, _ = cliCapture(t, "gnt-debug-locks-idle-parsable")
	if got, err := ParseLockList([]byte(out)); err != nil || len(got) != 0 {
		t.Errorf("idle: %+v %v", got, err)
	}
	for _, bad := range []string{"instance/a|exclusive", "instance/a|exclusive|1|28", "|-|-|-", "instance/a|exclusive|1,|-", "instance/a|-|-|exclusive:"} {
		if got, err := ParseLockList([]byte(bad)); err == nil {
			t.Errorf("%q accepted as %+v", bad, got)
		}
	}
}

// TestParseInstanceList covers the separator output of gnt-instance list
// with ganeti-userdown's fields, including Ganeti's markers for missing
// values.
func TestParseInstanceList(t *testing.T) {
	out := "inst1.example.com|node1.example.com|up|admin|\n" +
		"xen1.example.com|node1.example.com|down|user|owner:bob,env:test\n" +
		"old.example.com|node1.example.com|offline|??|\n"
	got, err := ParseInstanceList([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []Instance{
		{Name: "inst1.example.com", PrimaryNode: "node1.example.com", AdminState: AdminUp, AdminStateSource: "admin", Tags: []string{}},
		{Name: "xen1.example.com", PrimaryNode: "node1.example.com", AdminState: AdminDown, AdminStateSource: "user", Tags: []string{"owner:bob", "env:test"}},
		{Name: "old.example.com", PrimaryNode: "node1.example.com", AdminState: AdminOffline, Tags: []string{}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("instances (-want +got):\n%s", d)
	}
	for _, bad := range []string{
		"a|n|up|admin",            // field missing
		"a|n|up|admin||extra",     // field too many
		"a|?|up|admin|",           // no data for pnode
		"a|n|Y|admin|",            // not an admin state
		"a|n|up|root|",            // not a source
		"a|n|up|admin|*",          // tags offline
		"|n|up|admin|",            // empty name
		"a|n|ERROR_down|admin|t1", // a live status where admin_state belongs
	} {
		if got, err := ParseInstanceList([]byte(bad)); err == nil {
			t.Errorf("%q accepted as %+v", bad, got)
		}
	}
}

// TestParseCapturedShutdownOutputs maps gnt-instance shutdown outputs of
// Ganeti 3.0.2 to MarkDown's results.
func TestParseCapturedShutdownOutputs(t *testing.T) {
	exitErr := func(code string) error {
		if code == "0" {
			return nil
		}
		return &CommandError{Args: []string{"gnt-instance", "shutdown"}, ExitCode: 1}
	}
	cases := []struct {
		capture string
		want    Job
		is      error
	}{
		{"instance-shutdown-timeout0", Job{ID: 21, Status: JobSuccess}, nil},
		{"xen-shutdown-hung-guest-timeout3", Job{ID: 67, Status: JobSuccess}, nil},
		{"failing-pre-hook-instance-stop", Job{ID: 20, Status: JobError, Error: "Failure: hooks execution failed:\n  node: d9e1b436-9645-4bdc-bb6a-8d20d5e9bcb3, script: instance-stop-pre.d/10-fail, output: pre-hook refuses: inst1.example.com\\nstderr line"}, ErrJobFailed},
		{"gnt-instance-shutdown-nonexistent", Job{}, ErrInstanceGone},
	}
	for _, tc := range cases {
		t.Run(tc.capture, func(t *testing.T) {
			out, code := cliCapture(t, tc.capture)
			j, err := ParseShutdownOutput("x", []byte(out), exitErr(code))
			if d := cmp.Diff(tc.want, j); d != "" {
				t.Errorf("job (-want +got):\n%s", d)
			}
			if (tc.is == nil) != (err == nil) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Errorf("error %v, want %v", err, tc.is)
			}
		})
	}
}

// TestCLICommandLines asserts the exact commands: config fields only, the
// node filter, a positive timeout and the reason.
//
// Reference: design.md, "Decisions": "Cost: ... one config-only query,
// filtered to this node".
func TestCLICommandLines(t *testing.T) {
	if d := cmp.Diff([]string{"/usr/sbin/gnt-instance", "list", "--no-headers", "--separator=|", "-o", "name,pnode,admin_state,admin_state_source,tags", "-F", `pnode == "node1.example.com"`},
		InstanceListArgs("/usr/sbin/gnt-instance", "node1.example.com")); d != "" {
		t.Errorf("list (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"/usr/sbin/gnt-debug", "locks", "--no-headers", "--separator=|", "-o", "name,mode,owner,pending"},
		LockListArgs("/usr/sbin/gnt-debug")); d != "" {
		t.Errorf("locks (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"gnt-instance", "shutdown", "--timeout=10", "--reason=ganeti-userdown: x", "web1"},
		ShutdownArgs("gnt-instance", 10, reasonText("x", markDownReason), "web1")); d != "" {
		t.Errorf("shutdown (-want +got):\n%s", d)
	}

	// The commands the fakes received, through the client.
	b := cliBackend(t, fakeState(), 5*time.Second)
	ctx := context.Background()
	b.client.Instances(ctx, "node1.example.com")
	b.client.Locked(ctx, []string{"web1.example.com"})
	b.client.MarkDown(ctx, MarkDownRequest{Name: "web1.example.com", Reason: "poweroff"})
	logb, err := os.ReadFile(os.Getenv("GANETIFAKE_LOG"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(logb)), "\n")
	want := []string{
		`{"command":"gnt-instance","args":["list","--no-headers","--separator=|","-o","name,pnode,admin_state,admin_state_source,tags","-F","pnode == \"node1.example.com\""]}`,
		`{"command":"gnt-debug","args":["locks","--no-headers","--separator=|","-o","name,mode,owner,pending"]}`,
		// MarkDown lists the locks again right before submitting.
		`{"command":"gnt-debug","args":["locks","--no-headers","--separator=|","-o","name,mode,owner,pending"]}`,
		`{"command":"gnt-instance","args":["shutdown","--timeout=3","--reason=ganeti-userdown: poweroff","web1.example.com"]}`,
	}
	if d := cmp.Diff(want, lines); d != "" {
		t.Errorf("commands (-want +got):\n%s", d)
	}
	n := len(lines)
	if _, err := b.client.StartUp(ctx, StartUpRequest{Name: "web1.example.com"}); err != nil {
		t.Fatal(err)
	}
	logb, _ = os.ReadFile(os.Getenv("GANETIFAKE_LOG"))
	want = []string{
		// StartUp lists the locks right before submitting, as MarkDown.
		`{"command":"gnt-debug","args":["locks","--no-headers","--separator=|","-o","name,mode,owner,pending"]}`,
		`{"command":"gnt-instance","args":["startup","--reason=ganeti-userdown: the instance's domain failed and was destroyed","web1.example.com"]}`,
	}
	if d := cmp.Diff(want, strings.Split(strings.TrimSpace(string(logb)), "\n")[n:]); d != "" {
		t.Errorf("startup commands (-want +got):\n%s", d)
	}
	if _, err := b.client.Instances(ctx, `node1" or name == "x`); err == nil {
		t.Error("a node name with a quote was put in the filter")
	}
}

// TestSsconf reads the master and the user-shutdown flag as Ganeti writes
// them, and New builds the RAPI URL from the master.
func TestSsconf(t *testing.T) {
	dir := t.TempDir()
	if on, err := UserShutdownEnabled(dir); err != nil || on {
		t.Errorf("missing file: %v %v", on, err)
	}
	for content, want := range map[string]bool{"True\n": true, "False": false} {
		os.WriteFile(filepath.Join(dir, "ssconf_enabled_user_shutdown"), []byte(content), 0o644)
		if on, err := UserShutdownEnabled(dir); err != nil || on != want {
			t.Errorf("%q: %v %v", content, on, err)
		}
	}
	os.WriteFile(filepath.Join(dir, "ssconf_enabled_user_shutdown"), []byte("yes\n"), 0o644)
	if _, err := UserShutdownEnabled(dir); err == nil {
		t.Error("yes accepted")
	}
	if _, err := MasterNode(dir); err == nil {
		t.Error("missing master accepted")
	}
	os.WriteFile(filepath.Join(dir, "ssconf_master_node"), []byte("node1.example.com\n"), 0o644)
	c := config.Default().Cluster
	c.SsconfDir = dir
	o, err := RAPIOptionsFrom(c)
	if err != nil || o.URL != "https://node1.example.com:5080" {
		t.Errorf("options %+v %v", o, err)
	}
	c.RAPIURL = "https://10.0.0.1:5080"
	if o, _ := RAPIOptionsFrom(c); o.URL != c.RAPIURL {
		t.Errorf("rapi_url ignored: %s", o.URL)
	}
	c.Backend = "ssh"
	if _, err := New(c); err == nil {
		t.Error("unknown backend accepted")
	}
	c.Backend = "cli"
	if cl, err := New(c); err != nil {
		t.Errorf("cli: %v", err)
	} else if _, ok := cl.(*CLI); !ok {
		t.Errorf("cli backend is %T", cl)
	}
}
