package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ganeti-userdown/internal/xen"
	"ganeti-userdown/testdata/ganetifake"
)

// On a Ganeti 2.10 cluster, locks live in masterd's threads: the lock
// query lists every lock, owners are thread names such as
// "Jq2/Job1/C_VERIFY_DISKS", and a filtered lock query fails with HTTP 500.
// A user poweroff is marked down while unrelated jobs hold the cluster
// lock (shared) and another instance's lock; an instance whose lock a
// masterd thread that is no job holds waits.
//
// Reference: doc/design.md, "Safety rules", rule 3 (never mark down an
// instance a Ganeti job holds); doc/ganeti-versions.md, lock query rows.
func TestMarkDownOnBusy210Cluster(t *testing.T) {
	n := newNodeAt(t, "2.10", xen.XL, []instance{
		{name: "web1.example.com", admin: "up"},
		{name: "db1.example.com", admin: "up"},
		{name: "mail1.example.com", admin: "up", pnode: "node2.example.com"},
	}, "")
	n.start("web1.example.com")
	n.start("db1.example.com")
	n.xl("sim", "poweroff", "web1.example.com")
	n.xl("sim", "poweroff", "db1.example.com")
	verify, err := n.rapi.Engine.HoldLock("", "OP_CLUSTER_VERIFY_DISKS")
	if err != nil {
		t.Fatal(err)
	}
	migrate, err := n.rapi.Engine.HoldLock("mail1.example.com", "OP_INSTANCE_MIGRATE")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.rapi.Update(func(s *ganetifake.State) error {
		s.Knobs.OtherClients = map[string]string{"instance/db1.example.com": "ClientReq3"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	n.rapi.ResetRequests()

	out, errs, code := n.run(n.detect, "--mark-down")
	if code != 0 || out != "web1.example.com\n" {
		t.Fatalf("userdown-detect --mark-down: exit %d, stdout %q, want web1 only; stderr %s", code, out, errs)
	}
	if s := n.instanceState("web1.example.com"); s != "down" {
		t.Errorf("web1 admin state %q, want down", s)
	}
	if s := n.instanceState("db1.example.com"); s != "up" {
		t.Errorf("db1, held by a masterd thread, admin state %q, want up", s)
	}
	if _, ok := n.domain("db1.example.com"); !ok {
		t.Error("db1's preserved domain is gone although its lock is held")
	}
	for _, r := range n.rapi.Requests() {
		switch {
		case r.Path == "/2/query/lock" && (strings.Contains(r.Body, "qfilter") || r.Status != 200):
			t.Errorf("lock query to 2.10: %+v; want unfiltered and answered", r)
		case strings.HasSuffix(r.Path, "/shutdown") && strings.Contains(r.Body, "admin_state_source"):
			t.Errorf("admin_state_source sent to 2.10: %s", r.Body)
		case r.Status != 200:
			t.Errorf("request refused: %+v", r)
		}
	}
	st := n.rapi.State()
	for _, j := range st.Jobs {
		if (j.ID == verify || j.ID == migrate) && j.Status != "running" {
			t.Errorf("unrelated job %d (%s) is %s", j.ID, j.OpID, j.Status)
		}
	}
	if restarted := n.watcher(); len(restarted) != 0 {
		t.Errorf("watcher restarted %v", restarted)
	}
}

// An instance whose name from the cluster is not a DNS name never reaches
// a path: its crashed domain of the same name is not dumped (once, a name
// "../escape/pwn" wrote its core dump outside dump_dir) nor destroyed,
// and the run reports the name.
//
// Reference: doc/design.md, "Safety rules", rule 4: what cannot be read
// safely is not acted on, and is said.
func TestBadInstanceNameNeverReachesAPath(t *testing.T) {
	dumps := filepath.Join(scratchDir(t), "dumps")
	if err := os.Mkdir(dumps, 0o755); err != nil {
		t.Fatal(err)
	}
	const bad = "../escape/pwn"
	n := newNode(t, xen.XL, []instance{{name: bad, admin: "up"}, {name: "db1.example.com", admin: "up"}},
		"[crash]\ndump_dir = \""+dumps+"\"\n")
	cfg := filepath.Join(n.xenDir, "pwn.cfg")
	if err := os.WriteFile(cfg, []byte("name = '"+bad+"'\nmemory = 128\non_crash = 'preserve'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n.xl("create", cfg)
	n.start("db1.example.com")
	n.xl("sim", "crash", bad)
	n.xl("sim", "crash", "db1.example.com")

	out, errs, code := n.run(n.detect, "--json")
	if code != 0 {
		t.Fatalf("userdown-detect --json: exit %d: %s", code, errs)
	}
	if !strings.Contains(out, `not DNS names`) || !strings.Contains(out, `\"../escape/pwn\"`) {
		t.Errorf("the bad name is not reported in the problems: %s", out)
	}
	n.watcher()
	if _, ok := n.domain(bad); !ok {
		t.Error("the domain with the bad name was destroyed")
	}
	for _, e := range n.calls() {
		if len(e.Argv) > 1 && (e.Argv[0] == "dump-core" || e.Argv[0] == "destroy") && strings.Contains(strings.Join(e.Argv, " "), "escape") {
			t.Errorf("toolstack called with the bad name: %v", e.Argv)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dumps), "escape")); err == nil {
		t.Error("something was written outside dump_dir")
	}
	if left := readDir(t, dumps); len(left) != 1 || !strings.HasPrefix(left[0], "db1.example.com.") {
		t.Errorf("dump dir holds %v, want db1's dump only", left)
	}
}
