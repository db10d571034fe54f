package watcher

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"ganeti-userdown/internal/cli"
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

// Run is one detect or destroy run on this node. It takes the run lock,
// waiting at most wait: a run that writes (real: userdown-detect
// --mark-down, userdown-destroy without --dry-run) the exclusive one, a
// run that only reads the shared one, which creates nothing. It then
// scans the node (Node) and, for a real run only, records what it saw
// (Record: observations, the prune of expired intents); act runs with
// the result, the lock still held. It returns act's exit code, or the
// lock's (LockFailed) or the scan's (ExitCode) when the run stops before
// act, having changed nothing.
//
// Reference: doc/design.md, "State files": reading changes nothing.
func Run(ctx context.Context, s Sources, real bool, wait time.Duration, log *slog.Logger, act func(Result) int) int {
	lockRun := s.Store.ReadLock
	if real {
		lockRun = s.Store.LockRun
	}
	lctx, cancel := context.WithTimeout(ctx, wait)
	lock, err := lockRun(lctx)
	cancel()
	if err != nil {
		return LockFailed(log, err, wait)
	}
	defer lock.Unlock()

	res, err := Node(ctx, s)
	if err != nil {
		log.Error(err.Error() + "; nothing changed")
		return ExitCode(err)
	}
	if real {
		Record(s, &res)
	}
	return act(res)
}
