package xenstore_test

import (
	"context"
	"log/slog"
	"time"

	"ganeti-userdown/internal/xenstore"
)

// Watching @releaseDomain as a daemon does: a connection per xenstored
// lifetime, a new one with backoff when xenstored goes away, and every
// event taken as a trigger to look at the node again.
func ExampleConn_Watch() {
	ctx := context.Background()
	look := func() { /* list the domains, decide, act */ }
	backoff := time.Second
	for ctx.Err() == nil {
		c, err := xenstore.Dial(ctx, xenstore.DefaultPath())
		if err == nil {
			err = c.Watch(ctx, "@releaseDomain", "userdown")
		}
		if err != nil {
			slog.Warn("xenstore", "err", err)
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Minute)
			continue
		}
		backoff = time.Second
		// The first event is the registration's: the node may have
		// changed while no watch was set, so look at once anyway.
		for range c.Events() {
			look()
		}
		slog.Warn("xenstore connection ended", "err", c.Err())
		c.Close()
	}
}
