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
