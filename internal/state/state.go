// Package state keeps ganeti-userdown's own records on a node, under the
// [state] dir: the intents that say a shutdown was asked for by Ganeti or
// an operator, the observations of shut-down domains that the settle
// period needs, and the lock that keeps two watcher runs apart.
//
// Every file is replaced atomically (internal/atomicfile), so a reader or
// a crash sees either the old record or the new one. The directory is
// trusted only when root's and writable by root alone; files in it are
// never reached through a symbolic link, and each read is bounded.
// Reading changes nothing: the writes (recording and clearing intents,
// pruning them, saving observations) are explicit steps of real runs.
package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// DefaultIntentTTL is the [state] intent_ttl a Store caps intents at
// unless told otherwise (WithIntentTTL).
const DefaultIntentTTL = time.Hour

// intentsLockWait bounds the wait for intents/.lock: holders keep it for
// one small file operation, so only a stuck process holds it longer.
const intentsLockWait = 10 * time.Second

// Store is the state directory of one node.
type Store struct {
	dir string
	// ttl caps every intent's life at its creation plus ttl.
	ttl time.Duration
	// lockWait bounds the wait for the intents lock.
	lockWait time.Duration
}

// Open returns the store rooted at dir. Nothing is read or created until
// a method needs it; reading never creates or changes anything.
func Open(dir string) *Store {
	return &Store{dir: dir, ttl: DefaultIntentTTL, lockWait: intentsLockWait}
}

// WithIntentTTL returns a copy of the store that caps intents at ttl
// ([state] intent_ttl): an intent counts at most ttl after its creation,
// whatever its file says.
func (s *Store) WithIntentTTL(ttl time.Duration) *Store {
	c := *s
	if ttl > 0 {
		c.ttl = ttl
	}
	return &c
}

// Dir returns the directory the store lives in.
func (s *Store) Dir() string { return s.dir }

// ObservationsPath is the file holding the observations.
func (s *Store) ObservationsPath() string { return filepath.Join(s.dir, observationsFileName) }

// RunLockPath is the file locked for the length of one detect or destroy
// run.
func (s *Store) RunLockPath() string { return filepath.Join(s.dir, runLockName) }

const (
	observationsFileName = "observations.json"
	runLockName          = "run.lock"
	intentsDirName       = "intents"
	intentsLockName      = ".lock"
)

// Verify checks that the state directory, when it exists, can be
// trusted (see Problems for the full list a doctor shows). A run that
// decides from the intents must stop on its error: an untrusted intent
// could make it destroy what it must not.
func (s *Store) Verify() error {
	r, err := s.openRoot(false)
	if err != nil || r == nil {
		return err
	}
	defer r.close()
	d, err := r.sub(intentsDirName, false)
	d.close()
	return err
}

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

// lockAt takes an exclusive flock(2) on name inside d, creating the file
// with create. It waits until the lock is free or ctx ends.
func lockAt(ctx context.Context, d *root, name string, create bool) (*Lock, error) {
	flag := syscall.O_RDONLY
	if create {
		flag = syscall.O_RDWR | syscall.O_CREAT
	}
	f, err := d.openFile(name, flag)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	delay := time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &Lock{f: f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			name := f.Name()
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", name, ctx.Err())
		case <-t.C:
		}
		if delay < 50*time.Millisecond {
			delay *= 2
		}
	}
}

// LockRun takes the store's run lock, creating the state directory and
// the lock file when missing, so that two real detect or destroy runs
// (the watcher's and an operator's, say) never overlap.
func (s *Store) LockRun(ctx context.Context) (*Lock, error) {
	r, err := s.openRoot(true)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	defer r.close()
	return lockAt(ctx, r, runLockName, true)
}

// ReadLock takes the run lock for a run that only reads (a dry run, a
// plain listing) and creates nothing: when the state directory or its
// lock file does not exist, no real run ever made them, and it returns
// a nil Lock (Unlock on it is a no-op).
func (s *Store) ReadLock(ctx context.Context) (*Lock, error) {
	r, err := s.openRoot(false)
	if err != nil || r == nil {
		return nil, err
	}
	defer r.close()
	l, err := lockAt(ctx, r, runLockName, false)
	if err != nil && notExist(err) {
		return nil, nil
	}
	return l, err
}
