package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ganeti-userdown/internal/doctor"
	"ganeti-userdown/internal/state"
)

// Reference: doc/design.md, "Event daemon": doctor reports whether the
// daemon runs (it holds its lock in the state dir) and when it last
// acted (its status file).
func TestDoctorSeesTheDaemon(t *testing.T) {
	n := newDoctorNode(t)
	s := state.Open(filepath.Join(n.dir, "state"))
	lock, err := s.LockDaemon(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()
	now := time.Now()
	if err := s.SaveDaemonStatus(state.DaemonStatus{PID: os.Getpid(), Started: now.Add(-time.Hour), LastRun: now, LastTrigger: "event",
		LastAction: now, LastActionWhat: "marked down web1"}); err != nil {
		t.Fatal(err)
	}
	r, _, _ := n.doctor(t)
	var got doctor.Result
	for _, c := range r.Checks {
		if c.Check == "daemon" {
			got = c
		}
	}
	if got.Status != doctor.OK || !strings.Contains(got.Message, "runs") || !strings.Contains(got.Message, "marked down web1") {
		t.Errorf("daemon check: %+v", got)
	}
	lock.Unlock()
	r, _, _ = n.doctor(t)
	for _, c := range r.Checks {
		if c.Check == "daemon" && (c.Status != doctor.Warn || !strings.Contains(c.Message, "does not run")) {
			t.Errorf("after the daemon stopped: %+v", c)
		}
	}
}
