// Package xenstore is a small client of xenstored, Xen's store daemon,
// over its Unix socket: read, write and list nodes, and watch paths,
// among them the special watch @releaseDomain that xenstored fires
// whenever a domain shuts down, crashes or is destroyed.
//
// The wire protocol is the one of docs/misc/xenstore.txt and
// xen/include/public/io/xs_wire.h in Xen's source: every message in
// either direction is a 16-byte header of four native-endian uint32
// (type, request id, transaction id, payload length) followed by at
// most PayloadMax bytes of payload.
//
// Use: Dial a Conn (DefaultPath finds the node's socket), Watch
// "@releaseDomain", and range over Events; when the range ends,
// xenstored went away (Err says why) and a new Dial is needed, with the
// watches set again. Read, Write and Directory serve everything else.
//
// What it leaves out: transactions (every request goes outside one),
// lists of children longer than one payload (DIRECTORY_PART: Directory
// fails with E2BIG), and the kernel's xenbus device, which libxenstore
// falls back to when there is no socket (xenstored in a stub domain):
// this client needs xenstored's socket in dom0.
package xenstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"syscall"
)

// HeaderSize is the size of a message header on the wire.
const HeaderSize = 16

// PayloadMax is the largest payload xenstored accepts or sends
// (XENSTORE_PAYLOAD_MAX). xenstored drops a client that sends more.
const PayloadMax = 4096

// Type is a message type (enum xsd_sockmsg_type).
type Type uint32

// The message types this package sends or receives.
const (
	TypeDirectory  Type = 1
	TypeRead       Type = 2
	TypeWatch      Type = 4
	TypeUnwatch    Type = 5
	TypeWrite      Type = 11
	TypeWatchEvent Type = 15
	TypeError      Type = 16
)

var typeNames = map[Type]string{
	0: "DEBUG", TypeDirectory: "DIRECTORY", TypeRead: "READ", 3: "GET_PERMS",
	TypeWatch: "WATCH", TypeUnwatch: "UNWATCH", 6: "TRANSACTION_START",
	7: "TRANSACTION_END", 8: "INTRODUCE", 9: "RELEASE", 10: "GET_DOMAIN_PATH",
	TypeWrite: "WRITE", 12: "MKDIR", 13: "RM", 14: "SET_PERMS",
	TypeWatchEvent: "WATCH_EVENT", TypeError: "ERROR", 17: "IS_DOMAIN_INTRODUCED",
	18: "RESUME", 19: "SET_TARGET", 20: "RESTRICT", 21: "RESET_WATCHES",
	22: "DIRECTORY_PART",
}

// String returns the protocol's name of the type (READ, WATCH_EVENT, ...).
func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// Header is a message header (struct xsd_sockmsg).
type Header struct {
	Type  Type
	ReqID uint32 // echoed by xenstored in its reply; 0 in watch events
	TxID  uint32 // transaction, 0 for none
	Len   uint32 // payload length
}

// Frame is one message: a header and its payload (Len bytes).
type Frame struct {
	Header
	Payload []byte
}

// ErrProtocol is wrapped by every error about a malformed message.
var ErrProtocol = errors.New("xenstore protocol error")

// DecodeHeader decodes the header at the start of b. It fails when b is
// shorter than HeaderSize or the header announces a payload larger than
// PayloadMax.
func DecodeHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: header of %d bytes, want %d", ErrProtocol, len(b), HeaderSize)
	}
	h := Header{
		Type:  Type(binary.NativeEndian.Uint32(b[0:])),
		ReqID: binary.NativeEndian.Uint32(b[4:]),
		TxID:  binary.NativeEndian.Uint32(b[8:]),
		Len:   binary.NativeEndian.Uint32(b[12:]),
	}
	if h.Len > PayloadMax {
		return Header{}, fmt.Errorf("%w: %s payload of %d bytes exceeds %d", ErrProtocol, h.Type, h.Len, PayloadMax)
	}
	return h, nil
}

