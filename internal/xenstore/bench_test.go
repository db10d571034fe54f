package xenstore_test

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"testing"

	"ganeti-userdown/internal/xenstore"
	"ganeti-userdown/testdata/xenstored/xstest"
	"ganeti-userdown/testdata/xenstored/xswire"
)

func BenchmarkReadFrame(b *testing.B) {
	msg, err := xenstore.AppendFrame(nil, xenstore.TypeWatchEvent, 0, 0, []byte("@releaseDomain\x00userdown-watchd\x00"))
	if err != nil {
		b.Fatal(err)
	}
	r := bytes.NewReader(msg)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(msg)
		f, err := xenstore.ReadFrame(r)
		if err != nil || f.Type != xenstore.TypeWatchEvent {
			b.Fatal(f, err)
		}
		if _, err := xenstore.ParseEvent(f.Payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeHeader(b *testing.B) {
	msg, _ := xenstore.AppendFrame(nil, xenstore.TypeRead, 7, 0, []byte("/local/domain/0/name\x00"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := xenstore.DecodeHeader(msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRead is one request and its reply over the simulator.
func BenchmarkRead(b *testing.B) {
	d := xstest.Start(b)
	c := dial(b, d)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Read(ctx, "/local/domain/0/name"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteToEvent is a write by one client to the event on
// another's watch, over the simulator.
func BenchmarkWriteToEvent(b *testing.B) {
	d := xstest.Start(b)
	watcher, writer := dial(b, d), dial(b, d)
	ctx := context.Background()
	watch(b, watcher, "/bench", "b")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		p := "/bench/" + strconv.Itoa(i%64)
		if err := writer.Write(ctx, p, nil); err != nil {
			b.Fatal(err)
		}
		if ev := next(b, watcher); ev.Path != p {
			b.Fatalf("event %+v, want %s", ev, p)
		}
	}
}

// BenchmarkReleaseToEvent is the Xen simulator's RELEASE of a domain (as
// xensim sends it on a shutdown) to the @releaseDomain event a watcher
// gets, over the simulator.
func BenchmarkReleaseToEvent(b *testing.B) {
	d := xstest.Start(b)
	watcher := dial(b, d)
	watch(b, watcher, "@releaseDomain", "rel")
	xen, err := net.Dial("unix", d.Socket)
	if err != nil {
		b.Fatal(err)
	}
	defer xen.Close()
	b.ReportAllocs()
	for b.Loop() {
		release(b, xen)
		if ev := next(b, watcher); ev.Path != "@releaseDomain" {
			b.Fatalf("event %+v", ev)
		}
	}
}

// BenchmarkReleaseToEventRaw is BenchmarkReleaseToEvent's floor: the
// same RELEASE and event with a watcher that reads the socket bare, with
// the simulator's own wire code, as no client can do with less. The
// ratio of the two is this package's cost.
func BenchmarkReleaseToEventRaw(b *testing.B) {
	d := xstest.Start(b)
	dialRaw := func() net.Conn {
		nc, err := net.Dial("unix", d.Socket)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { nc.Close() })
		return nc
	}
	watcher, xen := dialRaw(), dialRaw()
	if err := xswire.Send(watcher, xswire.Watch, 1, 0, xswire.Strings("@releaseDomain", "rel")); err != nil {
		b.Fatal(err)
	}
	for range 2 { // the reply and the registration's event
		if _, err := xswire.Receive(watcher); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		release(b, xen)
		if m, err := xswire.Receive(watcher); err != nil || m.Type != xswire.WatchEvent {
			b.Fatal(m, err)
		}
	}
}

// release sends RELEASE of a domain on xen, as xensim does, and takes
// its reply.
func release(b *testing.B, xen net.Conn) {
	if err := xswire.Send(xen, xswire.Release, 1, 0, xswire.Strings("5")); err != nil {
		b.Fatal(err)
	}
	if m, err := xswire.Receive(xen); err != nil || m.Type != xswire.Release {
		b.Fatal(m, err)
	}
}
