package watcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"ganeti-userdown/internal/cli"
)

// Reference: doc/design.md, "Exit codes": a busy run lock exits 1, a lock
// that cannot be taken at all 3.
func TestLockFailed(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
		log  string
	}{
		{fmt.Errorf("lock /x/run.lock: %w", context.DeadlineExceeded), cli.ExitFailed, "another run holds the lock"},
		{fmt.Errorf("lock /x/run.lock: %w", context.Canceled), cli.ExitFailed, "another run holds the lock"},
		{errors.New("lock /x/run.lock: permission denied"), cli.ExitUnreadable, "cannot be taken"},
	} {
		var b strings.Builder
		code := LockFailed(slog.New(slog.NewTextHandler(&b, nil)), tc.err, time.Minute)
		if code != tc.code || !strings.Contains(b.String(), tc.log) {
			t.Errorf("%v: exit %d, log %q; want %d and %q", tc.err, code, b.String(), tc.code, tc.log)
		}
	}
}
