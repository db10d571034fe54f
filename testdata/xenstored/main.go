// Command xenstored is a stand-in for Xen's store daemon, for
// ganeti-userdown's tests: it serves the real wire protocol
// (xen/include/public/io/xs_wire.h, docs/misc/xenstore.txt) on a Unix
// socket, so Debian's xenstore-read, xenstore-write and xenstore-watch
// (XENSTORED_PATH=<socket>) and ganeti-userdown's own client talk to it
// as to xenstored on a node.
//
//	xenstored -socket PATH [-log FILE] [-v]
//
// It prints "listening PATH" on stdout once it accepts connections, and
// removes the socket on SIGTERM or SIGINT. SIGUSR1 fires @releaseDomain.
// -log appends a JSON line per connection, request and fired change to
// FILE (package xslog reads it); -v logs requests on stderr.
//
// It keeps the tree in memory, starting with dom0's nodes, and answers
// READ, WRITE, MKDIR, RM, DIRECTORY, GET_PERMS and SET_PERMS (permissions
// are stored, not enforced: every client is dom0), WATCH and UNWATCH
// (a watch fires once when registered, then on every change at or under
// its path, as xenstored's do), RESET_WATCHES, TRANSACTION_START and
// TRANSACTION_END (trivial: changes apply at once), GET_DOMAIN_PATH,
// IS_DOMAIN_INTRODUCED, INTRODUCE (fires @introduceDomain) and RELEASE
// (fires @releaseDomain). The Xen simulator (testdata/xensim) sends
// RELEASE whenever a domain shuts down, crashes or is destroyed, and
// INTRODUCE when one is created, so @releaseDomain watchers hear what
// they hear from Xen; as before Xen 4.22, the event names no domain.
//
// Like xenstored it drops a client that sends a payload longer than 4096
// bytes and answers an unknown message type with EINVAL.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"ganeti-userdown/testdata/xenstored/xslog"
	"ganeti-userdown/testdata/xenstored/xswire"
)

func main() {
	socket := flag.String("socket", "", "path of the Unix socket to listen on")
	verbose := flag.Bool("v", false, "log every request on stderr")
	logPath := flag.String("log", "", "append a JSON line per request to this file")
	flag.Parse()
	if *socket == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: xenstored -socket PATH [-v]")
		os.Exit(2)
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	// A socket left by a killed predecessor is replaced, as xenstored
	// does at start.
	if fi, err := os.Lstat(*socket); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(*socket)
	}
	ln, err := net.Listen("unix", *socket)
	if err != nil {
		fmt.Fprintf(os.Stderr, "xenstored: %v\n", err)
		os.Exit(1)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	st := newStore(log)
	if *logPath != "" {
		f, err := os.OpenFile(*logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			fmt.Fprintf(os.Stderr, "xenstored: %v\n", err)
			os.Exit(1)
		}
		st.reqLog = json.NewEncoder(f)
		st.record(xslog.Entry{Op: "start"})
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1)
	go func() {
		for sig := range sigs {
			if sig == syscall.SIGUSR1 {
				st.mu.Lock()
				st.fire("@releaseDomain")
				st.mu.Unlock()
				continue
			}
			ln.Close()
			os.Exit(0)
		}
	}()

	fmt.Printf("listening %s\n", *socket)
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				select {} // exiting in the signal handler
			}
			log.Error("accept", "err", err)
			continue
		}
		go st.serve(nc)
	}
}

// node is one path of the tree.
type node struct {
	value    []byte
	perms    []string
	children []string // leaf names, in creation order
}

// watch is one registered watch of a client.
type watch struct {
	path  string // as given: absolute, relative, or @special
	token string
}

// client is one connection.
type client struct {
	nc      net.Conn
	id      int
	watches []watch

	// Messages to send, in order, written by the client's writer so that
	// a slow reader never holds the store's lock.
	outMu  sync.Mutex
	out    [][]byte
	outSig chan struct{}
	gone   chan struct{} // closed when the client is gone
	closed bool
}

