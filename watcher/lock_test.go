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
	"ganeti-userdown/internal/ganeti"
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

// Run: a read-only run leaves the state dir byte-identical (run.lock not
// created, nothing recorded); a real run records; a held lock stops the
// run before act with exit 1, an unreadable scan with exit 3.
//
// Reference: doc/design.md, "State files": reading changes nothing;
// "Exit codes".
func TestRun(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	x := newFakeXen(dom("a", 1, poweroff))
	c := &fakeCluster{instances: []ganeti.Instance{up("a")}}
	s, _ := sources(t, x, c)
	seedState(t, s.Store)
	before := testbin.Snapshot(t, s.Store.Dir())
	acted := 0
	act := func(res Result) int {
		acted++
		if d := cmp.Diff([]string{"a"}, res.Report.MarkDown); d != "" {
			t.Errorf("act got mark-down (-want +got):\n%s", d)
		}
		return cli.ExitOK
	}
	if code := Run(ctx, s, false, time.Second, log, act); code != cli.ExitOK || acted != 1 {
		t.Fatalf("read-only run: exit %d, act called %d times", code, acted)
	}
	if d := cmp.Diff(before, testbin.Snapshot(t, s.Store.Dir())); d != "" {
		t.Errorf("a read-only run changed the state dir (-before +after):\n%s", d)
	}
	if code := Run(ctx, s, true, time.Second, log, act); code != cli.ExitOK || acted != 2 {
		t.Fatalf("real run: exit %d, act called %d times", code, acted)
	}
	if obs, _ := s.Store.LoadObservations(t0); len(obs) != 1 {
		t.Errorf("a real run recorded %v, want the one shutdown", obs)
	}

	held, err := s.Store.LockRun(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if code := Run(ctx, s, true, 50*time.Millisecond, log, act); code != cli.ExitFailed || acted != 2 {
		t.Errorf("with the lock held: exit %d, act called %d times; want 1 and not called", code, acted)
	}
	held.Unlock()

	if err := os.Chmod(s.Store.Dir(), 0o777); err != nil {
		t.Fatal(err)
	}
	if code := Run(ctx, s, false, time.Second, log, act); code != cli.ExitUnreadable || acted != 2 {
		t.Errorf("unsafe state dir: exit %d, act called %d times; want 3 and not called", code, acted)
	}
}
