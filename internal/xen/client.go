package xen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// CommandError is a toolstack command that failed: it exited non-zero, was
// killed at its timeout, or could not be started.
type CommandError struct {
	Args     []string // the command and its arguments
	ExitCode int      // -1 when it did not exit normally
	Stderr   string
	Err      error // the underlying error (exit status, context deadline, ...)
}

// Error names the toolstack command, its exit status and its stderr.
func (e *CommandError) Error() string {
	msg := fmt.Sprintf("%s: %v", strings.Join(e.Args, " "), e.Err)
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + s
	}
	return msg
}

// Unwrap returns the underlying error, so errors.Is(err,
// context.DeadlineExceeded) tells a timeout.
func (e *CommandError) Unwrap() error { return e.Err }

// NotFound reports whether the toolstack said the domain does not exist
// (xl: "... is an invalid domain identifier", "Domain '...' does not
// exist"; xm: "Domain '...' does not exist").
func (e *CommandError) NotFound() bool {
	return e.ExitCode > 0 && (strings.Contains(e.Stderr, "does not exist") ||
		strings.Contains(e.Stderr, "invalid domain identifier"))
}

// verboseUnsupported reports the failure of an xl that has no `list -v`:
// xl's option parser says "option `v' not supported." and exits non-zero
// (tools/xl/xl_utils.c, def_getopt). Any other failure of `list -v` is a
// failure of the listing.
func (e *CommandError) verboseUnsupported() bool {
	return e.ExitCode > 0 && strings.Contains(e.Stderr, "option `v' not supported")
}

// Client runs the Xen toolstack (xl or xm). Every call runs one or two
// commands under the caller's context and the client's timeout.
type Client struct {
	flavour Flavour
	command string
	timeout time.Duration
	// maxOutput bounds what one command may print on stdout
	// (MaxOutput unless a test lowers it).
	maxOutput int
	log       *slog.Logger
}

// SetLogger makes the client log what it must say without failing (a
// fallback to a listing without uuids) to l instead of slog.Default().
func (c *Client) SetLogger(l *slog.Logger) { c.log = l }

func (c *Client) logger() *slog.Logger {
	if c.log != nil {
		return c.log
	}
	return slog.Default()
}

// MaxOutput bounds the standard output of one toolstack command: far above
// what `xl list -l` prints for a node full of domains (a few KiB each), far
// below what would exhaust a node's memory. A command printing more is
// stopped and its call fails, naming the command and the bound.
const MaxOutput = 16 << 20

// maxStderr bounds the standard error kept of one toolstack command (for
// the error message).
const maxStderr = 64 << 10

// NewClient returns a client running command (e.g. /usr/sbin/xl) with the
// formats of flavour; timeout bounds every command (0: no bound other than
// the context).
func NewClient(flavour Flavour, command string, timeout time.Duration) *Client {
	return &Client{flavour: flavour, command: command, timeout: timeout, maxOutput: MaxOutput}
}

// Flavour returns the toolstack flavour the client speaks.
func (c *Client) Flavour() Flavour { return c.flavour }

// run runs the toolstack with args and returns its standard output.
func (c *Client) run(ctx context.Context, args ...string) ([]byte, error) {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	ctx, stopOverflow := context.WithCancelCause(ctx)
	defer stopOverflow(nil)
	cmd := exec.CommandContext(ctx, c.command, args...)
	stdout := &boundedBuffer{max: c.maxOutput, overflow: stopOverflow}
	stderr := &boundedBuffer{max: maxStderr}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	if err == nil && !stdout.full {
		return stdout.buf.Bytes(), nil
	}
	ce := &CommandError{Args: append([]string{c.command}, args...), ExitCode: -1, Stderr: stderr.buf.String(), Err: err}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		ce.ExitCode = ee.ExitCode()
	}
	switch {
	case stdout.full:
		ce.ExitCode = -1
		ce.Err = fmt.Errorf("printed more than %d bytes on standard output (the bound on toolstack output); stopped", c.maxOutput)
	case ctx.Err() != nil:
		ce.ExitCode = -1
		ce.Err = fmt.Errorf("%w (%v)", context.Cause(ctx), err)
	}
	return nil, ce
}

// boundedBuffer keeps up to max bytes. Past that, it records the overflow,
// calls overflow (which stops the command) and drops the rest, so that a
// runaway command costs no more memory than the bound.
type boundedBuffer struct {
	buf      bytes.Buffer
	max      int
	full     bool
	overflow context.CancelCauseFunc
}

// Write keeps what fits; it never fails, so the command is stopped by
// overflow rather than by a broken pipe.
func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); len(p) > room {
		b.buf.Write(p[:max(room, 0)])
		if !b.full && b.overflow != nil {
			b.overflow(errors.New("output bound exceeded"))
		}
		b.full = true
		return len(p), nil
	}
	return b.buf.Write(p)
}

// List returns every domain of the node, dom0 included. With xl it parses
// `xl list -v` (falling back to plain `xl list`, without uuids, only when
// the toolstack says it has no -v, and logging that); with xm it parses `xm list` and takes the uuids from
// `xm list -l`. Any error, or any line that does not parse, fails the
// whole listing.
func (c *Client) List(ctx context.Context) ([]Domain, error) {
	return c.list(ctx, "")
}

