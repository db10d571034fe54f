package watcher

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeClock is a Clock whose time moves only when the test says.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c       *fakeClock
	when    time.Time
	d       time.Duration
	ch      chan time.Time
	stopped bool
	fired   bool
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }
func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped && !t.fired
	t.stopped = true
	return was
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, when: c.now.Add(d), d: d, ch: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves the time on by d and fires the timers due, dropping the
// ones done with (the list stays short, as the daemon's does).
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	live := c.timers[:0]
	for _, t := range c.timers {
		if !t.stopped && !t.fired && !t.when.After(c.now) {
			t.fired = true
			t.ch <- c.now
		}
		if !t.stopped && !t.fired {
			live = append(live, t)
		}
	}
	c.timers = live
}

// waitTimer waits until a timer of duration d is armed.
func (c *fakeClock) waitTimer(t *testing.T, d time.Duration) {
	t.Helper()
	c.waitTimers(t, d, 1)
}

// waitTimers waits until n timers of duration d are armed.
func (c *fakeClock) waitTimers(t *testing.T, d time.Duration, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		k := 0
		for _, tm := range c.timers {
			if tm.d == d && !tm.stopped && !tm.fired {
				k++
			}
		}
		c.mu.Unlock()
		if k >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("fewer than %d timers of %s armed", n, d)
}

// fakeSource is an EventSource: Open fails while fail > 0, else hands out
// a stream the test feeds.
type fakeSource struct {
	mu      sync.Mutex
	fail    int
	opens   int
	streams chan *fakeStream
}

func newFakeSource() *fakeSource { return &fakeSource{streams: make(chan *fakeStream, 10)} }

func (s *fakeSource) Open(context.Context) (EventStream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opens++
	if s.fail > 0 {
		s.fail--
		return nil, errors.New("dial /run/xenstored/socket: connection refused")
	}
	st := &fakeStream{ch: make(chan struct{})}
	s.streams <- st
	return st, nil
}

type fakeStream struct {
	ch     chan struct{}
	once   sync.Once
	err    error
	closed bool
}

func (s *fakeStream) Events() <-chan struct{} { return s.ch }
func (s *fakeStream) Err() error              { return s.err }
func (s *fakeStream) Close() error            { s.closed = true; return nil }

// drop ends the stream as a lost connection does.
func (s *fakeStream) drop(err error) { s.once.Do(func() { s.err = err; close(s.ch) }) }

// logRecorder keeps the log records of the daemon.
type logRecorder struct {
	mu   sync.Mutex
	recs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r.Level.String()+" "+r.Message)
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }
func (l *logRecorder) atLeast(lv slog.Level) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.recs {
		for _, p := range []slog.Level{slog.LevelInfo, slog.LevelWarn, slog.LevelError} {
			if p >= lv && len(r) > len(p.String()) && r[:len(p.String())] == p.String() {
				out = append(out, r)
			}
		}
	}
	return out
}

// harness runs a Daemon over the fakes.
type harness struct {
	t      *testing.T
	clock  *fakeClock
	src    *fakeSource
	logs   *logRecorder
	steps  chan Trigger
	stepMu sync.Mutex
	errs   []error // returned by the next steps, in turn
	block  chan struct{}
	stop   chan struct{}
	hup    chan struct{}
	done   chan error
	ready  chan struct{}
	d      *Daemon
	cfg    DaemonConfig
}

const (
	debounce = 200 * time.Millisecond
	rescan   = time.Minute
)

func newHarness(t *testing.T) *harness {
	h := &harness{
		t: t, clock: &fakeClock{now: t0}, src: newFakeSource(), logs: &logRecorder{},
		steps: make(chan Trigger, 100), stop: make(chan struct{}), hup: make(chan struct{}),
		done: make(chan error, 1), ready: make(chan struct{}),
	}
	h.cfg = DaemonConfig{Debounce: debounce, Rescan: rescan, Events: h.src, Key: "/run/xenstored/socket", Step: h.step}
	h.d = &Daemon{Clock: h.clock, Log: slog.New(h.logs), MinBackoff: 500 * time.Millisecond, MaxBackoff: 8 * time.Second,
		Ready: func() { close(h.ready) }}
	return h
}

func (h *harness) step(ctx context.Context, tr Trigger) error {
	h.stepMu.Lock()
	var err error
	if len(h.errs) > 0 {
		err, h.errs = h.errs[0], h.errs[1:]
	}
	block := h.block
	h.stepMu.Unlock()
	if block != nil {
		<-block
		if ctx.Err() != nil {
			h.t.Errorf("the step's context was cancelled: %v", ctx.Err())
		}
	}
	h.steps <- tr
	return err
}

func (h *harness) start() {
	go func() { h.done <- h.d.Run(h.stop, h.hup, h.cfg) }()
}

// next returns the next step's trigger.
func (h *harness) next() Trigger {
	h.t.Helper()
	select {
	case tr := <-h.steps:
		return tr
	case <-time.After(5 * time.Second):
		h.t.Fatal("no step within 5s")
	}
	return Trigger{}
}

