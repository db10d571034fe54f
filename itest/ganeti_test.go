//go:build itest

package itest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// master is where every gnt-* command runs.
var master = node1

// initCluster makes node1 a single-node cluster: xen-pvm through xl (the
// simulator behind ganeti-userdown's shim), diskless instances, no ssh
// setup by Ganeti (the suite's key is already in place), and a RAPI user
// for ganeti-userdown on every node.
func initCluster(t testing.TB) {
	t.Helper()
	master.run(t, "gnt-cluster", "init",
		"--enabled-hypervisors=xen-pvm", "--enabled-disk-templates=diskless",
		"-H", "xen-pvm:kernel_path="+simDir+"/vmlinuz,initrd_path=,root_path=/dev/xvda1,xen_cmd=xl",
		"--master-netdev=xen-br0", "--master-netmask=32", "--nic-parameters=mode=bridged,link=xen-br0",
		"--no-etc-hosts", "--no-ssh-init", "--user-shutdown=false", clusterName)
	// Picked up by ganeti-rapi without a restart.
	master.run(t, "sh", "-ec", fmt.Sprintf(`f=/var/lib/ganeti/rapi/users
echo "%s %s write" >$f
chown gnt-rapi:gnt-masterd $f
chmod 0640 $f`, rapiUser, rapiPass))
}

// addNode2 joins node2: Ganeti's node-daemon-setup over ssh into node2's
// namespaces, then LUNodeAdd.
func addNode2(t testing.TB) {
	t.Helper()
	master.run(t, "gnt-node", "add", node2.name)
	// The master's ssconf and rapi.pem reach node2 with the add; its
	// ganeti-userdown then reaches the master's RAPI.
	node2.run(t, "test", "-s", "/var/lib/ganeti/rapi.pem")
}

// instance is a line of `gnt-instance list`.
type instance struct {
	Name, PNode, Admin, Oper, Status string
}

func (i instance) String() string {
	return fmt.Sprintf("%s on %s: admin %s, oper %s, %s", i.Name, i.PNode, i.Admin, i.Oper, i.Status)
}

func instances(t testing.TB) map[string]instance {
	t.Helper()
	out := master.run(t, "gnt-instance", "list", "--no-headers", "--separator=|", "-o", "name,pnode,admin_state,oper_state,status")
	m := map[string]instance{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(l, "|")
		if len(f) != 5 {
			if l != "" {
				t.Fatalf("gnt-instance list: unexpected line %q", l)
			}
			continue
		}
		m[f[0]] = instance{f[0], f[1], f[2], f[3], f[4]}
	}
	return m
}

// job is a line of `gnt-job list`.
type job struct {
	ID              int
	Status, Summary string
}

func (j job) String() string { return fmt.Sprintf("job %d %s %s", j.ID, j.Status, j.Summary) }

func jobs(t testing.TB) []job {
	t.Helper()
	out := master.run(t, "gnt-job", "list", "--no-headers", "--separator=|", "-o", "id,status,summary")
	var js []job
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.SplitN(l, "|", 3)
		if len(f) != 3 {
			continue
		}
		id, err := strconv.Atoi(f[0])
		if err != nil {
			t.Fatalf("gnt-job list: %q: %v", l, err)
		}
		js = append(js, job{id, f[1], f[2]})
	}
	return js
}

// jobsAfter returns the jobs with an id above id.
func jobsAfter(t testing.TB, id int) []job {
	t.Helper()
	var out []job
	for _, j := range jobs(t) {
		if j.ID > id {
			out = append(out, j)
		}
	}
	return out
}

// rapi GETs path from the master's RAPI (as ganeti-userdown's user)
// into v. Polls go through RAPI: a gnt-* command costs a Python start.
func rapi(t testing.TB, path string, v any) {
	t.Helper()
	out := master.run(t, "curl", "-sSfk", "-u", rapiUser+":"+rapiPass, "https://127.0.0.1:5080"+path)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("RAPI %s: %v\n%s", path, err, out)
	}
}

// jobIDs lists the ids of the jobs in the queue.
func jobIDs(t testing.TB) []int {
	t.Helper()
	var list []struct {
		ID json.RawMessage `json:"id"`
	}
	rapi(t, "/2/jobs", &list)
	var ids []int
	for _, j := range list {
		id, err := strconv.Atoi(strings.Trim(string(j.ID), `"`))
		if err != nil {
			t.Fatalf("RAPI /2/jobs: id %s: %v", j.ID, err)
		}
		ids = append(ids, id)
	}
	return ids
}

func lastJob(t testing.TB) int {
	t.Helper()
	last := 0
	for _, id := range jobIDs(t) {
		last = max(last, id)
	}
	return last
}

