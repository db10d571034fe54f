package e2e

import (
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
