package xenstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"runtime"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// header builds a header as xs_wire.h lays it out: four uint32 in the
// host's byte order (little-endian on x86).
func header(typ, req, tx, n uint32) []byte {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint32(b[0:], typ)
	binary.LittleEndian.PutUint32(b[4:], req)
	binary.LittleEndian.PutUint32(b[8:], tx)
	binary.LittleEndian.PutUint32(b[12:], n)
	return b
}

func TestDecodeHeader(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the table below is written for a little-endian host")
	}
	for _, tc := range []struct {
		name    string
		in      []byte
		want    Header
		wantErr string
	}{
		{"watch event", header(15, 0, 0, 20), Header{Type: TypeWatchEvent, Len: 20}, ""},
		{"reply", header(2, 7, 3, 4096), Header{Type: TypeRead, ReqID: 7, TxID: 3, Len: 4096}, ""},
		{"extra bytes ignored", append(header(16, 1, 0, 7), "EINVAL\x00"...), Header{Type: TypeError, ReqID: 1, Len: 7}, ""},
		{"payload over the limit", header(2, 1, 0, 4097), Header{}, "xenstore protocol error: READ payload of 4097 bytes exceeds 4096"},
		{"4 GB payload", header(2, 1, 0, 0xffffffff), Header{}, "xenstore protocol error: READ payload of 4294967295 bytes exceeds 4096"},
		{"short", header(2, 1, 0, 0)[:15], Header{}, "xenstore protocol error: header of 15 bytes, want 16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeHeader(tc.in)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr || !errors.Is(err, ErrProtocol) {
					t.Fatalf("DecodeHeader = %+v, %v; want error %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("DecodeHeader (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadFrame(t *testing.T) {
	ev := append(header(15, 0, 0, 23), "@releaseDomain\x00release\x00"...)
	f, err := ReadFrame(bytes.NewReader(ev))
	if err != nil {
		t.Fatal(err)
	}
	if f.Type != TypeWatchEvent || string(f.Payload) != "@releaseDomain\x00release\x00" {
		t.Errorf("ReadFrame = %+v", f)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty stream", nil, io.EOF},
		{"cut in the header", ev[:9], io.ErrUnexpectedEOF},
		{"cut in the payload", ev[:20], io.ErrUnexpectedEOF},
		{"header only", ev[:16], io.ErrUnexpectedEOF},
		{"too long", header(15, 0, 0, 1<<31), ErrProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ReadFrame(bytes.NewReader(tc.in)); !errors.Is(err, tc.want) {
				t.Errorf("ReadFrame = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestReadFrameDoesNotAllocateWhatTheHeaderClaims(t *testing.T) {
	in := header(2, 1, 0, 0xffffffff)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 100 {
		if _, err := ReadFrame(bytes.NewReader(in)); !errors.Is(err, ErrProtocol) {
			t.Fatalf("ReadFrame = %v, want ErrProtocol", err)
		}
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("100 ReadFrame of a 4 GB header allocated %d bytes", n)
	}
}

func TestAppendFrame(t *testing.T) {
	b, err := AppendFrame([]byte("x"), TypeWatch, 9, 0, []byte("@releaseDomain\x00t\x00"))
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte("x"), header(4, 9, 0, 17)...)
	want = append(want, "@releaseDomain\x00t\x00"...)
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 && !bytes.Equal(b, want) {
		t.Errorf("AppendFrame = %q, want %q", b, want)
	}
	f, err := ReadFrame(bytes.NewReader(b[1:]))
	if err != nil || f.Type != TypeWatch || f.ReqID != 9 || string(f.Payload) != "@releaseDomain\x00t\x00" {
		t.Errorf("round trip = %+v, %v", f, err)
	}
	if b, err := AppendFrame(nil, TypeWrite, 1, 0, make([]byte, PayloadMax+1)); err == nil || len(b) != 0 {
		t.Errorf("AppendFrame of 4097 bytes = %d bytes, %v; want an error and nothing", len(b), err)
	}
}

func TestParseEvent(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Event
		ok   bool
	}{
		{"@releaseDomain\x00tok\x00", Event{"@releaseDomain", "tok"}, true},
		{"/vm/a\x00\x00", Event{"/vm/a", ""}, true},
		{"/vm/a\x00tok", Event{"/vm/a", "tok"}, true},
		{"@releaseDomain\x00tok\x005\x00", Event{"@releaseDomain", "tok"}, true},
		{"/vm/a\x00", Event{}, false},
		{"", Event{}, false},
		{"\x00tok\x00", Event{}, false},
	} {
		got, err := ParseEvent([]byte(tc.in))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseEvent(%q) = %+v, %v; want %+v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrProtocol) {
			t.Errorf("ParseEvent(%q) error %v is not ErrProtocol", tc.in, err)
		}
	}
}

func TestErrorIs(t *testing.T) {
	for _, tc := range []struct {
		errno  string
		target error
		want   bool
	}{
		{"ENOENT", fs.ErrNotExist, true},
		{"ENOENT", syscall.ENOENT, true},
		{"EACCES", fs.ErrPermission, true},
		{"EACCES", syscall.EACCES, true},
		{"EEXIST", fs.ErrExist, true},
		{"EINVAL", syscall.ENOENT, false},
		{"EAGAIN", &Error{Errno: "EAGAIN"}, true},
		{"EAGAIN", &Error{Errno: "EBUSY"}, false},
		{"EWHATEVER", fs.ErrNotExist, false},
	} {
		if got := errors.Is(&Error{Errno: tc.errno}, tc.target); got != tc.want {
			t.Errorf("errors.Is(%s, %v) = %v, want %v", tc.errno, tc.target, got, tc.want)
		}
	}
}

func TestSplitStrings(t *testing.T) {
	for in, want := range map[string][]string{
		"":           nil,
		"a\x00":      {"a"},
		"a\x00b\x00": {"a", "b"},
		"a\x00b":     {"a", "b"},
		"\x00":       {""},
	} {
		if diff := cmp.Diff(want, splitStrings([]byte(in))); diff != "" {
			t.Errorf("splitStrings(%q) (-want +got):\n%s", in, diff)
		}
	}
}

// FuzzDecodeFrame feeds arbitrary bytes to the frame decoder: it must
// not panic, never return a payload over PayloadMax, and a decoded frame
// must encode back to the bytes it was read from.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(append(header(15, 0, 0, 23), "@releaseDomain\x00release\x00"...))
	f.Add(append(header(16, 3, 0, 7), "EACCES\x00"...))
	f.Add(header(2, 1, 0, 0xffffffff))
	f.Add(header(2, 1, 0, 4096))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		fr, err := ReadFrame(r)
		if err != nil {
			if h, herr := DecodeHeader(in); herr == nil && len(in) >= HeaderSize+int(h.Len) {
				t.Fatalf("ReadFrame failed (%v) on a whole frame %+v", err, h)
			}
			return
		}
		if fr.Len > PayloadMax || int(fr.Len) != len(fr.Payload) {
			t.Fatalf("frame %+v with %d payload bytes", fr.Header, len(fr.Payload))
		}
		used := len(in) - r.Len()
		out, err := AppendFrame(nil, fr.Type, fr.ReqID, fr.TxID, fr.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, in[:used]) {
			t.Fatalf("re-encoded %q, read from %q", out, in[:used])
		}
		if fr.Type == TypeWatchEvent {
			if ev, err := ParseEvent(fr.Payload); err == nil && ev.Path == "" {
				t.Fatalf("event with an empty path from %q", fr.Payload)
			}
		}
	})
}
