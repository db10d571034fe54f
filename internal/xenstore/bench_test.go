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
	if err := watcher.Watch(ctx, "/bench", "b"); err != nil {
		b.Fatal(err)
	}
	next(b, watcher)
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
	ctx := context.Background()
	if err := watcher.Watch(ctx, "@releaseDomain", "rel"); err != nil {
		b.Fatal(err)
	}
	next(b, watcher)
	xen, err := net.Dial("unix", d.Socket)
	if err != nil {
		b.Fatal(err)
	}
	defer xen.Close()
	b.ReportAllocs()
	for b.Loop() {
		if err := xswire.Send(xen, xswire.Release, 1, 0, xswire.Strings("5")); err != nil {
			b.Fatal(err)
		}
		if m, err := xswire.Receive(xen); err != nil || m.Type != xswire.Release {
			b.Fatal(m, err)
		}
		if ev := next(b, watcher); ev.Path != "@releaseDomain" {
			b.Fatalf("event %+v", ev)
		}
	}
}
