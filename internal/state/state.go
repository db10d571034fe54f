// Package state keeps ganeti-userdown's own records on a node, under the
// [state] dir: the intents that say a shutdown was asked for by Ganeti or
// an operator, the observations of shut-down domains that the settle
// period needs, and the lock that keeps two watcher runs apart.
//
// Every file is replaced atomically (internal/atomicfile), so a reader or
// a crash sees either the old record or the new one.
package state

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Store is the state directory of one node.
type Store struct {
	dir string
}

// Open returns the store rooted at dir. Nothing is read or created until
// a method needs it.
func Open(dir string) *Store { return &Store{dir: dir} }

// Dir returns the directory the store lives in.
func (s *Store) Dir() string { return s.dir }

func (s *Store) intentDir() string { return filepath.Join(s.dir, "intents") }

// ObservationsPath is the file holding the observations.
func (s *Store) ObservationsPath() string { return filepath.Join(s.dir, "observations.json") }

// RunLockPath is the file locked for the length of one detect or destroy
// run.
func (s *Store) RunLockPath() string { return filepath.Join(s.dir, "run.lock") }

// Lock is a held flock(2) lock; Unlock releases it.
type Lock struct {
	f *os.File
}

// Unlock releases the lock. It is safe to call on a nil Lock.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the descriptor releases the flock
	l.f = nil
	return err
}

// LockFile takes an exclusive flock(2) on path, creating the file (and its
// directory) when missing. It waits until the lock is free or ctx ends.
func LockFile(ctx context.Context, path string) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	delay := time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &Lock{f: f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-t.C:
		}
		if delay < 50*time.Millisecond {
			delay *= 2
		}
	}
}

// LockRun takes the store's run lock, so that two detect or destroy runs
// (the watcher's and an operator's, say) never overlap.
func (s *Store) LockRun(ctx context.Context) (*Lock, error) {
	return LockFile(ctx, s.RunLockPath())
}

// lockIntents takes the lock that serialises intent writers with the
// pruning of expired intents, so that a pruner never removes an intent
// that was rewritten after it read the expired one.
// Holders keep it for one small file operation; the bound only guards
// against a stuck process.
func (s *Store) lockIntents() (*Lock, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return LockFile(ctx, filepath.Join(s.intentDir(), ".lock"))
}

func notExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
