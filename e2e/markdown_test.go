package e2e

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/xen"
	"ganeti-userdown/testdata/ganetifake"
)

// --mark-down isolates failures (one failing instance does not stop the
// others, exit 1), reports every job in --json, and a second run after
// the failure is fixed marks the rest.
func TestMarkDownPartialFailureAndRerun(t *testing.T) {
	names := []string{"a.example.com", "b.example.com", "c.example.com"}
	var insts []instance
	for _, name := range names {
		insts = append(insts, instance{name: name, admin: "up"})
	}
	n := newNode(t, xen.XL, insts, "")
	for _, name := range names {
		n.start(name)
		n.xl("sim", "poweroff", name)
	}
	if err := n.rapi.Update(func(st *ganetifake.State) error {
		st.Knobs.FailJobs = map[string]string{"b.example.com": "Could not shutdown instance"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	out, errs, code := n.run(n.detect, "--mark-down", "--json")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", code, errs)
	}
	var rep struct {
		MarkDown []string `json:"mark_down"`
		Jobs     []struct {
			Instance string `json:"instance"`
			JobID    int64  `json:"job_id"`
			Status   string `json:"status"`
			Failed   bool   `json:"failed"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if d := cmp.Diff(names, rep.MarkDown); d != "" {
		t.Errorf("mark_down (-want +got):\n%s", d)
	}
	var got []string
	for _, j := range rep.Jobs {
		if j.JobID == 0 {
			t.Errorf("job of %s has no id", j.Instance)
		}
		got = append(got, j.Instance+" "+j.Status)
	}
	if d := cmp.Diff([]string{"a.example.com success", "b.example.com error", "c.example.com success"}, got); d != "" {
		t.Errorf("jobs (-want +got):\n%s", d)
	}
	if s := n.instanceState("c.example.com"); s != "down" {
		t.Errorf("c after b failed: %q, want down", s)
	}
	if err := n.rapi.Update(func(st *ganetifake.State) error { st.Knobs.FailJobs = nil; return nil }); err != nil {
		t.Fatal(err)
	}
	out, errs, code = n.run(n.detect, "--mark-down")
	if code != 0 || out != "b.example.com\n" {
		t.Errorf("rerun: exit %d, stdout %q, want b only; stderr %s", code, out, errs)
	}
	for _, name := range names {
		if s := n.instanceState(name); s != "down" {
			t.Errorf("%s: %q, want down", name, s)
		}
	}
}
