package state

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDaemonStatusAndLock(t *testing.T) {
	s := Open(t.TempDir())
	if _, found, err := s.LoadDaemonStatus(); found || err != nil {
		t.Fatalf("fresh dir: found %v, err %v", found, err)
	}
	if running, err := s.DaemonRunning(); running || err != nil {
		t.Fatalf("fresh dir: running %v, err %v", running, err)
	}
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	st := DaemonStatus{PID: 42, Started: at, LastRun: at.Add(time.Minute), LastTrigger: "event",
		LastAction: at.Add(time.Minute), LastActionWhat: "marked down web1"}
	if err := s.SaveDaemonStatus(st); err != nil {
		t.Fatal(err)
	}
	got, found, err := s.LoadDaemonStatus()
	if err != nil || !found {
		t.Fatalf("load: %v, %v", found, err)
	}
	if d := cmp.Diff(st, got); d != "" {
		t.Errorf("status (-want +got):\n%s", d)
	}

	l, err := s.LockDaemon(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if running, err := s.DaemonRunning(); !running || err != nil {
		t.Errorf("while locked: running %v, err %v", running, err)
	}
	// A second daemon does not get the lock while the first runs.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if l2, err := s.LockDaemon(ctx); err == nil {
		l2.Unlock()
		t.Error("a second daemon took the lock")
	}
	l.Unlock()
	if running, err := s.DaemonRunning(); running || err != nil {
		t.Errorf("after unlock: running %v, err %v", running, err)
	}
}
