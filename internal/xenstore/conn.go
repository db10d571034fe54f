package xenstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// ErrClosed is the reason Err gives, and the error calls return, after
// Close.
var ErrClosed = errors.New("connection closed")

// DefaultPath returns the path of xenstored's socket as Xen's own
// clients (libxenstore) resolve it: $XENSTORED_PATH, else
// $XENSTORED_RUNDIR/socket, else /run/xenstored/socket when it exists,
// else /var/run/xenstored/socket (the path Debian's libxenstore is built
// with; /var/run is /run on Debian).
func DefaultPath() string {
	if p := os.Getenv("XENSTORED_PATH"); p != "" {
		return p
	}
	if d := os.Getenv("XENSTORED_RUNDIR"); d != "" {
		return d + "/socket"
	}
	if _, err := os.Stat("/run/xenstored/socket"); err == nil {
		return "/run/xenstored/socket"
	}
	return "/var/run/xenstored/socket"
}

// Backlog is how many watch events a Conn keeps for a consumer that does
// not take them from Events as fast as they come, before it coalesces
// them (see Conn.Events).
const Backlog = 256

// Conn is a connection to xenstored. Its methods may be called from
// several goroutines at once; requests are matched to their replies by
// request id, and watch events, which xenstored interleaves with
// replies, go to Events.
type Conn struct {
	path string
	rwc  io.ReadWriteCloser

	wmu sync.Mutex // one message written at a time, in one Write

	mu      sync.Mutex
	nextID  uint32
	pending map[uint32]chan Frame
	watches map[Event]bool // registered watches, as {Path: wpath, Token}
	err     error          // why the connection ended; nil while it runs
	done    chan struct{}  // closed when err is set

	closeOnce sync.Once
	closeErr  error

	events  chan Event
	backlog backlog
}

// Dial connects to xenstored's Unix socket at path (DefaultPath() for
// the node's own). ctx bounds the connecting only.
func Dial(ctx context.Context, path string) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("xenstore: %w", err)
	}
	return newConn(path, nc, Backlog), nil
}

func newConn(path string, rwc io.ReadWriteCloser, backlogMax int) *Conn {
	c := &Conn{
		path:    path,
		rwc:     rwc,
		pending: map[uint32]chan Frame{},
		watches: map[Event]bool{},
		done:    make(chan struct{}),
		events:  make(chan Event),
	}
	c.backlog.init(backlogMax, c.watchOf)
	go c.readLoop()
	go c.deliver()
	return c
}

// Path returns the socket path the connection was dialled to.
func (c *Conn) Path() string { return c.path }

// Events returns the channel of watch events. It is closed when the
// connection ends (Close, or xenstored going away); Err then says why.
// Events still waiting at that moment are dropped.
//
// xenstored fires every watch once when it is registered, and may fire
// any watch spuriously. Events are coalesced so that a slow consumer
// costs bounded memory: an event equal to one still waiting is not
// queued again, and when more than Backlog events wait, those of each
// watch collapse into one event on the watch's own path. A consumer
// therefore learns that something under a watch changed, not always
// each path that did: enough for @releaseDomain, which names no domain
// and is only a trigger to look again.
func (c *Conn) Events() <-chan Event { return c.events }

// Err returns nil while the connection runs, and afterwards why it
// ended: ErrClosed after Close, else the read or protocol error that
// ended it.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		return nil
	}
	return fmt.Errorf("xenstore: %w", c.err)
}

// Close ends the connection. Calls in flight return ErrClosed and
// Events is closed. Only the first call closes; later ones return nil.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.fail(ErrClosed)
		c.closeErr = c.rwc.Close()
	})
	return c.closeErr
}

// fail ends the connection with err, unless it already ended.
func (c *Conn) fail(err error) {
	c.mu.Lock()
	first := c.err == nil
	if first {
		c.err = err
		close(c.done)
	}
	c.mu.Unlock()
	if first && !errors.Is(err, ErrClosed) {
		c.rwc.Close()
	}
}