// ReadFrame reads one message from r. The payload is never larger than
// PayloadMax: a longer length is an ErrProtocol error, read no further.
// A stream that ends inside a message is io.ErrUnexpectedEOF; one that
// ends between messages is io.EOF.
func ReadFrame(r io.Reader) (Frame, error) {
	var hb [HeaderSize]byte
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		return Frame{}, err
	}
	h, err := DecodeHeader(hb[:])
	if err != nil {
		return Frame{}, err
	}
	f := Frame{Header: h, Payload: make([]byte, h.Len)}
	if _, err := io.ReadFull(r, f.Payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	return f, nil
}

// AppendFrame appends the encoding of a message of type t with payload to
// dst. It fails, appending nothing, when the payload exceeds PayloadMax.
func AppendFrame(dst []byte, t Type, reqID, txID uint32, payload []byte) ([]byte, error) {
	if len(payload) > PayloadMax {
		return dst, fmt.Errorf("%s payload of %d bytes exceeds %d (XENSTORE_PAYLOAD_MAX)", t, len(payload), PayloadMax)
	}
	dst = binary.NativeEndian.AppendUint32(dst, uint32(t))
	dst = binary.NativeEndian.AppendUint32(dst, reqID)
	dst = binary.NativeEndian.AppendUint32(dst, txID)
	dst = binary.NativeEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...), nil
}

// Error is an ERROR reply of xenstored: the name of an errno value, as
// listed in xs_wire.h ("ENOENT", "EACCES", "EINVAL", ...).
//
// errors.Is matches it against the syscall.Errno of that name, and so
// against fs.ErrNotExist for ENOENT and fs.ErrPermission for EACCES.
type Error struct {
	Errno string
}

// Error returns the errno name.
func (e *Error) Error() string { return e.Errno }

// Is reports whether target is an Error with the same name or the
// syscall.Errno of that name (or one that errno matches).
func (e *Error) Is(target error) bool {
	if t, ok := target.(*Error); ok {
		return t.Errno == e.Errno
	}
	n, ok := errnoByName[e.Errno]
	if !ok {
		return false
	}
	if t, ok := target.(syscall.Errno); ok {
		return t == n
	}
	return n.Is(target)
}

// errnoByName holds the errors xs_wire.h lists.
var errnoByName = map[string]syscall.Errno{
	"EINVAL": syscall.EINVAL, "EACCES": syscall.EACCES, "EEXIST": syscall.EEXIST,
	"EISDIR": syscall.EISDIR, "ENOENT": syscall.ENOENT, "ENOMEM": syscall.ENOMEM,
	"ENOSPC": syscall.ENOSPC, "EIO": syscall.EIO, "ENOTEMPTY": syscall.ENOTEMPTY,
	"ENOSYS": syscall.ENOSYS, "EROFS": syscall.EROFS, "EBUSY": syscall.EBUSY,
	"EAGAIN": syscall.EAGAIN, "EISCONN": syscall.EISCONN, "E2BIG": syscall.E2BIG,
}

// Event is a watch firing (WATCH_EVENT): Path is the path that changed (a
// child of the watched path, or the watched path itself, as on the first
// firing after registration and for special watches such as
// @releaseDomain), Token the token given to Watch.
type Event struct {
	Path  string
	Token string
}

// ParseEvent decodes the payload of a WATCH_EVENT message,
// "<path>\0<token>\0". Fields after the token (which later Xen releases
// may add) are ignored.
func ParseEvent(payload []byte) (Event, error) {
	fields := splitStrings(payload)
	if len(fields) < 2 || fields[0] == "" {
		return Event{}, fmt.Errorf("%w: watch event %q is not <path>\\0<token>\\0", ErrProtocol, payload)
	}
	return Event{Path: fields[0], Token: fields[1]}, nil
}

// splitStrings splits a payload of NUL-terminated strings. A missing
// final NUL is tolerated; an empty payload has no strings.
func splitStrings(b []byte) []string {
	var out []string
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != 0 {
			i++
		}
		out = append(out, string(b[:i]))
		if i == len(b) {
			break
		}
		b = b[i+1:]
	}
	return out
}
