package watcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/cli"
	"ganeti-userdown/internal/testbin"
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

// TakeRunLock: a read-only run's lock leaves the state dir
// byte-identical (no run.lock is created); a real run's creates and
// holds run.lock, so that a second real run waits for it, gives up after
// its wait and exits 1; an unsafe state dir exits 3.
//
// Reference: doc/design.md, "State files": reading changes nothing;
// "Exit codes".
func TestTakeRunLock(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, _ := sources(t, newFakeXen(), &fakeCluster{})
	seedState(t, s.Store)
	before := testbin.Snapshot(t, s.Store.Dir())
	release, code := TakeRunLock(ctx, s.Store, false, time.Second, log)
	if release == nil || code != cli.ExitOK {
		t.Fatalf("read-only run: exit %d, no lock", code)
	}
	release()
	if d := cmp.Diff(before, testbin.Snapshot(t, s.Store.Dir())); d != "" {
		t.Errorf("a read-only run's lock changed the state dir (-before +after):\n%s", d)
	}

	release, code = TakeRunLock(ctx, s.Store, true, time.Second, log)
	if release == nil || code != cli.ExitOK {
		t.Fatalf("real run: exit %d, no lock", code)
	}
	if _, err := os.Stat(s.Store.RunLockPath()); err != nil {
		t.Errorf("a real run's lock: %v", err)
	}
	if again, code := TakeRunLock(ctx, s.Store, true, 50*time.Millisecond, log); again != nil || code != cli.ExitFailed {
		t.Errorf("with the lock held: exit %d (lock %v), want 1 and no lock", code, again != nil)
	}
	release()

	if err := os.Chmod(s.Store.Dir(), 0o777); err != nil {
		t.Fatal(err)
	}
	if release, code := TakeRunLock(ctx, s.Store, true, time.Second, log); release != nil || code != cli.ExitUnreadable {
		t.Errorf("unsafe state dir: exit %d (lock %v), want 3 and no lock", code, release != nil)
	}
}