// Watch asks xenstored to send an event on Events, carrying token, on
// every change at or under path, or, for a special path such as
// "@releaseDomain" or "@introduceDomain", on what xenstored invents for
// it. xenstored fires the watch once right after it is registered. A
// call cancelled by ctx may still have registered the watch.
//
// Several watches may share a token; an event names the token of the
// watch it fired, and the path that changed.
func (c *Conn) Watch(ctx context.Context, path, token string) error {
	if strings.IndexByte(token, 0) >= 0 {
		return opError("watch", path, errors.New("token contains a NUL byte"))
	}
	err := c.ok(ctx, TypeWatch, "watch", path, nulStrings(path, token))
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// Known, for coalescing, also when it may have been registered.
		c.mu.Lock()
		c.watches[Event{Path: path, Token: token}] = true
		c.mu.Unlock()
	}
	return err
}

// Unwatch removes the watch on path with token; xenstored answers ENOENT
// for one it does not have. Events the watch fired before may still
// come.
func (c *Conn) Unwatch(ctx context.Context, path, token string) error {
	if strings.IndexByte(token, 0) >= 0 {
		return opError("unwatch", path, errors.New("token contains a NUL byte"))
	}
	c.mu.Lock()
	delete(c.watches, Event{Path: path, Token: token})
	c.mu.Unlock()
	return c.ok(ctx, TypeUnwatch, "unwatch", path, nulStrings(path, token))
}

// Read returns the value at path. A missing node is an *Error ENOENT
// (errors.Is(err, fs.ErrNotExist)).
func (c *Conn) Read(ctx context.Context, path string) ([]byte, error) {
	if err := checkPath(path); err != nil {
		return nil, opError("read", path, err)
	}
	b, err := c.request(ctx, TypeRead, nulStrings(path))
	if err != nil {
		return nil, opError("read", path, err)
	}
	return b, nil
}

// Write sets the value at path, creating the missing parents with empty
// values.
func (c *Conn) Write(ctx context.Context, path string, value []byte) error {
	if err := checkPath(path); err != nil {
		return opError("write", path, err)
	}
	payload := append(nulStrings(path), value...)
	return c.ok(ctx, TypeWrite, "write", path, payload)
}

// Directory returns the names (last elements) of the children of path.
func (c *Conn) Directory(ctx context.Context, path string) ([]string, error) {
	if err := checkPath(path); err != nil {
		return nil, opError("directory", path, err)
	}
	b, err := c.request(ctx, TypeDirectory, nulStrings(path))
	if err != nil {
		return nil, opError("directory", path, err)
	}
	return splitStrings(b), nil
}

// ok runs a request whose reply is "OK".
func (c *Conn) ok(ctx context.Context, t Type, op, path string, payload []byte) error {
	if err := checkPath(path); err != nil {
		return opError(op, path, err)
	}
	b, err := c.request(ctx, t, payload)
	if err != nil {
		return opError(op, path, err)
	}
	if s := strings.TrimSuffix(string(b), "\x00"); s != "OK" {
		return opError(op, path, fmt.Errorf("%w: %s reply %q, want \"OK\"", ErrProtocol, t, b))
	}
	return nil
}

func opError(op, path string, err error) error {
	return fmt.Errorf("xenstore: %s %s: %w", op, path, err)
}

// checkPath refuses what xenstored would refuse or could not be sent.
func checkPath(path string) error {
	switch {
	case path == "":
		return errors.New("empty path")
	case strings.IndexByte(path, 0) >= 0:
		return errors.New("path contains a NUL byte")
	}
	return nil
}

// nulStrings is the payload of NUL-terminated strings.
func nulStrings(s ...string) []byte {
	n := 0
	for _, x := range s {
		n += len(x) + 1
	}
	b := make([]byte, 0, n)
	for _, x := range s {
		b = append(append(b, x...), 0)
	}
	return b
}