// store is the daemon's state, under one lock.
type store struct {
	log        *slog.Logger
	reqLog     *json.Encoder // nil without -log
	nextClient int
	mu         sync.Mutex
	nodes      map[string]*node
	clients    map[*client]bool
	introduced map[int]bool
	nextTx     uint32
}

func newStore(log *slog.Logger) *store {
	st := &store{log: log, nodes: map[string]*node{"/": {perms: []string{"n0"}}},
		clients: map[*client]bool{}, introduced: map[int]bool{0: true}, nextTx: 1}
	st.write("/local/domain/0/name", []byte("Domain-0"))
	st.write("/local/domain/0/domid", []byte("0"))
	st.mkdir("/tool")
	st.mkdir("/vm")
	return st
}

// errno is an error the daemon answers with an ERROR message.
type errno string

func (e errno) Error() string { return string(e) }

const (
	eINVAL  errno = "EINVAL"
	eENOENT errno = "ENOENT"
	eEEXIST errno = "EEXIST"
	eE2BIG  errno = "E2BIG"
)

func parent(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

func leaf(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

// under reports whether p is child of the watched path w, as
// xenstore.txt defines it.
func under(p, w string) bool {
	return p == w || w == "/" && strings.HasPrefix(p, "/") || strings.HasPrefix(p, w+"/")
}

const domainPath = "/local/domain/0"

// canonical makes p absolute (a socket client is dom0, whose relative
// paths start at /local/domain/0) and checks it as xenstored does.
func canonical(p string, special bool) (string, error) {
	if special && strings.HasPrefix(p, "@") {
		return p, nil
	}
	if p == "" {
		return "", eINVAL
	}
	if !strings.HasPrefix(p, "/") {
		p = domainPath + "/" + p
	}
	if len(p) > 3072 || strings.Contains(p, "//") || (len(p) > 1 && strings.HasSuffix(p, "/")) {
		return "", eINVAL
	}
	for _, c := range p {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-/_@", c)) {
			return "", eINVAL
		}
	}
	return p, nil
}

// mkdir creates p and its missing parents, reporting whether p was new.
func (st *store) mkdir(p string) bool {
	if st.nodes[p] != nil {
		return false
	}
	pp := parent(p)
	st.mkdir(pp)
	par := st.nodes[pp]
	par.children = append(par.children, leaf(p))
	st.nodes[p] = &node{perms: slices.Clone(par.perms)}
	return true
}

func (st *store) write(p string, v []byte) {
	st.mkdir(p)
	st.nodes[p].value = slices.Clone(v)
}

// rm removes p and everything under it.
func (st *store) rm(p string) {
	var drop func(string)
	drop = func(q string) {
		for _, c := range st.nodes[q].children {
			drop(q + "/" + c)
		}
		delete(st.nodes, q)
	}
	drop(p)
	if par := st.nodes[parent(p)]; par != nil {
		par.children = slices.DeleteFunc(par.children, func(c string) bool { return c == leaf(p) })
	}
}

// fire sends a watch event to every watch that p matches: p is under
// the watch (the event names p), or, when recursive (a removal), the
// watch is under p (the event names the watch's path).
func (st *store) fire(p string) { st.fireChange(p, false) }

func (st *store) fireChange(p string, recursive bool) {
	n := 0
	for c := range st.clients {
		for _, w := range c.watches {
			abs, err := canonical(w.path, true)
			if err != nil {
				continue
			}
			var epath string
			switch {
			case under(p, abs):
				epath = p
			case recursive && under(abs, p):
				epath = abs
			default:
				continue
			}
			if abs != w.path { // relative watch: relative event
				epath = strings.TrimPrefix(epath, domainPath+"/")
			}
			c.send(xswire.WatchEvent, 0, 0, xswire.Strings(epath, w.token))
			n++
		}
	}
	st.record(xslog.Entry{Op: "fire", Args: []string{p}, Watchers: n})
}

// record appends e to the request log, if there is one.
func (st *store) record(e xslog.Entry) {
	if st.reqLog == nil {
		return
	}
	e.Time = time.Now()
	if err := st.reqLog.Encode(e); err != nil {
		st.log.Error("request log", "err", err)
	}
}

// serve answers one client until it goes away.
func (st *store) serve(nc net.Conn) {
	c := &client{nc: nc, outSig: make(chan struct{}, 1), gone: make(chan struct{})}
	st.mu.Lock()
	st.nextClient++
	c.id = st.nextClient
	st.clients[c] = true
	st.record(xslog.Entry{Op: "connect", Client: c.id})
	st.mu.Unlock()
	go c.writer()
	defer func() {
		st.mu.Lock()
		delete(st.clients, c)
		st.record(xslog.Entry{Op: "disconnect", Client: c.id})
		st.mu.Unlock()
		c.close()
	}()
	r := bufio.NewReader(nc)
	for {
		m, err := xswire.Receive(r)
		if err != nil {
			var tl xswire.ErrTooLong
			if errors.As(err, &tl) {
				st.log.Warn("dropping client", "err", err)
			} else if !errors.Is(err, io.EOF) {
				st.log.Debug("client gone", "err", err)
			}
			return
		}
		st.mu.Lock()
		reply, err := st.handle(c, m)
		st.log.Debug("request", "type", xswire.Name(m.Type), "req", m.ReqID, "body", string(m.Body), "err", err)
		entry := xslog.Entry{Op: xswire.Name(m.Type), Client: c.id, Args: xswire.Fields(m.Body)}
		if m.Type == xswire.Write {
			path, value, _ := strings.Cut(string(m.Body), "\x00")
			entry.Args = []string{path, value}
		}
		if err != nil {
			var e errno
			if !errors.As(err, &e) {
				e = eINVAL
			}
			entry.Error = string(e)
			st.record(entry)
			c.send(xswire.Error, m.ReqID, m.TxID, xswire.Strings(string(e)))
		} else {
			st.record(entry)
			c.send(m.Type, m.ReqID, m.TxID, reply)
		}
		if m.Type == xswire.Watch && err == nil {
			// Registered: fire once, after the reply.
			w := c.watches[len(c.watches)-1]
			c.send(xswire.WatchEvent, 0, 0, xswire.Strings(w.path, w.token))
		}
		st.mu.Unlock()
	}
}

var ok = xswire.Strings("OK")

// handle runs one request under the lock and returns the reply body.
func (st *store) handle(c *client, m xswire.Msg) ([]byte, error) {
	f := xswire.Fields(m.Body)
	arg := func(i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	// The node the request names, which must exist.
	existing := func() (string, *node, error) {
		p, err := canonical(arg(0), false)
		if err != nil {
			return "", nil, err
		}
		if st.nodes[p] == nil {
			return "", nil, eENOENT
		}
		return p, st.nodes[p], nil
	}
	switch m.Type {
	case xswire.Read:
		_, n, err := existing()
		if err != nil {
			return nil, err
		}
		return slices.Clone(n.value), nil
	case xswire.Write:
		path, value, found := strings.Cut(string(m.Body), "\x00")
		if !found {
			return nil, eINVAL
		}
		p, err := canonical(path, false)
		if err != nil {
			return nil, err
		}
		st.write(p, []byte(value))
		st.fire(p)
		return ok, nil
	case xswire.Mkdir:
		p, err := canonical(arg(0), false)
		if err != nil {
			return nil, err
		}
		if st.mkdir(p) {
			st.fire(p)
		}
		return ok, nil
	case xswire.Rm:
		p, err := canonical(arg(0), false)
		switch {
		case err != nil:
			return nil, err
		case p == "/":
			return nil, eINVAL
		case st.nodes[p] != nil:
			st.rm(p)
			st.fireChange(p, true)
		case st.nodes[parent(p)] == nil:
			return nil, eENOENT
		}
		return ok, nil
	case xswire.Directory:
		_, n, err := existing()
		if err != nil {
			return nil, err
		}
		b := xswire.Strings(n.children...)
		if len(b) > xswire.MaxPayload {
			return nil, eE2BIG
		}
		return b, nil
	case xswire.GetPerms:
		_, n, err := existing()
		if err != nil {
			return nil, err
		}
		return xswire.Strings(n.perms...), nil
	case xswire.SetPerms:
		p, n, err := existing()
		if err != nil {
			return nil, err
		}
		if len(f) < 2 {
			return nil, eINVAL
		}
		n.perms = slices.Clone(f[1:])
		st.fire(p)
		return ok, nil
	case xswire.Watch:
		if _, err := canonical(arg(0), true); err != nil {
			return nil, err
		}
		w := watch{path: arg(0), token: arg(1)}
		if slices.Contains(c.watches, w) {
			return nil, eEEXIST
		}
		c.watches = append(c.watches, w)
		return ok, nil
	case xswire.Unwatch:
		w := watch{path: arg(0), token: arg(1)}
		i := slices.Index(c.watches, w)
		if i < 0 {
			return nil, eENOENT
		}
		c.watches = slices.Delete(c.watches, i, i+1)
		return ok, nil
	case xswire.ResetWatches:
		c.watches = nil
		return ok, nil
	case xswire.TransactionStart:
		if m.TxID != 0 {
			return nil, eINVAL
		}
		id := st.nextTx
		st.nextTx++
		return xswire.Strings(strconv.FormatUint(uint64(id), 10)), nil
	case xswire.TransactionEnd:
		if arg(0) != "T" && arg(0) != "F" {
			return nil, eINVAL
		}
		return ok, nil
	case xswire.GetDomainPath:
		id, err := strconv.Atoi(arg(0))
		if err != nil {
			return nil, eINVAL
		}
		return xswire.Strings(fmt.Sprintf("/local/domain/%d", id)), nil
	case xswire.IsDomainIntroduced:
		id, err := strconv.Atoi(arg(0))
		if err != nil {
			return nil, eINVAL
		}
		if st.introduced[id] {
			return xswire.Strings("T"), nil
		}
		return xswire.Strings("F"), nil
	case xswire.Introduce:
		id, err := strconv.Atoi(arg(0))
		if err != nil || id == 0 {
			return nil, eINVAL
		}
		st.introduced[id] = true
		st.fire("@introduceDomain")
		return ok, nil
	case xswire.Release:
		id, err := strconv.Atoi(arg(0))
		if err != nil || id == 0 {
			return nil, eINVAL
		}
		delete(st.introduced, id)
		st.fire("@releaseDomain")
		return ok, nil
	}
	return nil, eINVAL
}

// send queues a message for the client.
func (c *client) send(typ, reqID, txID uint32, body []byte) {
	var w msgBuf
	xswire.Send(&w, typ, reqID, txID, body)
	c.outMu.Lock()
	if !c.closed {
		c.out = append(c.out, w)
	}
	c.outMu.Unlock()
	select {
	case c.outSig <- struct{}{}:
	default:
	}
}

// msgBuf collects one encoded message.
type msgBuf []byte

func (b *msgBuf) Write(p []byte) (int, error) {
	*b = append(*b, p...)
	return len(p), nil
}

// writer sends the queued messages in order, each in one write.
func (c *client) writer() {
	for {
		select {
		case <-c.outSig:
		case <-c.gone:
			return
		}
		for {
			c.outMu.Lock()
			if len(c.out) == 0 {
				c.outMu.Unlock()
				break
			}
			m := c.out[0]
			c.out = c.out[1:]
			c.outMu.Unlock()
			if _, err := c.nc.Write(m); err != nil {
				c.nc.Close()
				return
			}
		}
	}
}

func (c *client) close() {
	c.outMu.Lock()
	if !c.closed {
		close(c.gone)
	}
	c.closed = true
	c.out = nil
	c.outMu.Unlock()
	c.nc.Close()
}
