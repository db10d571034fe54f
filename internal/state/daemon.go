package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"time"
)

// DaemonStatus is what userdown-watchd records in the state dir after
// every run, for doctor and for operators.
type DaemonStatus struct {
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	// LastRun is when the last run ended, LastTrigger what started it
	// (start, event, rescan, retry, reconnect, reload), LastError its
	// error ("" when it succeeded).
	LastRun     time.Time `json:"last_run"`
	LastTrigger string    `json:"last_trigger"`
	LastError   string    `json:"last_error,omitempty"`
	// LastAction is when a run last changed something (marked down,
	// destroyed, started); LastActionWhat says what.
	LastAction     time.Time `json:"last_action,omitzero"`
	LastActionWhat string    `json:"last_action_what,omitempty"`
}

const (
	daemonStatusName = "watchd.json"
	daemonLockName   = "watchd.lock"
	// recordLimit bounds the small records of this file (the daemon's
	// status, the metrics' totals).
	recordLimit = 1 << 20
)

// DaemonStatusPath is the file holding the daemon's status.
func (s *Store) DaemonStatusPath() string { return filepath.Join(s.dir, daemonStatusName) }

// DaemonLockPath is the file the running daemon holds locked for its
// whole life: whether it is locked says whether a daemon runs.
func (s *Store) DaemonLockPath() string { return filepath.Join(s.dir, daemonLockName) }

// SaveRecord replaces the record name (one file in the state dir)
// atomically, creating the state dir when missing.
func (s *Store) SaveRecord(name string, data []byte) error {
	r, err := s.openRoot(true)
	if err != nil {
		return fmt.Errorf("save %s: %w", name, err)
	}
	defer r.close()
	if err := r.writeFile(name, data); err != nil {
		return fmt.Errorf("save %s: %w", name, err)
	}
	return nil
}

// LoadRecord reads the record name; found is false when it does not
// exist (nor the state dir).
func (s *Store) LoadRecord(name string) (data []byte, found bool, err error) {
	r, err := s.openRoot(false)
	if err != nil || r == nil {
		return nil, false, err
	}
	defer r.close()
	b, _, err := r.readFile(name, recordLimit)
	if notExist(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

// SaveDaemonStatus replaces the daemon's status file.
func (s *Store) SaveDaemonStatus(st DaemonStatus) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("daemon status: %w", err)
	}
	return s.SaveRecord(daemonStatusName, append(b, '\n'))
}

// LoadDaemonStatus reads the daemon's status; found is false when no
// daemon ever ran here.
func (s *Store) LoadDaemonStatus() (st DaemonStatus, found bool, err error) {
	b, found, err := s.LoadRecord(daemonStatusName)
	if err != nil || !found {
		return DaemonStatus{}, false, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return DaemonStatus{}, false, fmt.Errorf("daemon status %s: %w", s.DaemonStatusPath(), err)
	}
	return st, true, nil
}

// LockDaemon takes the daemon's lock, waiting until ctx ends: only one
// daemon runs per state dir.
func (s *Store) LockDaemon(ctx context.Context) (*Lock, error) {
	r, err := s.openRoot(true)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	defer r.close()
	return lockAt(ctx, r, daemonLockName, true)
}

// DaemonRunning reports whether a process holds the daemon's lock. It
// takes a shared lock for an instant, on a descriptor of its own, and
// drops it at once: a daemon starting in that instant waits for it
// (LockDaemon waits), it does not fail. It creates nothing.
func (s *Store) DaemonRunning() (bool, error) {
	r, err := s.openRoot(false)
	if err != nil || r == nil {
		return false, err
	}
	defer r.close()
	f, err := r.openFile(daemonLockName, syscall.O_RDONLY)
	if notExist(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("daemon lock: %w", err)
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	switch {
	case err == nil:
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return false, nil
	case errors.Is(err, syscall.EWOULDBLOCK):
		return true, nil
	}
	return false, fmt.Errorf("daemon lock %s: %w", s.DaemonLockPath(), err)
}
