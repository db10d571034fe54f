package watcher

import (
	"context"
	"log/slog"
	"time"
)

// Clock is the event daemon's time: the real one, or a fake in tests.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer of a Clock.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

// RealClock is the system's clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// NewTimer returns a time.Timer.
func (RealClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop() bool          { return r.t.Stop() }

// EventSource connects to where domain events come from: xenstored's
// @releaseDomain watch, which fires on every shutdown, crash and destroy
// (and once when it is registered, and sometimes for nothing).
type EventSource interface {
	// Open connects and registers the watch.
	Open(ctx context.Context) (EventStream, error)
}

// EventStream delivers the events of one connection.
type EventStream interface {
	// Events receives one value per event. It is closed when the
	// connection fails or is closed.
	Events() <-chan struct{}
	// Err says why Events was closed.
	Err() error
	Close() error
}

// Trigger says why the daemon runs a step.
type Trigger struct {
	// Why is "start", "event", "rescan", "retry", "reconnect" or
	// "reload".
	Why string
	// Event is when the first event of a coalesced burst arrived;
	// Events how many the burst held. Zero unless Why is "event".
	Event  time.Time
	Events int
}

// DaemonConfig is what the loop runs with; a reload replaces it.
type DaemonConfig struct {
	// Debounce coalesces a burst of events into one step: the step runs
	// Debounce after the first event of the burst.
	Debounce time.Duration
	// Rescan is the interval of the steps run without events.
	Rescan time.Duration
	// Events is the event source; Key names it (the socket path): a reload
	// that changes Key reconnects.
	Events EventSource
	Key    string
	// Step runs the pipeline once, holding the run lock. Its error means
	// the state could not be read or the lock not taken: the step is
	// retried with backoff. It is given a context that stopping the daemon
	// does not cancel: the step in flight finishes.
	Step func(ctx context.Context, t Trigger) error
}

// Daemon is the event loop of userdown-watchd.
type Daemon struct {
	Clock Clock
	Log   *slog.Logger
	// Reload reads the configuration again (SIGHUP); on error the
	// running configuration stays.
	Reload func() (DaemonConfig, error)
	// Ready is called once the event source was tried, right before the
	// first step (sd_notify READY=1).
	Ready func()
	// Watchdog, when set, is called every WatchdogInterval while the loop
	// runs, and during a step until StepTimeout has passed
	// (sd_notify WATCHDOG=1): a hung step stops the pings.
	Watchdog         func()
	WatchdogInterval time.Duration
	// StepTimeout bounds every step.
	StepTimeout time.Duration
	// MinBackoff and MaxBackoff bound the waits between retries of a
	// failed step and between reconnection attempts.
	MinBackoff, MaxBackoff time.Duration
}

// backoff returns the wait before attempt n+1 after n failures.
func (d *Daemon) backoff(n int) time.Duration {
	w := d.MinBackoff
	for i := 1; i < n && w < d.MaxBackoff; i++ {
		w *= 2
	}
	if w > d.MaxBackoff {
		w = d.MaxBackoff
	}
	return w
}

// timerC is t's channel, or nil (never ready) for no timer.
func timerC(t Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C()
}

func stopTimer(t *Timer) {
	if *t != nil {
		(*t).Stop()
		*t = nil
	}
}

// Run runs the loop until stop is closed: a step at start, one per
// coalesced burst of events, one every Rescan, one after each
// reconnection; failed steps and lost connections are retried with
// backoff and logged once per outage. A step in flight when stop closes
// finishes first. hup receives reload requests.
func (d *Daemon) Run(stop <-chan struct{}, hup <-chan struct{}, cfg DaemonConfig) error {
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if d.MinBackoff <= 0 {
		d.MinBackoff = 500 * time.Millisecond
	}
	if d.MaxBackoff < d.MinBackoff {
		d.MaxBackoff = d.MinBackoff
	}
	var (
		stream    EventStream
		events    <-chan struct{}
		connFails int
		reconnect Timer
		// losses counts connections lost in a row, each having lived
		// less than a minute: a flapping source is logged once too.
		losses      int
		connectedAt time.Time
		// outage: a Warn said the source is gone; the next success
		// says it is back.
		outage bool

		pending  bool
		first    time.Time
		burst    int
		debounce Timer

		rescan    Timer
		stepFails int
		retry     Timer
		watchdog  Timer
	)
	defer func() {
		for _, t := range []*Timer{&reconnect, &debounce, &rescan, &retry, &watchdog} {
			stopTimer(t)
		}
		if stream != nil {
			stream.Close()
		}
	}()
	armWatchdog := func() {
		if d.Watchdog != nil && d.WatchdogInterval > 0 {
			watchdog = d.Clock.NewTimer(d.WatchdogInterval)
		}
	}

	connect := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		s, err := cfg.Events.Open(ctx)
		cancel()
		if err != nil {
			connFails++
			wait := d.backoff(connFails)
			if connFails == 1 {
				outage = true
				log.Warn("no event source: acting on rescans only until it is back; retrying with backoff", "source", cfg.Key, "err", err)
			} else {
				log.Debug("event source still unreachable", "source", cfg.Key, "attempt", connFails, "next", wait, "err", err)
			}
			reconnect = d.Clock.NewTimer(wait)
			return false
		}
		if outage {
			log.Info("event source reachable again", "source", cfg.Key, "attempts", connFails)
			outage = false
		}
		connFails = 0
		connectedAt = d.Clock.Now()
		stream, events = s, s.Events()
		return true
	}
	disconnect := func() {
		if stream != nil {
			stream.Close()
		}
		stream, events = nil, nil
		stopTimer(&reconnect)
	}

	step := func(t Trigger) {
		stopTimer(&retry)
		stopTimer(&rescan)
		ctx, cancel := context.WithTimeout(context.Background(), d.stepTimeout())
		done := make(chan struct{})
		if d.Watchdog != nil && d.WatchdogInterval > 0 {
			// Keep the watchdog fed while the step is within its
			// deadline, and no longer.
			go func() {
				for {
					tm := d.Clock.NewTimer(d.WatchdogInterval)
					select {
					case <-done:
						tm.Stop()
						return
					case <-ctx.Done():
						tm.Stop()
						return
					case <-tm.C():
						d.Watchdog()
					}
				}
			}()
		}
		err := cfg.Step(ctx, t)
		close(done)
		cancel()
		if err != nil {
			stepFails++
			wait := d.backoff(stepFails)
			if wait > cfg.Rescan {
				wait = cfg.Rescan
			}
			if stepFails == 1 {
				log.Error("run failed; retrying with backoff", "trigger", t.Why, "err", err)
			} else {
				log.Debug("run failed again", "trigger", t.Why, "attempt", stepFails, "next", wait, "err", err)
			}
			retry = d.Clock.NewTimer(wait)
		} else if stepFails > 0 {
			log.Info("runs succeed again", "failed_attempts", stepFails)
			stepFails = 0
		}
		rescan = d.Clock.NewTimer(cfg.Rescan)
	}

	connect()
	// Ready before the first run: that run may wait for the master up to
	// its bound, longer than systemd waits for a start.
	if d.Ready != nil {
		d.Ready()
	}
	step(Trigger{Why: "start"})
	armWatchdog()
	for {
		select {
		case <-stop:
			return nil
		case <-hup:
			nc, err := d.Reload()
			if err != nil {
				log.Error("reload failed: the running configuration stays", "err", err)
				continue
			}
			keyChanged := nc.Key != cfg.Key
			cfg = nc
			log.Info("configuration reloaded", "debounce", cfg.Debounce, "rescan", cfg.Rescan, "source", cfg.Key)
			if keyChanged {
				disconnect()
				connFails = 0
				connect()
			}
			step(Trigger{Why: "reload"})
		case _, ok := <-events:
			if !ok {
				err := stream.Err()
				disconnect()
				if d.Clock.Now().Sub(connectedAt) >= time.Minute {
					losses = 0
				}
				losses++
				if losses == 1 {
					outage = true
					log.Warn("event source lost: acting on rescans only until it is back; reconnecting with backoff", "source", cfg.Key, "err", err)
				} else {
					log.Debug("event source lost again", "source", cfg.Key, "losses", losses, "err", err)
				}
				// Both counts lengthen the wait: a source that accepts
				// and drops at once is not hammered.
				connFails = losses
				reconnect = d.Clock.NewTimer(d.backoff(losses))
				continue
			}
			if !pending {
				pending, first, burst = true, d.Clock.Now(), 0
				debounce = d.Clock.NewTimer(cfg.Debounce)
			}
			burst++
		case <-timerC(debounce):
			debounce = nil
			pending = false
			step(Trigger{Why: "event", Event: first, Events: burst})
		case <-timerC(rescan):
			rescan = nil
			step(Trigger{Why: "rescan"})
		case <-timerC(retry):
			retry = nil
			step(Trigger{Why: "retry"})
		case <-timerC(reconnect):
			reconnect = nil
			if connect() {
				// Events may have been lost while disconnected.
				step(Trigger{Why: "reconnect"})
			}
		case <-timerC(watchdog):
			d.Watchdog()
			armWatchdog()
		}
	}
}

func (d *Daemon) stepTimeout() time.Duration {
	if d.StepTimeout > 0 {
		return d.StepTimeout
	}
	return 5 * time.Minute
}
