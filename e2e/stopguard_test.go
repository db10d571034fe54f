package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ganeti-userdown/detect"
	"ganeti-userdown/internal/xen"
	"ganeti-userdown/testdata/ganetifake"
)

// TestStopGuardRefusesMarkDownAfterReboot replays the race the randomized
// test once found (seed 1796176864224330053): our mark-down of a user's
// poweroff is queued behind an operator's Ganeti reboot of the instance,
// which starts the domain again and ends before the client could cancel
// the waiting job (here: Ganeti refuses the cancel). The shutdown job
// then runs the instance-stop pre hook, whose stop guard refuses it: the
// rebooted domain keeps running, the instance stays admin up, and
// userdown-detect reports the mark-down as refused, not as a failure.
//
// Reference: design.md, "The stop guard".
func TestStopGuardRefusesMarkDownAfterReboot(t *testing.T) {
	const x = "a.example.com"
	n := newNode(t, xen.XL, []instance{{name: x, admin: "up"}}, "")
	hook := n.hookBinary()
	n.start(x)
	n.xl("sim", "poweroff", x)
	off, _ := n.domain(x)
	if err := n.rapi.Update(func(st *ganetifake.State) error {
		st.Toolstack.StopHook = hook
		st.Toolstack.HookEnv = []string{"USERDOWN_CONFIG=" + n.config}
		st.Knobs.RefuseCancel = true
		st.Knobs.QueueJobs = map[string]bool{x: true}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	type result struct {
		out  string
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		out, code, err := n.runJobStep(60*time.Second, nil, n.detect, "--mark-down", "--json")
		done <- result{out, code, err}
	}()
	// Our mark-down is submitted (the master holds it queued)...
	waitJob := func(status string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			for _, j := range n.rapi.State().Jobs {
				if fromUserdown(j) && j.Status == status {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("the mark-down job never was %s", status)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitJob("queued")
	// ... then the operator's reboot takes the instance lock first, and
	// our job waits behind it.
	reboot, err := n.rapi.Engine.HoldLock(x, "OP_INSTANCE_REBOOT")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.rapi.Update(func(st *ganetifake.State) error {
		st.Knobs.QueueJobs = nil
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := n.rapi.Engine.Schedule(); err != nil {
		t.Fatal(err)
	}
	waitJob("waiting")
	// The reboot: the powered-off domain is destroyed, a new one created.
	n.xl("destroy", x)
	n.xl("create", filepath.Join(n.xenDir, x))
	rebooted, ok := n.domain(x)
	if !ok || !rebooted.State.Alive() || rebooted.ID == off.ID {
		t.Fatalf("reboot: %+v %v", rebooted, ok)
	}
	if err := n.rapi.Engine.Finish(reboot, "success", nil); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.code != 0 {
		t.Fatalf("userdown-detect --mark-down: exit %d, %v: %s", r.code, r.err, r.out)
	}
	if d, ok := n.domain(x); !ok || d.ID != rebooted.ID || !d.State.Alive() {
		t.Errorf("the rebooted domain was stopped: %+v %v", d, ok)
	}
	if s := n.instanceState(x); s != "up" {
		t.Errorf("admin state %q, want up", s)
	}
	var job ganetifake.Job
	for _, j := range n.rapi.State().Jobs {
		if fromUserdown(j) {
			job = j
		}
	}
	if job.Status != "error" || !strings.Contains(string(job.Result), "HooksAbort") || !strings.Contains(string(job.Result), detect.StopRefused+x) {
		t.Errorf("mark-down job %d: %s %s, want refused by the stop pre hook", job.ID, job.Status, job.Result)
	}
	var rep struct {
		Jobs []struct {
			Instance, Status, Why string
			Failed                bool
		} `json:"jobs"`
	}
	// stdout, then the log on stderr.
	if err := json.NewDecoder(strings.NewReader(r.out)).Decode(&rep); err != nil {
		t.Fatalf("%v\n%s", err, r.out)
	}
	if len(rep.Jobs) != 1 || rep.Jobs[0].Status != "refused" || rep.Jobs[0].Failed || !strings.Contains(rep.Jobs[0].Why, "started again") {
		t.Errorf("report jobs %+v, want one refused, not failed", rep.Jobs)
	}
}
