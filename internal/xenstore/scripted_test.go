package xenstore

// The client against a scripted server that misbehaves in ways the
// simulator does not: replies that break the protocol, no reply at all,
// no reading, floods of events.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// scripted starts a Unix socket server that runs script on the first
// connection, and returns a Conn to it with the given backlog size.
func scripted(t *testing.T, backlogMax int, script func(srv net.Conn)) *Conn {
	t.Helper()
	dir, err := os.MkdirTemp("", "xs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "socket")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv, err := ln.Accept()
		if err != nil {
			return
		}
		defer srv.Close()
		script(srv)
	}()
	nc, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	c := newConn(sock, nc, backlogMax)
	t.Cleanup(func() {
		c.Close()
		<-done
	})
	return c
}

// request reads one request off the server side, with a hand-made
// decoder (little-endian, as on x86).
func request(t *testing.T, srv net.Conn) (typ, req uint32, body []byte) {
	hb := make([]byte, 16)
	if _, err := io.ReadFull(srv, hb); err != nil {
		return 0, 0, nil
	}
	n := uint32(hb[12]) | uint32(hb[13])<<8 | uint32(hb[14])<<16 | uint32(hb[15])<<24
	body = make([]byte, n)
	io.ReadFull(srv, body)
	return uint32(hb[0]), uint32(hb[4]) | uint32(hb[5])<<8, body
}

func eventMsg(path, token string) []byte {
	p := path + "\x00" + token + "\x00"
	return append(header(15, 0, 0, uint32(len(p))), p...)
}

func TestBadReplies(t *testing.T) {
	for _, tc := range []struct {
		name    string
		reply   func(req uint32) []byte
		wantErr string
		lost    bool // the connection ends
	}{
		{"oversized reply", func(req uint32) []byte { return header(2, req, 0, 5000) },
			"READ payload of 5000 bytes exceeds 4096", true},
		{"reply of another type", func(req uint32) []byte { return append(header(11, req, 0, 3), "OK\x00"...) },
			"xenstore protocol error: WRITE reply to READ", false},
		{"watch event without a token", func(req uint32) []byte { return append(header(15, 0, 0, 3), "/a\x00"...) },
			"xenstore protocol error: watch event", true},
		{"stream cut in a reply", func(req uint32) []byte { return append(header(2, req, 0, 10), "abc"...) },
			"unexpected EOF", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := scripted(t, Backlog, func(srv net.Conn) {
				_, req, _ := request(t, srv)
				srv.Write(tc.reply(req))
				if !tc.lost {
					io.Copy(io.Discard, srv)
				}
			})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := c.Read(ctx, "/x")
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Read = %v, want an error containing %q", err, tc.wantErr)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Read waited for its deadline: %v", err)
			}
			if tc.lost {
				<-c.done
				if c.Err() == nil || !strings.Contains(c.Err().Error(), tc.wantErr) {
					t.Errorf("Err() = %v, want it to say %q", c.Err(), tc.wantErr)
				}
				if _, ok := <-c.Events(); ok {
					t.Error("Events not closed")
				}
			} else if c.Err() != nil {
				t.Errorf("Err() = %v, want the connection still up", c.Err())
			}
		})
	}
}

