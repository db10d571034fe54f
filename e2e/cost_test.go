package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"ganeti-userdown/internal/xen"
)

// masterRequests runs one watcher hook run and returns the RAPI requests
// it made, as "METHOD path".
func (n *node) masterRequests() []string {
	n.t.Helper()
	n.rapi.ResetRequests()
	n.watcher()
	var reqs []string
	for _, r := range n.rapi.Requests() {
		reqs = append(reqs, r.Method+" "+r.Path)
	}
	return reqs
}

// Reference: design.md, "Decisions": "Cost: when every local domain is
// running, detect and destroy make no request to the master. Otherwise one
// config-only query, filtered to this node"; at most two reads (instances,
// locks) per program run plus, for detect, one job per instance to mark
// (and its polls). The same on every Ganeti version: the client learns
// the version from the answers it gets anyway, with no request of its own.
func TestRequestsPerWatcherRun(t *testing.T) { eachVersion(t, testRequestsPerWatcherRun) }

func testRequestsPerWatcherRun(t *testing.T, version string) {
	n := newNodeAt(t, version, xen.XL, []instance{
		{name: "a.example.com", admin: "up"}, {name: "b.example.com", admin: "up"}, {name: "c.example.com", admin: "up"},
	}, "")
	for _, name := range []string{"a.example.com", "b.example.com", "c.example.com"} {
		n.start(name)
	}
	if reqs := n.masterRequests(); len(reqs) != 0 {
		t.Errorf("every domain runs, yet the watcher run asked the master: %v", reqs)
	}
	n.xl("sim", "poweroff", "a.example.com")
	n.xl("sim", "poweroff", "b.example.com")
	reqs := n.masterRequests()
	var reads, jobs, polls int
	for _, r := range reqs {
		switch {
		case strings.HasPrefix(r, "PUT /2/instances/") && strings.HasSuffix(r, "/shutdown"):
			jobs++
		case strings.HasPrefix(r, "GET /2/jobs/"):
			polls++
		case strings.HasPrefix(r, "GET /2/query/") || strings.HasPrefix(r, "PUT /2/query/") || strings.HasPrefix(r, "GET /2/instances"):
			reads++
		default:
			t.Errorf("unexpected request %s", r)
		}
	}
	t.Logf("watcher run with 2 user shutdowns: %d reads, %d jobs, %d job polls: %v", reads, jobs, polls, reqs)
	// detect: instances + locks; destroy: at most instances + locks again.
	if reads > 4 {
		t.Errorf("%d reads in one watcher run (detect and destroy), want at most 2 each", reads)
	}
	if jobs != 2 {
		t.Errorf("%d shutdown jobs, want one per instance to mark (2)", jobs)
	}
	for _, name := range []string{"a.example.com", "b.example.com"} {
		if s := n.instanceState(name); s != "down" {
			t.Errorf("%s: admin state %q, want down", name, s)
		}
	}
	if reqs := n.masterRequests(); len(reqs) != 0 {
		t.Errorf("after the mark-downs every domain runs, yet: %v", reqs)
	}
}

// BenchmarkGanetiStop measures a Ganeti-initiated stop of a guest that
// takes 200ms to power off: through the shim without -w (Ganeti 2.9.0
// and 2.9.1: the reaper ends the stop), through the shim with -w (Ganeti
// 2.9.2 and later), and without the shim with preserve set (Ganeti 2.9.0
// and 2.9.1 then wait for their whole timeout, here 3s).
func BenchmarkGanetiStop(b *testing.B) {
	for _, tc := range []struct {
		name    string
		shim    bool
		wait    bool
		timeout time.Duration
	}{
		{"shim-reaper", true, false, 30 * time.Second},
		{"shim-wait", true, true, 30 * time.Second},
		{"no-shim-no-reaper", false, false, 3 * time.Second},
	} {
		b.Run(tc.name, func(b *testing.B) {
			n := newNode(b, xen.XL, []instance{{name: "web1.example.com", admin: "up"}}, "")
			toolstack := n.sim
			if tc.shim {
				toolstack = n.installShim()
			}
			i := 0
			for b.Loop() {
				b.StopTimer()
				name := fmt.Sprintf("web%d.example.com", i)
				i++
				n.start(name)
				n.xl("sim", "set", name, "shutdown-delay=200ms")
				b.StartTimer()
				n.ganetiStop(toolstack, name, tc.wait, tc.timeout)
			}
		})
	}
}
