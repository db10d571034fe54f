package ganeti

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// DefaultRunTimeout is the default run budget ([cluster] run_timeout): two
// of them (userdown-detect, then userdown-destroy) fit in the watcher
// hook's 300 s with room for the toolstack calls.
const DefaultRunTimeout = 2 * time.Minute

// ErrRunBudget is the cause of a request, retry or job wait cut short
// because the run's budget for the cluster ([cluster] run_timeout) is used
// up.
var ErrRunBudget = errors.New("the run's time for the cluster ([cluster] run_timeout) is used up")

// budget is one run's deadline for the cluster, shared by every request,
// retry, command and job wait of a Client: [cluster] timeout bounds each
// of them, and the budget bounds them all together, so that retries and
// several calls cannot add up past what the watcher hook allows. The
// first call of the client starts it: a Client serves one run.
type budget struct {
	total time.Duration

	mu       sync.Mutex
	deadline time.Time
}

func newBudget(total time.Duration) (*budget, error) {
	if total == 0 {
		total = DefaultRunTimeout
	}
	if total < 0 {
		return nil, fmt.Errorf("run timeout must be positive, got %s", total)
	}
	return &budget{total: total}, nil
}

// context returns ctx bounded by the run's deadline, starting the budget
// on the first call; its cause, once past, is ErrRunBudget.
func (b *budget) context(ctx context.Context) (context.Context, context.CancelFunc) {
	b.mu.Lock()
	if b.deadline.IsZero() {
		b.deadline = time.Now().Add(b.total)
	}
	d := b.deadline
	b.mu.Unlock()
	return context.WithDeadlineCause(ctx, d, ErrRunBudget)
}

// ctxErr describes why ctx ended: its error, with the cause beside it
// (ErrRunBudget when the run's budget ran out) so that both
// context.DeadlineExceeded and the cause match with errors.Is.
func ctxErr(ctx context.Context) error {
	if c := context.Cause(ctx); c != nil && c != ctx.Err() {
		return fmt.Errorf("%w: %w", ctx.Err(), c)
	}
	return ctx.Err()
}
