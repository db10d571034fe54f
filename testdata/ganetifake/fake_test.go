package ganetifake

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeXL is a small stand-in toolstack for the job tests: one domain per
// file in $XL_DIR holding its six state letters; every call is logged to
// $XL_DIR/calls. `shutdown -w` hangs when $XL_DIR/NAME.hang exists, like a
// guest that ignores the request.
const fakeXL = `#!/bin/sh
d="$XL_DIR"
echo "$*" >> "$d/calls"
case "$1" in
list)
	[ -f "$d/$2" ] || { echo "invalid domain identifier" >&2; exit 1; }
	echo "Name                                        ID   Mem VCPUs	State	Time(s)"
	printf '%-40s %5d %5d %5d     %s %8.1f\n' "$2" 7 128 1 "$(cat "$d/$2")" 1.0 ;;
shutdown)
	n="$3"
	if [ -f "$d/$n.hang" ]; then while :; do sleep 1; done; fi
	echo "---s--" > "$d/$n" ;;
destroy)
	rm -f "$d/$2" ;;
esac
`

func xlDir(t *testing.T, domains map[string]string) (Toolstack, string) {
	t.Helper()
	dir := t.TempDir()
	xl := filepath.Join(dir, "xl")
	if err := os.WriteFile(xl, []byte(fakeXL), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, state := range domains {
		os.WriteFile(filepath.Join(dir, name), []byte(state+"\n"), 0o644)
	}
	return Toolstack{Command: xl, Env: []string{"XL_DIR=" + dir}}, dir
}

func calls(t *testing.T, dir string) []string {
	b, _ := os.ReadFile(filepath.Join(dir, "calls"))
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func oneInstance(ts Toolstack) State {
	return State{
		Cluster:   ClusterInfo{Name: "cluster.example.com", Master: "node1.example.com"},
		Instances: []Instance{{Name: "xen1.example.com", PrimaryNode: "node1.example.com", AdminState: "up"}},
		Toolstack: ts,
	}
}

// TestShutdownJobStopsDomain: the job marks the instance down, then stops
// the domain as Ganeti 3.0.2's node daemon does (xl-calls.txt): a running
// domain gets `shutdown -w` bounded by the timeout and `destroy` if still
// listed; an already shut-down one is destroyed directly.
func TestShutdownJobStopsDomain(t *testing.T) {
	cases := []struct {
		name    string
		state   string
		hang    bool
		timeout int
		want    []string
	}{
		{"running guest", "-b----", false, 5, []string{"list xen1.example.com", "shutdown -w xen1.example.com", "list xen1.example.com", "destroy xen1.example.com"}},
		{"preserved user shutdown", "---s--", false, 5, []string{"list xen1.example.com", "destroy xen1.example.com"}},
		{"guest ignores the request", "r-----", true, 1, []string{"list xen1.example.com", "shutdown -w xen1.example.com", "list xen1.example.com", "destroy xen1.example.com"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts, dir := xlDir(t, map[string]string{"xen1.example.com": tc.state})
			if tc.hang {
				os.WriteFile(filepath.Join(dir, "xen1.example.com.hang"), nil, 0o644)
			}
			eng := NewEngine(NewMemoryStore(oneInstance(ts)), false)
			defer eng.Close()
			start := time.Now()
			id, err := eng.Submit("xen1.example.com", tc.timeout, "admin", nil, false)
			if err != nil {
				t.Fatal(err)
			}
			st, _ := eng.Store.Snapshot()
			if j := st.job(id); j.Status != "success" {
				t.Fatalf("job %+v", j)
			}
			if in := st.Instances[0]; in.AdminState != "down" || in.AdminStateSource != "admin" {
				t.Errorf("instance %+v", in)
			}
			if d := cmp.Diff(tc.want, calls(t, dir)); d != "" {
				t.Errorf("toolstack calls (-want +got):\n%s", d)
			}
			if _, err := os.Stat(filepath.Join(dir, "xen1.example.com")); err == nil {
				t.Error("domain still exists")
			}
			if tc.hang && time.Since(start) > 4*time.Second {
				t.Errorf("timeout %ds not applied: %s", tc.timeout, time.Since(start))
			}
		})
	}
}

// TestUserSourceOnlyWhenUserDown: Ganeti accepts admin_state_source user
// only while it reports the instance USER_down (cluster user shutdown on,
// domain powered off); otherwise the job fails as captured.
func TestUserSourceOnlyWhenUserDown(t *testing.T) {
	for _, tc := range []struct {
		userShutdown bool
		state        string
		want         string
	}{
		{true, "---s--", "success"},
		{false, "---s--", "error"},
		{true, "-b----", "error"},
	} {
		ts, _ := xlDir(t, map[string]string{"xen1.example.com": tc.state})
		st := oneInstance(ts)
		st.Cluster.UserShutdown = tc.userShutdown
		eng := NewEngine(NewMemoryStore(st), false)
		id, _ := eng.Submit("xen1.example.com", 3, "user", nil, false)
		got, _ := eng.Store.Snapshot()
		j := got.job(id)
		if j.Status != tc.want {
			t.Errorf("user_shutdown=%v state %s: job %s %s", tc.userShutdown, tc.state, j.Status, j.Result)
		}
		if tc.want == "error" && !strings.Contains(string(j.Result), "was not shutdown by the user") {
			t.Errorf("error %s", j.Result)
		}
		if tc.want == "success" && got.Instances[0].AdminStateSource != "user" {
			t.Errorf("source %q", got.Instances[0].AdminStateSource)
		}
		eng.Close()
	}
}

func do(t *testing.T, s *Server, method, path, user, pass, ctype, body string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestRAPIFakeAnswers: status codes and bodies as in the captures.
func TestRAPIFakeAnswers(t *testing.T) {
	s := Start(t, oneInstance(Toolstack{}))
	cases := []struct {
		name, method, path, user, pass, ctype, body string
		status                                      int
		want                                        string
	}{
		{"no auth", "PUT", "/2/instances/xen1.example.com/shutdown", "", "", "application/json", `{"timeout":0}`, 401,
			`{"code":401,"explain":"No permission -- see authorization schemes","message":"Unauthorized"}`},
		{"query needs auth", "GET", "/2/query/instance?fields=name", "", "", "", "", 401, ""},
		{"reader cannot write", "PUT", "/2/instances/xen1.example.com/shutdown", ReaderUser, ReaderPassword, "application/json", `{"timeout":0}`, 403,
			`{"code":403,"explain":"Request forbidden -- authorization will not help","message":"Forbidden"}`},
		{"content type with charset", "PUT", "/2/instances/xen1.example.com/shutdown", WriterUser, WriterPassword, "application/json; charset=utf-8", `{"timeout":1}`, 415, ""},
		{"bogus parameter", "PUT", "/2/instances/xen1.example.com/shutdown", WriterUser, WriterPassword, "application/json", `{"timeout":0,"bogus":1}`, 400,
			`{"code":400,"explain":"Bad request syntax or unsupported method","message":"Invalid body parameters: Object OpInstanceShutdown doesn&#x27;t support the parameter &#x27;bogus&#x27;"}`},
		{"unknown uri", "GET", "/2/instances/nosuch.example.com/info", WriterUser, WriterPassword, "", "", 404,
			`{"code":404,"explain":"Nothing matches the given URI","message":"Not Found"}`},
		{"shutdown answers a bare job id", "PUT", "/2/instances/xen1.example.com/shutdown", WriterUser, WriterPassword, "application/json", `{"timeout":1}`, 200, `1`},
		{"idle locks", "PUT", "/2/query/lock", ReaderUser, ReaderPassword, "application/json", `{"fields":["name","mode","owner","pending"]}`, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, hdr, body := do(t, s, tc.method, tc.path, tc.user, tc.pass, tc.ctype, tc.body)
			if code != tc.status {
				t.Fatalf("status %d, want %d: %s", code, tc.status, body)
			}
			if tc.want != "" && body != tc.want {
				t.Errorf("body\n got %s\nwant %s", body, tc.want)
			}
			if code == 401 && hdr.Get("WWW-Authenticate") != `Basic realm="Ganeti Remote API"` {
				t.Errorf("WWW-Authenticate %q", hdr.Get("WWW-Authenticate"))
			}
			if hdr.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q", hdr.Get("Content-Type"))
			}
		})
	}
	// The instance query filters on the server and marks unknown fields.
	_, _, body := do(t, s, "PUT", "/2/query/instance", WriterUser, WriterPassword, "application/json",
		`{"fields":["name","pnode","nosuch"],"qfilter":["=","pnode","node2.example.com"]}`)
	var qr QueryResult
	json.Unmarshal([]byte(body), &qr)
	if len(qr.Data) != 0 || len(qr.Fields) != 3 || qr.Fields[2].Kind != "unknown" {
		t.Errorf("filtered query: %s", body)
	}
	_, _, body = do(t, s, "PUT", "/2/query/instance", WriterUser, WriterPassword, "application/json",
		`{"fields":["name","nosuch"],"filter":["=","pnode","node1.example.com"]}`)
	if !strings.Contains(body, `[[[0,"xen1.example.com"],[1,null]]]`) {
		t.Errorf("unknown field row: %s", body)
	}
}

// TestGntFakesPrintCapturedFormats: the gnt-* fakes print what Ganeti
// 3.0.2 printed in the captures for the same cluster state.
func TestGntFakesPrintCapturedFormats(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	st := State{
		Cluster: ClusterInfo{Name: "cluster.example.com", Master: "node1.example.com"},
		Instances: []Instance{
			{Name: "inst1.example.com", PrimaryNode: "node1.example.com", AdminState: "up"},
			{Name: "inst2.example.com", PrimaryNode: "node1.example.com", AdminState: "down", Tags: []string{"env:test", "owner:alice"}},
			{Name: "xen1.example.com", PrimaryNode: "node1.example.com", AdminState: "up", Tags: []string{"owner:bob"}, Status: "ERROR_down"},
		},
	}
	if err := WriteStateFile(path, st); err != nil {
		t.Fatal(err)
	}
	env := func(k string) string { return map[string]string{EnvState: path}[k] }
	run := func(f func([]string, func(string) string, io.Writer, io.Writer) int, args ...string) (string, int) {
		var out bytes.Buffer
		code := f(args, env, &out, &out)
		return out.String(), code
	}
	out, code := run(RunGntInstance, "list", "--no-headers", "--separator=|", "-o", "name,pnode,admin_state,oper_state,status,tags,admin_state_source")
	want := "inst1.example.com|node1.example.com|up|Y|running||admin\n" +
		"inst2.example.com|node1.example.com|down|N|ADMIN_down|env:test,owner:alice|admin\n" +
		"xen1.example.com|node1.example.com|up|N|ERROR_down|owner:bob|admin\n"
	if d := cmp.Diff(want, out); d != "" || code != 0 {
		t.Errorf("list (-want +got):\n%s exit %d", d, code)
	}

	eng := NewEngine(NewFileStore(path), false)
	a, _ := eng.HoldLock("inst2.example.com", "OP_INSTANCE_STARTUP")
	if _, err := eng.Submit("inst2.example.com", 120, "admin", nil, false); err != nil {
		t.Fatal(err)
	}
	out, code = run(RunGntDebug, "locks", "--no-headers", "--separator=|", "-o", "name,mode,owner,pending")
	want = "cluster/BGL|shared|" + "1,2|-\ncluster/[lockset]|-|-|-\ninstance/[lockset]|-|-|-\ninstance/inst2.example.com|exclusive|1|exclusive:2\n"
	if d := cmp.Diff(want, out); d != "" || code != 0 {
		t.Errorf("locks (-want +got):\n%s exit %d", d, code)
	}
	eng.Finish(a, "success", nil)
	out, _ = run(RunGntDebug, "locks", "--no-headers", "--separator=|", "-o", "name,mode,owner")
	if out != "" {
		t.Errorf("idle locks: %q", out)
	}

	out, code = run(RunGntInstance, "shutdown", "--timeout=0", "nosuch.example.com")
	if want := "Failure: prerequisites not met for this operation:\nerror type: wrong_input, error details:\nSelection filter does not match any instances\n"; out != want || code != 1 {
		t.Errorf("shutdown nonexistent: %q exit %d", out, code)
	}
	out, code = run(RunGntInstance, "shutdown", "--timeout=3", "xen1.example.com")
	if !strings.HasPrefix(out, "Waiting for job 3 for xen1.example.com ...\n") || code != 0 {
		t.Errorf("shutdown: %q exit %d", out, code)
	}

	env = func(k string) string { return map[string]string{EnvState: path, EnvNode: "node2.example.com"}[k] }
	out, code = run(RunGntInstance, "list", "-o", "name,status")
	if want := "Failure: prerequisites not met for this operation:\nerror type: wrong_input, error details:\nThis is not the master node, please connect to node 'node1.example.com' and rerun the command\n"; out != want || code != 1 {
		t.Errorf("non-master: %q exit %d", out, code)
	}
}

// TestHungJobHoldsLock: with the HangJobs knob the job stays running and
// holds the instance lock, as the capture of a hung guest with timeout 0
// shows, until the test finishes it.
func TestHungJobHoldsLock(t *testing.T) {
	st := oneInstance(Toolstack{})
	st.Knobs.HangJobs = map[string]bool{"xen1.example.com": true}
	eng := NewEngine(NewMemoryStore(st), true)
	defer eng.Close()
	id, _ := eng.Submit("xen1.example.com", 0, "admin", nil, false)
	deadline := time.Now().Add(2 * time.Second)
	for {
		res, _ := eng.QueryLocks([]string{"name", "mode", "owner", "pending"}, nil)
		b, _ := json.Marshal(res.Data)
		if strings.Contains(string(b), `[[0,"instance/xen1.example.com"],[0,"exclusive"],[0,["1"]],[0,[]]]`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock not held: %s", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	eng.Finish(id, "success", nil)
	res, _ := eng.QueryLocks([]string{"name"}, nil)
	if len(res.Data) != 0 {
		t.Errorf("locks after finish: %v", res.Data)
	}
}
