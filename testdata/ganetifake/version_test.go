package ganetifake

import (
	"bytes"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRAPIFakePerVersion: each version's answers where they differ, as
// read from Ganeti's source at the tag the version stands for.
func TestRAPIFakePerVersion(t *testing.T) {
	type answer struct {
		status int
		body   string
	}
	lockQuery := `{"fields":["name","mode","owner","pending"]}`
	filtered := `{"fields":["name","mode","owner","pending"],"qfilter":["=","name","instance/xen1.example.com"]}`
	for _, tc := range []struct {
		version, server string
		idleLocks       answer
		heldLocks       answer
		filteredLocks   answer
		sourceParam     answer
		cancelQueued    answer
	}{
		{
			version: "2.10", server: "Ganeti 2.10.8",
			// Every lock listed, free ones null/null/[].
			idleLocks:     answer{200, `[[[0,"cluster/BGL"],[0,null],[0,null],[0,[]]],[[0,"cluster/[lockset]"],[0,null],[0,null],[0,[]]],[[0,"instance/[lockset]"],[0,null],[0,null],[0,[]]],[[0,"instance/xen1.example.com"],[0,null],[0,null],[0,[]]],[[0,"network/[lockset]"],[0,null],[0,null],[0,[]]],[[0,"node-alloc/NAL"],[0,null],[0,null],[0,[]]],[[0,"node-alloc/[lockset]"],[0,null],[0,null],[0,[]]],[[0,"node-res/[lockset]"],[0,null],[0,null],[0,[]]],[[0,"node/[lockset]"],[0,null],[0,null],[0,[]]],[[0,"nodegroup/[lockset]"],[0,null],[0,null],[0,[]]]]`},
			heldLocks:     answer{200, `[[0,"instance/xen1.example.com"],[0,"exclusive"],[0,["Jq2/Job1/I_REBOOT"]],[0,[]]]`},
			filteredLocks: answer{500, `{"code":500,"explain":"Server got itself in trouble","message":"(\"Lock queries can't be filtered\", 'wrong_input')"}`},
			sourceParam:   answer{400, `{"code":400,"explain":"Bad request syntax or unsupported method","message":"Invalid body parameters: Object OpInstanceShutdown doesn't support the parameter 'admin_state_source'"}`},
			cancelQueued:  answer{200, `[true,"Job 2 canceled"]`},
		},
		{
			version: "2.12", server: "Ganeti 2.12.6",
			idleLocks:     answer{200, `[]`},
			heldLocks:     answer{200, `[[0,"instance/xen1.example.com"],[0,"exclusive"],[0,["1"]],[0,[]]]`},
			filteredLocks: answer{200, `{"fields":`},
			sourceParam:   answer{200, ``},
			cancelQueued:  answer{200, `[true,"Dequeued job 2"]`},
		},
		{
			version: "3.0", server: "Ganeti 3.0.2",
			idleLocks:     answer{200, `[]`},
			heldLocks:     answer{200, `[[0,"instance/xen1.example.com"],[0,"exclusive"],[0,["1"]],[0,[]]]`},
			filteredLocks: answer{200, `{"fields":`},
			sourceParam:   answer{200, ``},
			cancelQueued:  answer{200, `[true,"Dequeued job 2"]`},
		},
	} {
		t.Run(tc.version, func(t *testing.T) {
			st := oneInstance(Toolstack{})
			st.Cluster.Version = tc.version
			st.Instances[0].Status = "USER_down"
			st.Knobs.QueueJobs = map[string]bool{"xen1.example.com": true}
			s := Start(t, st)
			check := func(what string, want answer, method, path, body string) {
				t.Helper()
				ctype := ""
				if body != "" {
					ctype = "application/json"
				}
				code, hdr, got := do(t, s, method, path, WriterUser, WriterPassword, ctype, body)
				if hdr.Get("Server") != tc.server {
					t.Errorf("%s: Server %q, want %q", what, hdr.Get("Server"), tc.server)
				}
				if code != want.status || !strings.Contains(got, want.body) {
					t.Errorf("%s: %d %s\nwant %d with %s", what, code, got, want.status, want.body)
				}
			}
			check("idle locks", tc.idleLocks, "PUT", "/2/query/lock", lockQuery)
			check("info", answer{200, `"software_version":"` + strings.TrimPrefix(tc.server, "Ganeti ") + `"`}, "GET", "/2/info", "")
			id, err := s.Engine.HoldLock("xen1.example.com", "OP_INSTANCE_REBOOT")
			if err != nil {
				t.Fatal(err)
			}
			check("held locks", tc.heldLocks, "PUT", "/2/query/lock", lockQuery)
			check("filtered locks", tc.filteredLocks, "PUT", "/2/query/lock", filtered)
			s.Engine.Finish(id, "success", nil)
			check("admin_state_source", tc.sourceParam, "PUT", "/2/instances/xen1.example.com/shutdown", `{"timeout":3,"admin_state_source":"user"}`)
			if tc.sourceParam.status != 200 {
				check("shutdown without it", answer{200, ``}, "PUT", "/2/instances/xen1.example.com/shutdown", `{"timeout":3}`)
			}
			check("cancel a queued job", tc.cancelQueued, "DELETE", "/2/jobs/2", "")
		})
	}
}

// TestCancelWaitingJob210: Ganeti 2.10's queue marks a waiting job
// canceling; its worker then ends it canceled (seen at the next poll).
func TestCancelWaitingJob210(t *testing.T) {
	st := oneInstance(Toolstack{})
	st.Cluster.Version = "2.10"
	s := Start(t, st)
	holder, _ := s.Engine.HoldLock("xen1.example.com", "OP_INSTANCE_REBOOT")
	id, _ := s.Engine.Submit("xen1.example.com", 3, "admin", nil, false)
	_, _, body := do(t, s, "DELETE", "/2/jobs/2", WriterUser, WriterPassword, "", "")
	if body != `[true,"Job 2 will be canceled"]` {
		t.Errorf("cancel answer %s", body)
	}
	_, _, body = do(t, s, "GET", "/2/jobs/2", WriterUser, WriterPassword, "", "")
	if !strings.Contains(body, `"status":"canceling"`) {
		t.Errorf("first poll after the cancel: %s", body)
	}
	_, _, body = do(t, s, "GET", "/2/jobs/2", WriterUser, WriterPassword, "", "")
	if !strings.Contains(body, `"status":"canceled"`) {
		t.Errorf("second poll: %s", body)
	}
	s.Engine.Finish(holder, "success", nil)
	after := s.State()
	if j := after.job(id); j.Status != "canceled" {
		t.Errorf("job %d %s after the holder finished", id, j.Status)
	}
	_, _, body = do(t, s, "DELETE", "/2/jobs/99", WriterUser, WriterPassword, "", "")
	if body != `[false,"Job 99 not found"]` {
		t.Errorf("cancel of an unknown job: %s", body)
	}
}

// TestGntFakesPerVersion: gnt-debug locks and gnt-instance list of 2.10:
// thread-name owners, every lock listed, admin_state_source unknown.
func TestGntFakesPerVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	st := oneInstance(Toolstack{})
	st.Cluster.Version = "2.10"
	st.Instances = append(st.Instances, Instance{Name: "db1.example.com", PrimaryNode: "node1.example.com", AdminState: "down"})
	if err := WriteStateFile(path, st); err != nil {
		t.Fatal(err)
	}
	env := func(k string) string { return map[string]string{EnvState: path}[k] }
	run := func(f func([]string, func(string) string, io.Writer, io.Writer) int, args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		code := f(args, env, &out, &errb)
		return out.String(), errb.String(), code
	}
	eng := NewEngine(NewFileStore(path), false)
	if _, err := eng.HoldLock("xen1.example.com", "OP_INSTANCE_STARTUP"); err != nil {
		t.Fatal(err)
	}
	out, _, code := run(RunGntDebug, "locks", "--no-headers", "--separator=|", "-o", "name,mode,owner,pending")
	want := "cluster/BGL|shared|Jq2/Job1/I_STARTUP|-\n" +
		"cluster/[lockset]|-|-|-\n" +
		"instance/[lockset]|-|-|-\n" +
		"instance/db1.example.com|-|-|-\n" +
		"instance/xen1.example.com|exclusive|Jq2/Job1/I_STARTUP|-\n" +
		"network/[lockset]|-|-|-\nnode-alloc/NAL|-|-|-\nnode-alloc/[lockset]|-|-|-\nnode-res/[lockset]|-|-|-\nnode/[lockset]|-|-|-\nnodegroup/[lockset]|-|-|-\n" +
		"rpc/node1.example.com/instance_start|-|Jq2/Job1/I_STARTUP|-\n"
	if d := cmp.Diff(want, out); d != "" || code != 0 {
		t.Errorf("locks (-want +got):\n%s exit %d", d, code)
	}
	out, errs, code := run(RunGntInstance, "list", "--no-headers", "--separator=|", "-o", "name,admin_state,admin_state_source")
	if want := "db1.example.com|down|??\nxen1.example.com|up|??\n"; out != want || code != 14 || !strings.Contains(errs, "Unknown output fields selected: admin_state_source") {
		t.Errorf("list: %q exit %d, stderr %q", out, code, errs)
	}
}
