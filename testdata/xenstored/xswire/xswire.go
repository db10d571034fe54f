// Package xswire is the xenstore wire format as the test fakes speak it:
// the xenstored simulator (testdata/xenstored) and the Xen simulator
// (testdata/xensim), which tells it about domains shutting down. It is
// written from xen/include/public/io/xs_wire.h and docs/misc/xenstore.txt
// alone, apart from ganeti-userdown's own client (internal/xenstore),
// which the fakes exist to test.
package xswire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// Message types, in the order of enum xsd_sockmsg_type.
const (
	Debug uint32 = iota
	Directory
	Read
	GetPerms
	Watch
	Unwatch
	TransactionStart
	TransactionEnd
	Introduce
	Release
	GetDomainPath
	Write
	Mkdir
	Rm
	SetPerms
	WatchEvent
	Error
	IsDomainIntroduced
	Resume
	SetTarget
	Restrict
	ResetWatches
	DirectoryPart
)

// Names are the message types' names in xs_wire.h, without XS_.
var Names = [...]string{"DEBUG", "DIRECTORY", "READ", "GET_PERMS", "WATCH", "UNWATCH",
	"TRANSACTION_START", "TRANSACTION_END", "INTRODUCE", "RELEASE", "GET_DOMAIN_PATH",
	"WRITE", "MKDIR", "RM", "SET_PERMS", "WATCH_EVENT", "ERROR", "IS_DOMAIN_INTRODUCED",
	"RESUME", "SET_TARGET", "RESTRICT", "RESET_WATCHES", "DIRECTORY_PART"}

// Name returns the name of message type t, or "type(t)".
func Name(t uint32) string {
	if int(t) < len(Names) {
		return Names[t]
	}
	return fmt.Sprintf("type(%d)", t)
}

// MaxPayload is XENSTORE_PAYLOAD_MAX.
const MaxPayload = 4096

// SockMsg is struct xsd_sockmsg, the header of every message, in the
// byte order of the host (the socket never leaves it).
type SockMsg struct {
	Type  uint32
	ReqID uint32
	TxID  uint32
	Len   uint32
}

// Msg is a header and its body.
type Msg struct {
	SockMsg
	Body []byte
}

// ErrTooLong is a message whose header announces more than MaxPayload:
// xenstored drops such a client.
type ErrTooLong struct{ Len uint32 }

func (e ErrTooLong) Error() string {
	return fmt.Sprintf("payload of %d bytes, more than XENSTORE_PAYLOAD_MAX", e.Len)
}

// Receive reads one message.
func Receive(r io.Reader) (Msg, error) {
	var m Msg
	if err := binary.Read(r, binary.NativeEndian, &m.SockMsg); err != nil {
		return Msg{}, err
	}
	if m.Len > MaxPayload {
		return Msg{}, ErrTooLong{m.Len}
	}
	m.Body = make([]byte, m.Len)
	if _, err := io.ReadFull(r, m.Body); err != nil {
		return Msg{}, err
	}
	return m, nil
}

// Send writes one message in a single Write.
func Send(w io.Writer, typ, reqID, txID uint32, body []byte) error {
	var buf bytes.Buffer
	binary.Write(&buf, binary.NativeEndian, SockMsg{Type: typ, ReqID: reqID, TxID: txID, Len: uint32(len(body))})
	buf.Write(body)
	_, err := w.Write(buf.Bytes())
	return err
}

// Strings is body made of each string followed by a NUL.
func Strings(s ...string) []byte {
	var b []byte
	for _, x := range s {
		b = append(b, x...)
		b = append(b, 0)
	}
	return b
}

// Fields splits a body at NULs, dropping what follows the last one.
func Fields(body []byte) []string {
	parts := bytes.Split(body, []byte{0})
	out := make([]string, 0, len(parts))
	for _, p := range parts[:len(parts)-1] {
		out = append(out, string(p))
	}
	return out
}