// none checks that no step runs.
func (h *harness) none() {
	h.t.Helper()
	select {
	case tr := <-h.steps:
		h.t.Fatalf("unexpected step %+v", tr)
	case <-time.After(50 * time.Millisecond):
	}
}

func (h *harness) finish() {
	h.t.Helper()
	close(h.stop)
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		h.t.Fatal("Run did not return after stop")
	}
}

// fire sends one event on s and lets the debounce pass.
func (h *harness) fire(s *fakeStream) {
	h.t.Helper()
	s.ch <- struct{}{}
	h.clock.waitTimer(h.t, debounce)
	h.clock.Advance(debounce)
}

// blockSteps makes the next steps wait until h.block is closed.
func (h *harness) blockSteps() {
	h.stepMu.Lock()
	h.block = make(chan struct{})
	h.stepMu.Unlock()
}

func (h *harness) stream() *fakeStream {
	h.t.Helper()
	select {
	case s := <-h.src.streams:
		return s
	case <-time.After(5 * time.Second):
		h.t.Fatal("no connection within 5s")
	}
	return nil
}

// Reference: doc/design.md, "Event daemon": a full scan at start, and the
// events of a burst coalesced over the debounce into one step.
func TestDaemonScansAtStartAndDebounces(t *testing.T) {
	h := newHarness(t)
	h.start()
	s := h.stream()
	if tr := h.next(); tr.Why != "start" {
		t.Fatalf("first step %+v, want start", tr)
	}
	<-h.ready
	eventAt := h.clock.Now()
	for i := 0; i < 5; i++ {
		s.ch <- struct{}{}
	}
	h.none() // not before the debounce has passed
	h.clock.Advance(debounce / 2)
	h.none()
	h.clock.Advance(debounce / 2)
	tr := h.next()
	if d := cmp.Diff(Trigger{Why: "event", Event: eventAt, Events: 5}, tr); d != "" {
		t.Errorf("event step (-want +got):\n%s", d)
	}
	h.none()
	// One event alone is handled too.
	h.fire(s)
	if tr := h.next(); tr.Why != "event" || tr.Events != 1 {
		t.Errorf("step %+v, want one event", tr)
	}
	h.finish()
	if !s.closed {
		t.Error("the connection was not closed at stop")
	}
}

// Reference: doc/design.md, "Event daemon": a fallback rescan every
// [events] rescan, counted from the last step.
func TestDaemonRescans(t *testing.T) {
	h := newHarness(t)
	h.start()
	s := h.stream()
	h.next()
	h.clock.waitTimer(t, rescan)
	h.clock.Advance(rescan - time.Second)
	h.none()
	// An event's step pushes the rescan back.
	h.fire(s)
	h.next()
	h.clock.waitTimer(t, rescan)
	h.clock.Advance(rescan - debounce)
	h.none()
	h.clock.Advance(debounce)
	if tr := h.next(); tr.Why != "rescan" {
		t.Errorf("step %+v, want rescan", tr)
	}
	h.clock.waitTimer(t, rescan)
	h.clock.Advance(rescan)
	if tr := h.next(); tr.Why != "rescan" {
		t.Errorf("step %+v, want a second rescan", tr)
	}
	h.finish()
}

// A failed step (RAPI unreachable) is retried with a growing wait, and
// logged once for the outage, once for the recovery.
func TestDaemonRetriesFailedStepsWithBackoff(t *testing.T) {
	h := newHarness(t)
	outage := errors.New("query the instances: dial tcp: connection refused")
	h.errs = []error{outage, outage, outage, outage}
	h.start()
	h.stream()
	h.next()
	for _, wait := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second} {
		h.clock.waitTimer(t, wait)
		h.clock.Advance(wait - time.Millisecond)
		h.none()
		h.clock.Advance(time.Millisecond)
		if tr := h.next(); tr.Why != "retry" {
			t.Fatalf("step %+v, want a retry after %s", tr, wait)
		}
	}
	// Recovered: no more retries, the rescan is back.
	h.clock.waitTimer(t, rescan)
	h.clock.Advance(8 * time.Second)
	h.none()
	got := h.logs.atLeast(slog.LevelInfo)
	want := []string{"ERROR run failed; retrying with backoff", "INFO runs succeed again"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("logs (-want +got):\n%s", d)
	}
	h.finish()
}

