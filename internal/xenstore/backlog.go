package xenstore

import "sync"

// backlog is the queue of watch events read but not yet taken from
// Events. It never holds an event twice, and when it grows past max it
// collapses to one event per watch (see Conn.Events), so it holds at
// most max+1 events, or one per registered watch if there are more.
type backlog struct {
	mu      sync.Mutex
	max     int
	queue   []Event
	queued  map[Event]bool
	watchOf func(Event) (Event, bool)
	wake    chan struct{} // a token when the queue may have become non-empty
}

func (b *backlog) init(max int, watchOf func(Event) (Event, bool)) {
	b.max = max
	b.queued = map[Event]bool{}
	b.watchOf = watchOf
	b.wake = make(chan struct{}, 1)
}

// push queues ev unless an equal event is waiting.
func (b *backlog) push(ev Event) {
	b.mu.Lock()
	if !b.queued[ev] {
		b.queue = append(b.queue, ev)
		b.queued[ev] = true
		if len(b.queue) > b.max {
			b.collapse()
		}
	}
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// collapse replaces the waiting events by one event per watch they
// belong to, on the watch's path, in the order of each watch's first
// waiting event. Events of a watch since removed are dropped.
func (b *backlog) collapse() {
	old := b.queue
	b.queue = make([]Event, 0, b.max+1)
	clear(b.queued)
	for _, ev := range old {
		w, ok := b.watchOf(ev)
		if !ok || b.queued[w] {
			continue
		}
		b.queue = append(b.queue, w)
		b.queued[w] = true
	}
}

// pop takes the oldest waiting event.
func (b *backlog) pop() (Event, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.queue) == 0 {
		return Event{}, false
	}
	ev := b.queue[0]
	b.queue[0] = Event{}
	b.queue = b.queue[1:]
	delete(b.queued, ev)
	if len(b.queue) == 0 {
		b.queue = b.queue[:0:0] // let the array go
	}
	return ev, true
}
