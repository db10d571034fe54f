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

// DaemonStatusPath is the file holding the daemon's status.
func (s *Store) DaemonStatusPath() string { return filepath.Join(s.dir, daemonStatusName) }

// DaemonLockPath is the file the running daemon holds locked for its
// whole life: whether it is locked says whether a daemon runs.
func (s *Store) DaemonLockPath() string { return filepath.Join(s.dir, daemonLockName) }

const (
	daemonStatusName  = "watchd.json"
	daemonLockName    = "watchd.lock"
	daemonStatusLimit = 64 << 10
)

// SaveDaemonStatus replaces the daemon's status file.
func (s *Store) SaveDaemonStatus(st DaemonStatus) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("daemon status: %w", err)
	}
	r, err := s.openRoot(true)
	if err != nil {
		return fmt.Errorf("daemon status: %w", err)
	}
	defer r.close()
	if err := r.writeFile(daemonStatusName, append(b, '\n')); err != nil {
		return fmt.Errorf("daemon status: %w", err)
	}
	return nil
}

// LoadDaemonStatus reads the daemon's status; found is false when no
// daemon ever ran here.
func (s *Store) LoadDaemonStatus() (st DaemonStatus, found bool, err error) {
	r, err := s.openRoot(false)
	if err != nil {
		return DaemonStatus{}, false, fmt.Errorf("daemon status: %w", err)
	}
	if r == nil {
		return DaemonStatus{}, false, nil
	}
	defer r.close()
	b, _, err := r.readFile(daemonStatusName, daemonStatusLimit)
	if notExist(err) {
		return DaemonStatus{}, false, nil
	}
	if err != nil {
		return DaemonStatus{}, false, fmt.Errorf("daemon status: %w", err)
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
		return nil, fmt.Errorf("daemon lock: %w", err)
	}
	defer r.close()
	return lockAt(ctx, r, daemonLockName, true)
}

// DaemonRunning reports whether a process holds the daemon's lock. It
// takes a shared lock for an instant, on a descriptor of its own, and
// drops it at once: a daemon starting in that instant waits for it
// (LockDaemon waits), it does not fail.
func (s *Store) DaemonRunning() (bool, error) {
	r, err := s.openRoot(false)
	if err != nil {
		return false, fmt.Errorf("daemon lock: %w", err)
	}
	if r == nil {
		return false, nil
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
