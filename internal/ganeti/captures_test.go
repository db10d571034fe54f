package ganeti

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/testbin"
)

// capturesDir returns testdata/ganeti-3.0.2, the real Ganeti 3.0.2
// captures kept in the repository.
func capturesDir(t *testing.T) string {
	t.Helper()
	return testbin.Captures(t)
}

type capture struct {
	name   string
	method string
	path   string
	status int
	body   []byte
}

var metaRequest = regexp.MustCompile(`(?m)^request: (\S+) (\S+)`)
var metaStatus = regexp.MustCompile(`(?m)^http status: (\d+)`)

func readCaptures(t *testing.T) []capture {
	t.Helper()
	dir := filepath.Join(capturesDir(t), "rapi")
	metas, err := filepath.Glob(filepath.Join(dir, "*.meta.txt"))
	if err != nil || len(metas) == 0 {
		t.Fatalf("no *.meta.txt in %s", dir)
	}
	var out []capture
	for _, m := range metas {
		meta, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(m), ".meta.txt")
		body, err := os.ReadFile(filepath.Join(dir, name+".json"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		req := metaRequest.FindSubmatch(meta)
		st := metaStatus.FindSubmatch(meta)
		if req == nil || st == nil {
			t.Fatalf("%s: meta file without request or http status line", m)
		}
		c := capture{name: name, method: string(req[1]), path: string(req[2]), body: body}
		for _, d := range st[1] {
			c.status = c.status*10 + int(d-'0')
		}
		out = append(out, c)
	}
	return out
}

// TestParseCapturedBodies parses every RAPI body of the Ganeti 3.0.2
// captures that ganeti-userdown reads: instance and lock queries, jobs,
// job ids answered to writes, and error bodies. Bodies of resources it
// never reads are listed, so a new capture is not silently ignored.
func TestParseCapturedBodies(t *testing.T) {
	notRead := map[string]bool{ // resources ganeti-userdown never asks
		"/2/features": true, "/2/info": true, "/2/instances": true, "/2/instances?bulk=1": true,
		"/2/jobs": true, "/2/nodes?bulk=1": true, "/2/nodes/node1.example.com": true, "/version": true,
		"/2/query/instance/fields?fields=name,status,admin_state_source,oper_state": true,
		"/2/instances/inst2.example.com":                                            true, "/2/instances/xen1.example.com": true,
	}
	parsed := map[string]int{}
	for _, c := range readCaptures(t) {
		t.Run(c.name, func(t *testing.T) {
			if c.status != 200 {
				e, ok := parseAPIError(c.body)
				if !ok || e.Code != c.status || e.Message == "" || e.Explain == "" {
					t.Fatalf("error body not parsed: %+v from %s", e, c.body)
				}
				if strings.Contains(e.Message, "&#x27;") {
					t.Errorf("message not unescaped: %q", e.Message)
				}
				parsed["error"]++
				return
			}
			p := c.path
			switch {
			case notRead[p]:
				parsed["not read"]++
			case strings.HasPrefix(p, "/2/query/instance"):
				ins, err := ParseInstanceQuery(c.body)
				if err != nil {
					t.Fatal(err)
				}
				if len(ins) == 0 {
					t.Fatal("no instance parsed")
				}
				parsed["instances"]++
			case strings.HasPrefix(p, "/2/query/lock"):
				if _, err := ParseLockQuery(c.body); err != nil {
					t.Fatal(err)
				}
				parsed["locks"]++
			case strings.HasPrefix(p, "/2/jobs/"):
				j, _, err := ParseJob(c.body)
				if err != nil {
					t.Fatal(err)
				}
				if "/2/jobs/"+strconv.FormatInt(j.ID, 10) != p {
					t.Errorf("job id %d, asked %s", j.ID, p)
				}
				parsed["jobs"]++
			case c.method != "GET" && strings.HasPrefix(p, "/2/instances/"):
				if _, err := ParseJobID(c.body); err != nil {
					t.Fatal(err)
				}
				parsed["job ids"]++
			default:
				t.Fatalf("capture %s %s not classified: add it to the parser or to notRead", c.method, p)
			}
		})
	}
	for _, kind := range []string{"error", "instances", "locks", "jobs", "job ids"} {
		if parsed[kind] == 0 {
			t.Errorf("no capture of kind %q parsed", kind)
		}
	}
}

func readCapture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(capturesDir(t), "rapi", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCapturedValues checks what the parsers make of specific captures.
func TestCapturedValues(t *testing.T) {
	t.Run("user shutdown cleaned up by the watcher", func(t *testing.T) {
		got, err := ParseInstanceQuery(readCapture(t, "xen-after-watcher-user-cleanup-query"))
		if err != nil {
			t.Fatal(err)
		}
		want := []Instance{
			{Name: "inst1.example.com", PrimaryNode: "node1.example.com", AdminState: AdminUp, AdminStateSource: "admin", Tags: []string{}},
			{Name: "inst2.example.com", PrimaryNode: "node1.example.com", AdminState: AdminDown, AdminStateSource: "admin", Tags: []string{"env:test", "owner:alice"}},
			{Name: "xen1.example.com", PrimaryNode: "node1.example.com", AdminState: AdminDown, AdminStateSource: "user", Tags: []string{"owner:bob"}},
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("instances (-want +got):\n%s", d)
		}
	})
	locks := []struct {
		capture string
		names   []string
		want    map[string]bool
	}{
		{"query-lock", []string{"inst2.example.com"}, map[string]bool{}},
		{"query-lock-held", []string{"inst1.example.com", "inst2.example.com"}, map[string]bool{"inst2.example.com": true}},
		{"query-lock-during-hung-shutdown", []string{"xen1.example.com", "inst1.example.com"}, map[string]bool{"xen1.example.com": true}},
	}
	for _, tc := range locks {
		t.Run(tc.capture, func(t *testing.T) {
			l, err := ParseLockQuery(readCapture(t, tc.capture))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, LockedInstances(l, tc.names)); d != "" {
				t.Errorf("locked (-want +got):\n%s", d)
			}
		})
	}
	t.Run("held lock with a pending job", func(t *testing.T) {
		l, err := ParseLockQuery(readCapture(t, "query-lock-held"))
		if err != nil {
			t.Fatal(err)
		}
		want := Lock{Name: "instance/inst2.example.com", Mode: "exclusive", Owners: []LockHolder{{"27", 27}}, Pending: []LockHolder{{"28", 28}}}
		if d := cmp.Diff(want, l[len(l)-1]); d != "" {
			t.Errorf("lock (-want +got):\n%s", d)
		}
	})
	jobs := []struct {
		capture string
		want    Job
		gone    bool
	}{
		{"job-shutdown", Job{ID: 26, Status: "success"}, false},
		{"xen-shutdown-hung-guest-timeout0-job-after-25s", Job{ID: 65, Status: "running"}, false},
		{"job-shutdown-admin-state-source-user", Job{ID: 18, Status: "error", Error: "OpPrereqError: Instance 'xen1.example.com' was not shutdown by the user"}, false},
		{"job-failing-pre-hook", Job{ID: 22, Status: "error", Error: `HooksAbort: d9e1b436-9645-4bdc-bb6a-8d20d5e9bcb3; instance-stop-pre.d/10-fail; pre-hook refuses: inst1.example.com\nstderr line`}, false},
	}
	for _, tc := range jobs {
		t.Run(tc.capture, func(t *testing.T) {
			j, gone, err := ParseJob(readCapture(t, tc.capture))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, j); d != "" || gone != tc.gone {
				t.Errorf("job (-want +got):\n%s gone=%v", d, gone)
			}
		})
	}
}