func (c *Client) list(ctx context.Context, dom string) ([]Domain, error) {
	withDom := func(args ...string) []string {
		if dom != "" {
			args = append(args, dom)
		}
		return args
	}
	switch c.flavour {
	case XL:
		out, err := c.run(ctx, withDom("list", "-v")...)
		var ce *CommandError
		if errors.As(err, &ce) && ce.verboseUnsupported() {
			c.logger().Warn("the toolstack does not support `list -v`: listing without uuids, so the shim's intents (by uuid) match nothing",
				"command", c.command, "stderr", strings.TrimSpace(ce.Stderr))
			out, err = c.run(ctx, withDom("list")...)
		}
		if err != nil {
			return nil, err
		}
		return ParseList(XL, out)
	case XM:
		out, err := c.run(ctx, withDom("list")...)
		if err != nil {
			return nil, err
		}
		doms, err := ParseList(XM, out)
		if err != nil {
			return nil, err
		}
		long, err := c.run(ctx, withDom("list", "-l")...)
		if err != nil {
			return nil, err
		}
		infos, err := ParseXMLong(long)
		if err != nil {
			return nil, err
		}
		byID := make(map[int]XMDomainInfo, len(infos))
		for _, in := range infos {
			byID[in.ID] = in
		}
		for i := range doms {
			// A domain that went away or was replaced between the two
			// calls keeps an empty uuid: callers then cannot match it by
			// uuid and must not act on it blindly.
			if in, ok := byID[doms[i].ID]; ok && in.Name == doms[i].Name && isUUID(in.UUID) {
				doms[i].UUID = in.UUID
			}
		}
		return doms, nil
	}
	return nil, fmt.Errorf("unknown toolstack flavour %q", c.flavour)
}

// Lookup re-reads one domain by domid. It returns false (and no error)
// when the toolstack says the domain does not exist.
func (c *Client) Lookup(ctx context.Context, domid int) (Domain, bool, error) {
	if domid < 0 {
		return Domain{}, false, fmt.Errorf("lookup: bad domid %d", domid)
	}
	doms, err := c.list(ctx, strconv.Itoa(domid))
	var ce *CommandError
	if errors.As(err, &ce) && ce.NotFound() {
		return Domain{}, false, nil
	}
	if err != nil {
		return Domain{}, false, fmt.Errorf("lookup domain %d: %w", domid, err)
	}
	if len(doms) != 1 || doms[0].ID != domid {
		return Domain{}, false, fmt.Errorf("lookup domain %d: toolstack listed %d domains instead", domid, len(doms))
	}
	return doms[0], true, nil
}

// Actions returns the live domain's shutdown actions (on_poweroff,
// on_reboot, on_watchdog, on_crash, on_soft_reset with xl; on_poweroff,
// on_reboot, on_crash with xm), with Xen's defaults filled in and values
// spelled as in xl.cfg ("preserve", "coredump-restart"). dom is a name or
// a domid.
func (c *Client) Actions(ctx context.Context, dom string) (map[string]string, error) {
	out, err := c.run(ctx, "list", "-l", dom)
	if err != nil {
		return nil, fmt.Errorf("actions of %s: %w", dom, err)
	}
	switch c.flavour {
	case XL:
		acts, err := ParseXLActions(out)
		if err != nil {
			return nil, fmt.Errorf("actions of %s: %w", dom, err)
		}
		return acts, nil
	case XM:
		infos, err := ParseXMLong(out)
		if err != nil {
			return nil, fmt.Errorf("actions of %s: %w", dom, err)
		}
		if len(infos) != 1 {
			return nil, fmt.Errorf("actions of %s: xm list -l printed %d domains", dom, len(infos))
		}
		return infos[0].Actions, nil
	}
	return nil, fmt.Errorf("unknown toolstack flavour %q", c.flavour)
}

// Destroy destroys the domain with this domid (never by name: a name may
// already belong to a new domain).
func (c *Client) Destroy(ctx context.Context, domid int) error {
	if domid <= 0 {
		return fmt.Errorf("destroy: refusing domid %d", domid)
	}
	if _, err := c.run(ctx, "destroy", strconv.Itoa(domid)); err != nil {
		return fmt.Errorf("destroy domain %d: %w", domid, err)
	}
	return nil
}

// DumpCore writes the memory of the domain with this domid to path.
func (c *Client) DumpCore(ctx context.Context, domid int, path string) error {
	if domid < 0 {
		return fmt.Errorf("dump-core: bad domid %d", domid)
	}
	if _, err := c.run(ctx, "dump-core", strconv.Itoa(domid), path); err != nil {
		return fmt.Errorf("dump-core domain %d: %w", domid, err)
	}
	return nil
}

// Shutdown asks the guest dom (name or domid) to shut down; with wait it
// waits until the domain has shut down or died (bounded by ctx and the
// client's timeout).
func (c *Client) Shutdown(ctx context.Context, dom string, wait bool) error {
	args := []string{"shutdown"}
	if wait {
		args = append(args, "-w")
	}
	if _, err := c.run(ctx, append(args, dom)...); err != nil {
		return fmt.Errorf("shutdown %s: %w", dom, err)
	}
	return nil
}

// Create starts a domain from the config file cfg, paused if asked.
func (c *Client) Create(ctx context.Context, cfg string, paused bool) error {
	args := []string{"create"}
	if paused {
		args = append(args, "-p")
	}
	if _, err := c.run(ctx, append(args, cfg)...); err != nil {
		return fmt.Errorf("create %s: %w", cfg, err)
	}
	return nil
}