// Reference: doc/design.md, "Event daemon": xenstored going away is
// retried with backoff and logged once; after reconnecting, a full step
// covers the events missed meanwhile.
func TestDaemonReconnectsToTheEventSource(t *testing.T) {
	h := newHarness(t)
	h.src.fail = 3 // not there at start
	h.start()
	if tr := h.next(); tr.Why != "start" {
		t.Fatalf("step %+v: the start scan must not wait for xenstored", tr)
	}
	for _, wait := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second} {
		h.clock.waitTimer(t, wait)
		h.clock.Advance(wait)
	}
	s := h.stream()
	if tr := h.next(); tr.Why != "reconnect" {
		t.Fatalf("step %+v, want reconnect", tr)
	}
	// xenstored restarts: lost, then back at the first attempt.
	s.drop(errors.New("read /run/xenstored/socket: EOF"))
	h.clock.waitTimer(t, 500*time.Millisecond)
	h.clock.Advance(500 * time.Millisecond)
	s = h.stream()
	if tr := h.next(); tr.Why != "reconnect" {
		t.Fatalf("step %+v, want reconnect", tr)
	}
	h.fire(s)
	if tr := h.next(); tr.Why != "event" {
		t.Errorf("step %+v, want event", tr)
	}
	// A source that drops every connection at once is not logged in a loop.
	for _, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second} {
		s.drop(errors.New("EOF"))
		h.clock.waitTimer(t, wait)
		h.clock.Advance(wait)
		s = h.stream()
		h.next()
	}
	got := h.logs.atLeast(slog.LevelInfo)
	want := []string{
		"WARN no event source: acting on rescans only until it is back; retrying with backoff",
		"INFO event source reachable again",
		"WARN event source lost: acting on rescans only until it is back; reconnecting with backoff",
		"INFO event source reachable again",
		// The flapping: nothing above debug.
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("logs (-want +got):\n%s", d)
	}
	h.finish()
}

// Reference: doc/design.md, "Event daemon": SIGTERM finishes the step in
// flight (its context is not cancelled) and then exits.
func TestDaemonStopFinishesTheStepInFlight(t *testing.T) {
	h := newHarness(t)
	h.start()
	s := h.stream()
	h.next()
	h.blockSteps()
	h.fire(s)
	time.Sleep(20 * time.Millisecond) // the step is now blocked
	close(h.stop)
	select {
	case <-h.done:
		t.Fatal("Run returned while its step was in flight")
	case <-time.After(50 * time.Millisecond):
	}
	close(h.block)
	if tr := h.next(); tr.Why != "event" {
		t.Errorf("step %+v", tr)
	}
	select {
	case err := <-h.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its step")
	}
}

// Reference: doc/design.md, "Event daemon": SIGHUP reloads the
// configuration; a bad one keeps the running one.
func TestDaemonReload(t *testing.T) {
	h := newHarness(t)
	other := newFakeSource()
	reloads := []error{errors.New("config /etc/ganeti/userdown.toml: line 3: bad"), nil}
	h.d.Reload = func() (DaemonConfig, error) {
		err := reloads[0]
		reloads = reloads[1:]
		if err != nil {
			return DaemonConfig{}, err
		}
		return DaemonConfig{Debounce: time.Second, Rescan: 2 * time.Minute, Events: other, Key: "/other/socket", Step: h.step}, nil
	}
	h.start()
	old := h.stream()
	h.next()
	h.hup <- struct{}{} // bad file: nothing changes
	h.none()
	h.fire(old)
	h.next()
	h.hup <- struct{}{}
	if tr := h.next(); tr.Why != "reload" {
		t.Fatalf("step %+v, want reload", tr)
	}
	if !old.closed {
		t.Error("the old socket's connection stays open after the path changed")
	}
	var s *fakeStream
	select {
	case s = <-other.streams:
	case <-time.After(5 * time.Second):
		t.Fatal("no connection to the new socket")
	}
	s.ch <- struct{}{}
	h.clock.waitTimer(t, time.Second)
	h.clock.Advance(debounce)
	h.none() // the new debounce applies
	h.clock.Advance(time.Second - debounce)
	h.next()
	h.clock.waitTimer(t, 2*time.Minute)
	if got := h.logs.atLeast(slog.LevelError); len(got) != 1 {
		t.Errorf("error logs %v, want the failed reload once", got)
	}
	h.finish()
}

// The watchdog is fed while the loop idles and while a step is within
// its deadline, not after.
func TestDaemonWatchdog(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	pings := 0
	h.d.Watchdog = func() { mu.Lock(); pings++; mu.Unlock() }
	h.d.WatchdogInterval = 10 * time.Second
	h.d.StepTimeout = 25 * time.Second
	count := func() int { mu.Lock(); defer mu.Unlock(); return pings }
	h.start()
	s := h.stream()
	h.next()
	for i := 1; i <= 3; i++ {
		h.clock.waitTimer(t, 10*time.Second)
		h.clock.Advance(10 * time.Second)
		waitCount(t, count, i)
	}
	// A hung step: pinged until the step's deadline only. The fake clock
	// does not end the context; a real 25s deadline would. The pinger
	// stops at the step's end.
	h.blockSteps()
	h.fire(s)
	h.clock.waitTimers(t, 10*time.Second, 2) // the loop's, and the step's pinger
	h.clock.Advance(10 * time.Second)
	waitCount(t, count, 4)
	close(h.block)
	h.next()
	h.finish()
}

func waitCount(t *testing.T, count func() int, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for count() < want {
		if time.Now().After(deadline) {
			t.Fatalf("%d watchdog pings, want %d", count(), want)
		}
		time.Sleep(time.Millisecond)
	}
}
