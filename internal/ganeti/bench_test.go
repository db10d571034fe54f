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
