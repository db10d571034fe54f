package shim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/toolstack"
	"ganeti-userdown/internal/xen"
)

// ShutdownOptions say how the shim handles `shutdown`: which intent it
// records and which reaper it starts.
type ShutdownOptions struct {
	// Flavour is the toolstack's flavour (for reading its domain list).
	Flavour xen.Flavour
	// StateDir is [state] dir, where intents are recorded.
	StateDir string
	// IntentTTL is how long the intent stays live ([state] intent_ttl).
	IntentTTL time.Duration
	// ReapWait bounds the reaper's wait ([xen] reap_wait).
	ReapWait time.Duration
	// Config is the configuration file the reaper is to read ("" for
	// its default).
	Config string
	// Reaper is userdown-destroy; "" means the one beside the running
	// executable.
	Reaper string
	// ListTimeout bounds the one domain listing the shim makes.
	ListTimeout time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// ShutdownTargets resolves the domain argument of a shutdown plan against
// the node's domains, as the toolstack does: a domid, else a name. With
// -a every domain but dom0 is a target. Pure.
func ShutdownTargets(p toolstack.Plan, domains []xen.Domain) []xen.Domain {
	var out []xen.Domain
	if p.All {
		for _, d := range domains {
			if !d.IsDom0() {
				out = append(out, d)
			}
		}
		return out
	}
	if id, err := strconv.Atoi(p.Domain); err == nil {
		for _, d := range domains {
			if d.ID == id && !d.IsDom0() {
				return []xen.Domain{d}
			}
		}
		return nil
	}
	for _, d := range domains {
		if d.Name == p.Domain && !d.IsDom0() {
			return []xen.Domain{d}
		}
	}
	return nil
}

// ShutdownIntent is the intent the shim records for a shutdown of d that
// Ganeti or an operator asked for through the toolstack.
func ShutdownIntent(d xen.Domain, now time.Time, ttl time.Duration) state.Intent {
	return state.Intent{
		UUID: d.UUID, DomID: d.ID, Domain: d.Name,
		Op: "shutdown", Source: "shim",
		Created: now, Expires: now.Add(ttl),
	}
}

// ReaperArgs is the command line of the reaper for d (after the program).
func ReaperArgs(d xen.Domain, o ShutdownOptions) []string {
	args := []string{"--reap", strconv.Itoa(d.ID), "--uuid", d.UUID, "--wait", o.ReapWait.String()}
	if o.Config != "" {
		args = append(args, "--config", o.Config)
	}
	return args
}

// prepareShutdown records a host-initiated intent for every domain the
// shutdown is about and, when the caller does not wait (-w absent),
// starts a detached reaper for each. Problems are logged; the shutdown
// itself always goes on.
func prepareShutdown(ctx context.Context, p toolstack.Plan, o Options) {
	so := o.Shutdown
	log := o.Log
	now := time.Now
	if so.Now != nil {
		now = so.Now
	}
	timeout := so.ListTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	x := xen.NewClient(so.Flavour, o.Command, timeout)
	domains, err := x.List(ctx)
	if err != nil {
		log.Warn("domains not listed: shutdown goes on without an intent", "err", err)
		return
	}
	targets := ShutdownTargets(p, domains)
	if len(targets) == 0 {
		log.Debug("shutdown of no known domain", "domain", p.Domain)
		return
	}
	store := state.Open(so.StateDir)
	reaper := so.Reaper
	if reaper == "" && !p.Wait {
		self, err := os.Executable()
		if err != nil {
			log.Warn("reaper not found: the caller will wait for its timeout", "err", err)
		} else {
			reaper = filepath.Join(filepath.Dir(self), "userdown-destroy")
		}
	}
	for _, d := range targets {
		if d.UUID == "" {
			log.Warn("domain uuid unknown: no intent recorded, no reaper", "domain", d.Name, "domid", d.ID)
			continue
		}
		var contended *state.ContendedError
		switch err := store.RecordIntent(ShutdownIntent(d, now(), so.IntentTTL)); {
		case errors.As(err, &contended):
			// Recorded all the same, under a name of its own: detect
			// counts it, for intent_ttl at most.
			log.Error("INTENTS LOCK HELD: shutdown intent recorded without the lock; find the process holding it",
				"domain", d.Name, "lock", contended.Lock, "waited", contended.Wait, "intent", contended.File)
		case err != nil:
			log.Warn("intent not recorded", "domain", d.Name, "err", err)
			continue
		}
		if p.Wait || reaper == "" {
			continue
		}
		if err := startDetached(reaper, ReaperArgs(d, *so), o.Env); err != nil {
			log.Warn("reaper not started: the caller will wait for its timeout", "domain", d.Name, "err", err)
		}
	}
}

// startDetached starts path with args in a session of its own, with no
// standard stream of ours (they are /dev/null), and does not wait for it:
// it outlives the toolstack that replaces this process.
func startDetached(path string, args, env []string) error {
	cmd := exec.Command(path, args...)
	cmd.Env = env
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", path, err)
	}
	return cmd.Process.Release()
}
