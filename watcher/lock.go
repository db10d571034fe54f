package watcher

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"ganeti-userdown/internal/cli"
	"ganeti-userdown/internal/state"
)

// LockFailed logs why a detect or destroy run could not take the node's
// run lock (state.Store.LockRun) and returns the exit code: another run
// held it for the whole wait (or the wait was cancelled) is not "state
// unreadable" but a run not done, cli.ExitFailed, which the next run
// makes up for; a lock that cannot be taken at all (the state directory
// is unusable) is cli.ExitUnreadable. Nothing was done either way.
func LockFailed(log *slog.Logger, err error, wait time.Duration) int {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		log.Warn("another run holds the lock; this run did nothing", "waited", wait.String(), "err", err)
		return cli.ExitFailed
	}
	log.Error("the run lock cannot be taken; nothing done", "err", err)
	return cli.ExitUnreadable
}

// TakeRunLock takes the node's run lock for one detect or destroy run,
// waiting at most wait: a run that writes (real: userdown-detect
// --mark-down, userdown-destroy without --dry-run) the exclusive one, a
// run that only reads the shared one (state.Store.ReadLock), which
// creates nothing. It returns the lock's release, or nil and the exit
// code (see LockFailed) when the run must stop, having done nothing.
//
// Reference: doc/design.md, "State files": reading changes nothing;
// "Exit codes".
func TakeRunLock(ctx context.Context, s *state.Store, real bool, wait time.Duration, log *slog.Logger) (release func(), code int) {
	lockRun := s.ReadLock
	if real {
		lockRun = s.LockRun
	}
	lctx, cancel := context.WithTimeout(ctx, wait)
	lock, err := lockRun(lctx)
	cancel()
	if err != nil {
		return nil, LockFailed(log, err, wait)
	}
	return func() { lock.Unlock() }, cli.ExitOK
}