// request sends one message and waits for its reply's payload. An ERROR
// reply is an *Error.
func (c *Conn) request(ctx context.Context, t Type, payload []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, err
	}
	c.nextID++
	if c.nextID == 0 {
		c.nextID = 1
	}
	id := c.nextID
	ch := make(chan Frame, 1)
	c.pending[id] = ch
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}

	msg, err := AppendFrame(make([]byte, 0, HeaderSize+len(payload)), t, id, 0, payload)
	if err != nil {
		forget()
		return nil, err
	}
	if err := c.write(ctx, msg); err != nil {
		forget()
		return nil, err
	}

	var f Frame
	select {
	case f = <-ch:
	case <-ctx.Done():
		forget()
		return nil, ctx.Err()
	case <-c.done:
		select {
		case f = <-ch: // the reply came just before the end
		default:
			forget()
			c.mu.Lock()
			defer c.mu.Unlock()
			return nil, c.err
		}
	}
	switch f.Type {
	case t:
		return f.Payload, nil
	case TypeError:
		return nil, &Error{Errno: strings.TrimRight(string(f.Payload), "\x00")}
	}
	return nil, fmt.Errorf("%w: %s reply to %s", ErrProtocol, f.Type, t)
}

// longAgo is a write deadline that has passed.
var longAgo = time.Unix(1, 0)

// write sends one whole message, honouring ctx where the connection has
// deadlines. A message cut short breaks the stream: the connection ends.
func (c *Conn) write(ctx context.Context, msg []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	dl, hasDeadlines := c.rwc.(interface{ SetWriteDeadline(time.Time) error })
	if hasDeadlines {
		d, _ := ctx.Deadline()
		dl.SetWriteDeadline(d)
		fired := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			dl.SetWriteDeadline(longAgo)
			close(fired)
		})
		defer func() {
			if !stop() {
				<-fired
			}
			dl.SetWriteDeadline(time.Time{})
		}()
	}
	n, err := c.rwc.Write(msg)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil && n == 0 {
		return ctx.Err()
	}
	err = fmt.Errorf("writing to %s: %w", c.path, err)
	c.fail(err)
	return err
}

// readLoop reads every message, hands replies to their callers and
// events to the backlog, until the connection ends.
func (c *Conn) readLoop() {
	r := bufio.NewReaderSize(c.rwc, HeaderSize+PayloadMax)
	for {
		f, err := ReadFrame(r)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("xenstored closed the connection (%w)", err)
			}
			c.fail(fmt.Errorf("reading from %s: %w", c.path, err))
			return
		}
		if f.Type == TypeWatchEvent {
			ev, err := ParseEvent(f.Payload)
			if err != nil {
				c.fail(fmt.Errorf("reading from %s: %w", c.path, err))
				return
			}
			c.backlog.push(ev)
			continue
		}
		c.mu.Lock()
		ch := c.pending[f.ReqID]
		delete(c.pending, f.ReqID)
		c.mu.Unlock()
		if ch != nil {
			ch <- f
		}
		// A reply nobody waits for answers a cancelled call: dropped.
	}
}

// deliver moves events from the backlog to Events, and closes Events
// when the connection ends.
func (c *Conn) deliver() {
	defer close(c.events)
	for {
		ev, ok := c.backlog.pop()
		if !ok {
			select {
			case <-c.backlog.wake:
				continue
			case <-c.done:
				return
			}
		}
		select {
		case c.events <- ev:
		case <-c.done:
			return
		}
	}
}

// watchOf returns the registered watch an event belongs to: the watch
// with the event's token whose path is the longest parent of the event's
// path.
func (c *Conn) watchOf(ev Event) (Event, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var best Event
	found := false
	for w := range c.watches {
		if w.Token == ev.Token && isChild(ev.Path, w.Path) && (!found || len(w.Path) > len(best.Path)) {
			best, found = w, true
		}
	}
	return best, found
}

// isChild reports whether path is parent or under it, as xenstore.txt
// defines it (every path is a child of itself and of "/").
func isChild(path, parent string) bool {
	return path == parent || parent == "/" && strings.HasPrefix(path, "/") ||
		strings.HasPrefix(path, parent) && path[len(parent)] == '/'
}
