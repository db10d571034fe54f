package main

import (
	"context"
	"fmt"
	"sync"

	"ganeti-userdown/internal/xenstore"
	"ganeti-userdown/watcher"
)

// releaseDomain is xenstored's special watch that fires whenever a
// domain shuts down, crashes or is destroyed (and once when registered).
const releaseDomain = "@releaseDomain"

// watchToken tells our watch's events from any other.
const watchToken = "userdown-watchd"

// xenstoreSource is the daemon's event source: a connection to xenstored
// with the @releaseDomain watch registered.
type xenstoreSource struct{ path string }

// Open dials xenstored and registers the watch.
func (s xenstoreSource) Open(ctx context.Context) (watcher.EventStream, error) {
	c, err := xenstore.Dial(ctx, s.path)
	if err != nil {
		return nil, err
	}
	if err := c.Watch(ctx, releaseDomain, watchToken); err != nil {
		c.Close()
		return nil, fmt.Errorf("watch %s: %w", releaseDomain, err)
	}
	st := &xenstoreStream{c: c, ch: make(chan struct{}, 1), done: make(chan struct{})}
	go st.forward()
	return st, nil
}

// xenstoreStream turns the connection's watch events into the daemon's
// "something changed" signals.
type xenstoreStream struct {
	c    *xenstore.Conn
	ch   chan struct{}
	done chan struct{} // closed by Close: forward stops even if nobody reads
	once sync.Once
}

// forward passes on our watch's events until the connection ends, then
// closes the channel.
func (s *xenstoreStream) forward() {
	defer close(s.ch)
	for ev := range s.c.Events() {
		if ev.Token != watchToken {
			continue
		}
		select {
		case s.ch <- struct{}{}:
		case <-s.done:
			return
		}
	}
}

func (s *xenstoreStream) Events() <-chan struct{} { return s.ch }
func (s *xenstoreStream) Err() error              { return s.c.Err() }

// Close ends the connection and the forwarding.
func (s *xenstoreStream) Close() error {
	s.once.Do(func() { close(s.done) })
	return s.c.Close()
}