// waitJobs waits until every job after since has ended and returns
// them, from RAPI.
func waitJobs(t testing.TB, since int) []job {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var js, busy []job
		for _, id := range jobIDs(t) {
			if id <= since {
				continue
			}
			var j struct {
				Status  string   `json:"status"`
				Summary []string `json:"summary"`
			}
			rapi(t, fmt.Sprintf("/2/jobs/%d", id), &j)
			js = append(js, job{id, j.Status, strings.Join(j.Summary, ",")})
			switch j.Status {
			case "queued", "waiting", "running", "canceling":
				busy = append(busy, js[len(js)-1])
			}
		}
		if len(busy) == 0 {
			sort.Slice(js, func(a, b int) bool { return js[a].ID < js[b].ID })
			return js
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs still busy after 2m: %v", busy)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// rapiInstance is the instance as RAPI reports it.
func rapiInstance(t testing.TB, name string) instance {
	t.Helper()
	var i struct {
		Name   string          `json:"name"`
		PNode  string          `json:"pnode"`
		Admin  json.RawMessage `json:"admin_state"`
		Oper   bool            `json:"oper_state"`
		Status string          `json:"status"`
	}
	rapi(t, "/2/instances/"+name, &i)
	admin := strings.Trim(string(i.Admin), `"`)
	switch admin {
	case "true":
		admin = "up"
	case "false":
		admin = "down"
	}
	return instance{i.Name, i.PNode, admin, map[bool]string{true: "Y", false: "N"}[i.Oper], i.Status}
}

// countJobs counts the jobs with that summary and status.
func countJobs(js []job, summary, status string) int {
	n := 0
	for _, j := range js {
		if j.Summary == summary && j.Status == status {
			n++
		}
	}
	return n
}

// checkJobs fails the test for any job that did not succeed, except
// those allowed (summary → status).
func checkJobs(t testing.TB, js []job, allowed map[string]string) {
	t.Helper()
	for _, j := range js {
		if j.Status == "success" || allowed[j.Summary] == j.Status {
			continue
		}
		t.Errorf("%v", j)
		if out, err := master.output(context.Background(), nil, "gnt-job", "info", strconv.Itoa(j.ID)); err == nil {
			t.Logf("gnt-job info %d:\n%s", j.ID, out)
		}
	}
}

func addInstance(t testing.TB, name string, on *node) {
	t.Helper()
	master.run(t, "gnt-instance", "add", "-t", "diskless", "-o", "noop+default", "-H", "xen-pvm",
		"-n", on.name, "--no-name-check", "--no-ip-check", "-B", "memory=128M,vcpus=1", name)
}

// ensureRunning starts the instance when it is not running (forced, as an
// operator who means it), and forgets the watcher's restart attempts, so
// that each trial meets a watcher that still restarts (it gives up after
// five attempts that it never saw succeed).
func ensureRunning(t testing.TB, name string) {
	t.Helper()
	if rapiInstance(t, name).Status != "running" {
		since := lastJob(t)
		master.run(t, "curl", "-sSfk", "-u", rapiUser+":"+rapiPass, "-X", "PUT", "-H", "Content-Type: application/json", "-d", "{}",
			"https://127.0.0.1:5080/2/instances/"+name+"/startup?force=1")
		js := waitJobs(t, since)
		checkJobs(t, js, nil)
		if got := rapiInstance(t, name); got.Status != "running" {
			t.Fatalf("forced start for the next trial: %v (jobs %v)", got, js)
		}
	}
	master.run(t, "sh", "-c", "rm -f /var/lib/ganeti/watcher.*.data")
}

// runWatchers starts the real ganeti-watcher on the given nodes at the
// same moment, as cron does on every node at second 0, and waits for all.
func runWatchers(t testing.TB, on ...*node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmds := make([]*exec.Cmd, len(on))
	outs := make([]*bytes.Buffer, len(on))
	for i, n := range on {
		outs[i] = &bytes.Buffer{}
		cmds[i] = n.command(ctx, []string{"USERDOWN_WATCHER_LOG=/var/log/ganeti/userdown-watcher.log"}, "ganeti-watcher")
		cmds[i].Stdout, cmds[i].Stderr = outs[i], outs[i]
	}
	for _, c := range cmds {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("%s: ganeti-watcher: %v\n%s", on[i].name, err, outs[i])
		}
	}
}

// dumpLogs writes the nodes' logs that explain a failure to the test log.
func dumpLogs(t testing.TB) {
	t.Helper()
	for _, n := range nodes {
		out, _ := n.sh(context.Background(), `for f in /var/log/ganeti/watcher.log /var/log/ganeti/userdown-watcher.log; do
	[ -f $f ] && { echo "== $f"; tail -n 30 $f; }
done; true`)
		t.Logf("%s:\n%s", n.name, out)
	}
}

// diagnoseOnFailure dumps the logs when the test has failed by the end.
func diagnoseOnFailure(t *testing.T) {
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("ITEST_QUIET") == "" {
			dumpLogs(t)
		}
	})
}
