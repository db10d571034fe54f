package ganeti

import (
	"encoding/json"
	"fmt"
	"testing"
)

// instanceQueryBody builds a query answer for n instances, as the master
// sends it for a node with n primary instances.
func instanceQueryBody(n int) []byte {
	fields := []map[string]string{}
	for _, f := range instanceFields {
		fields = append(fields, map[string]string{"name": f, "title": f, "kind": "text", "doc": ""})
	}
	data := make([][][2]any, n)
	for i := range data {
		data[i] = [][2]any{{0, fmt.Sprintf("inst%d.example.com", i)}, {0, "node1.example.com"}, {0, "up"}, {0, "admin"}, {0, []string{"owner:alice", "userdown:down"}}}
	}
	b, _ := json.Marshal(map[string]any{"fields": fields, "data": data})
	return b
}

// BenchmarkParseInstanceQuery measures parsing the one query detect makes
// (100 instances on the node).
func BenchmarkParseInstanceQuery(b *testing.B) {
	body := instanceQueryBody(100)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := ParseInstanceQuery(body); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzParseInstanceQuery: any body is either refused or yields instances
// with a name, a primary node and a known admin state.
func FuzzParseInstanceQuery(f *testing.F) {
	f.Add(instanceQueryBody(2))
	f.Add([]byte(`{"fields":[{"name":"name"},{"name":"pnode"},{"name":"admin_state"},{"name":"admin_state_source"},{"name":"tags"}],"data":[[[0,"a"],[0,"n"],[0,"up"],[1,null],[0,null]]]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ins, err := ParseInstanceQuery(body)
		if err != nil {
			return
		}
		for _, in := range ins {
			if in.Name == "" || in.PrimaryNode == "" {
				t.Fatalf("empty name or node accepted: %+v", in)
			}
			if _, err := parseAdminState(string(in.AdminState)); err != nil {
				t.Fatalf("admin state %q accepted", in.AdminState)
			}
		}
	})
}

// FuzzParseShutdownOutput: whatever gnt-instance prints, a nil error
// means a successful job with an id.
func FuzzParseShutdownOutput(f *testing.F) {
	f.Add([]byte("Waiting for job 21 for a ...\n"), true)
	f.Add([]byte("Waiting for job 20 for a ...\nJob 20 for a has failed: Failure: x\n"), false)
	f.Fuzz(func(t *testing.T, out []byte, ok bool) {
		var runErr error
		if !ok {
			runErr = &CommandError{Args: []string{"gnt-instance"}, ExitCode: 1}
		}
		j, err := ParseShutdownOutput("a", out, runErr)
		if err == nil && (j.ID == 0 || j.Status != JobSuccess || !ok) {
			t.Fatalf("success without a job or with a failed command: %+v ok=%v", j, ok)
		}
	})
}

// lockQuery210Body builds the lock query answer of a Ganeti 2.10 master
// with n instances: 2.9 to 2.11 list every lock, so the answer grows with
// the cluster, not with its activity. One instance lock is held by a job
// thread.
func lockQuery210Body(n int) []byte {
	fields := []map[string]string{}
	for _, f := range lockFields {
		fields = append(fields, map[string]string{"name": f, "title": f, "kind": "other", "doc": ""})
	}
	data := [][][2]any{{{0, "cluster/BGL"}, {0, "shared"}, {0, []string{"Jq3/Job15/I_SHUTDOWN"}}, {0, []any{}}}}
	for i := 0; i < n; i++ {
		row := [][2]any{{0, fmt.Sprintf("instance/inst%d.example.com", i)}, {0, nil}, {0, nil}, {0, []any{}}}
		if i == n/2 {
			row[1], row[2] = [2]any{0, "exclusive"}, [2]any{0, []string{"Jq3/Job15/I_SHUTDOWN"}}
		}
		data = append(data, row)
	}
	b, _ := json.Marshal(map[string]any{"fields": fields, "data": data})
	return b
}

// BenchmarkParseLockQuery210 measures parsing a 2.10 master's whole lock
// listing (every lock of a 1000-instance cluster), the answer the RAPI
// client reads on 2.9 to 2.11, where lock queries cannot be filtered.
func BenchmarkParseLockQuery210(b *testing.B) {
	body := lockQuery210Body(1000)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		locks, err := ParseLockQuery(body)
		if err != nil || len(LockedInstances(locks, []string{"inst500.example.com"})) != 1 {
			b.Fatal(err)
		}
	}
}