// A server that never answers: the caller's context ends the wait, and
// a late reply is dropped without disturbing the next call.
func TestNoReply(t *testing.T) {
	late := make(chan uint32, 1)
	c := scripted(t, Backlog, func(srv net.Conn) {
		_, req, _ := request(t, srv)
		late <- req
		_, req2, _ := request(t, srv)
		srv.Write(append(header(2, <-late, 0, 4), "late"...))
		srv.Write(append(header(2, req2, 0, 5), "fresh"...))
		io.Copy(io.Discard, srv)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Read(ctx, "/x")
	if !errors.Is(err, context.DeadlineExceeded) || err.Error() != "xenstore: read /x: context deadline exceeded" {
		t.Fatalf("Read = %v, want the deadline, wrapped", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Read returned after %v", d)
	}
	req := <-late
	late <- req
	got, err := c.Read(context.Background(), "/y")
	if err != nil || string(got) != "fresh" {
		t.Errorf("next Read = %q, %v; want its own reply \"fresh\"", got, err)
	}
}

// A server that reads nothing: a write that cannot go through ends at
// the context, and the connection, whose stream may hold half a message,
// is closed.
func TestWriteBlocked(t *testing.T) {
	stop := make(chan struct{})
	c := scripted(t, Backlog, func(srv net.Conn) { <-stop })
	defer close(stop)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	big := bytes.Repeat([]byte("v"), 4000)
	var err error
	for i := 0; i < 10000 && err == nil; i++ {
		err = c.Write(ctx, "/x", big)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Write to a server that does not read = %v, want the deadline", err)
	}
}

// Events that nobody takes cost bounded memory: equal ones coalesce,
// and past the backlog each watch's collapse into one on its path.
func TestBacklogBounded(t *testing.T) {
	const flood = 10000
	c := scripted(t, 16, func(srv net.Conn) {
		for range 2 { // the two watches
			_, req, _ := request(t, srv)
			srv.Write(append(header(4, req, 0, 3), "OK\x00"...))
		}
		_, req, _ := request(t, srv)
		var b []byte
		for i := range flood {
			b = append(b, eventMsg(fmt.Sprintf("/vm/%d", i), "vms")...)
			b = append(b, eventMsg("@releaseDomain", "rel")...)
		}
		b = append(b, eventMsg("/elsewhere", "nobody")...) // no such watch
		// The reply after the flood: when the caller has it, the client
		// has read every event.
		b = append(b, header(2, req, 0, 0)...)
		srv.Write(b)
		io.Copy(io.Discard, srv)
	})
	ctx := context.Background()
	if err := c.Watch(ctx, "/vm", "vms"); err != nil {
		t.Fatal(err)
	}
	if err := c.Watch(ctx, "@releaseDomain", "rel"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(ctx, "/sync"); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	c.backlog.mu.Lock()
	n, cp := len(c.backlog.queue), cap(c.backlog.queue)
	c.backlog.mu.Unlock()
	if n > 17 || cp > 64 {
		t.Errorf("backlog of %d events (capacity %d) after a flood of %d, want at most 17", n, cp, 2*flood)
	}
	var got []Event
drain:
	for {
		select {
		case ev := <-c.Events():
			got = append(got, ev)
		case <-time.After(200 * time.Millisecond):
			break drain
		}
	}
	// One more than the backlog: the event in hand of the delivery.
	if len(got) > n+1 {
		t.Errorf("%d events delivered, the backlog held %d", len(got), n)
	}
	seen := map[Event]bool{}
	for _, ev := range got[1:] {
		if seen[ev] {
			t.Errorf("event %+v delivered twice from one backlog", ev)
		}
		seen[ev] = true
	}
	// Both watches are still heard of after the flood.
	if !seen[Event{"@releaseDomain", "rel"}] {
		t.Errorf("no @releaseDomain event among %v", got)
	}
	if !seen[Event{"/vm", "vms"}] && !seen[Event{fmt.Sprintf("/vm/%d", flood-1), "vms"}] {
		t.Errorf("no /vm event for the last change among %v", got)
	}
}

func TestBacklogCollapse(t *testing.T) {
	watches := map[Event]bool{{"/vm", "a"}: true, {"/vm/web1", "a"}: true, {"@releaseDomain", "r"}: true}
	var b backlog
	b.init(4, func(ev Event) (Event, bool) {
		var best Event
		ok := false
		for w := range watches {
			if w.Token == ev.Token && isChild(ev.Path, w.Path) && len(w.Path) >= len(best.Path) {
				best, ok = w, true
			}
		}
		return best, ok
	})
	for _, ev := range []Event{
		{"@releaseDomain", "r"}, {"/vm/web1/x", "a"}, {"@releaseDomain", "r"}, {"/vm/web2", "a"},
		{"/gone", "z"}, {"/vm/web3", "a"}, // the fifth distinct event collapses
	} {
		b.push(ev)
	}
	var got []Event
	for {
		ev, ok := b.pop()
		if !ok {
			break
		}
		got = append(got, ev)
	}
	want := []Event{{"@releaseDomain", "r"}, {"/vm/web1", "a"}, {"/vm", "a"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("collapsed backlog = %v, want %v", got, want)
	}
}

func TestIsChild(t *testing.T) {
	for _, tc := range []struct {
		path, parent string
		want         bool
	}{
		{"/vm", "/vm", true}, {"/vm/a", "/vm", true}, {"/vmx", "/vm", false},
		{"/vm", "/", true}, {"@releaseDomain", "/", false}, {"@releaseDomain", "@releaseDomain", true},
		{"/v", "/vm", false},
	} {
		if got := isChild(tc.path, tc.parent); got != tc.want {
			t.Errorf("isChild(%q, %q) = %v", tc.path, tc.parent, got)
		}
	}
}

// FuzzConn plays arbitrary bytes as xenstored's side of a connection
// while a caller reads and watches: the client must neither panic nor
// hang, and must end the connection or answer every call.
func FuzzConn(f *testing.F) {
	f.Add(append(header(2, 1, 0, 2), "ok"...))
	f.Add(append(append(header(4, 1, 0, 3), "OK\x00"...), eventMsg("@releaseDomain", "r")...))
	f.Add(append(header(16, 1, 0, 7), "ENOENT\x00"...))
	f.Add(append(eventMsg("/a", "t"), header(2, 1, 0, 9999)...))
	f.Fuzz(func(t *testing.T, in []byte) {
		cli, srv := net.Pipe()
		c := newConn("fuzz", cli, 4)
		go func() {
			io.Copy(io.Discard, srv)
		}()
		go func() {
			srv.Write(in)
			time.Sleep(time.Millisecond)
			srv.Close()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range c.Events() {
			}
		}()
		c.Watch(ctx, "@releaseDomain", "r")
		c.Read(ctx, "/a")
		if ctx.Err() != nil {
			t.Fatal("a call waited for its deadline on a connection that ended")
		}
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Events not closed after the connection ended")
		}
		if c.Err() == nil {
			t.Fatal("Err() nil after the connection ended")
		}
		c.Close()
	})
}
