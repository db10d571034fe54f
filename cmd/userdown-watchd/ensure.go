package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"ganeti-userdown/internal/cli"
	"ganeti-userdown/internal/config"
	"ganeti-userdown/internal/state"
)

// unit is the daemon's systemd unit.
const unit = "userdown-watchd.service"

// ensureRunning starts the daemon unless it is disabled or already runs,
// as Ganeti's watcher does for Ganeti's own daemons: with systemctl when
// systemd runs (so that the unit's watchdog and restarts apply), else
// detached in a session of its own, logging to a file. It prints a line
// only when it started something.
func ensureRunning(c flags, stdout, stderr io.Writer, getenv func(string) string) int {
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("prog", "userdown-watchd")
	cfg, err := config.LoadFrom(c.Config, getenv)
	if err != nil {
		log.Error(err.Error())
		return cli.ExitUsage
	}
	if !cfg.Events.Enabled {
		return cli.ExitOK
	}
	store := state.Open(cfg.State.Dir)
	running, err := store.DaemonRunning()
	if err != nil {
		log.Error("cannot tell whether the daemon runs", "err", err)
		return cli.ExitUnreadable
	}
	if running {
		return cli.ExitOK
	}
	if fi, err := os.Stat(c.SystemdDir); err == nil && fi.IsDir() {
		out, err := exec.Command(c.Systemctl, "start", "--no-block", unit).CombinedOutput()
		if err != nil {
			log.Error("systemctl start failed", "unit", unit, "err", err, "output", strings.TrimSpace(string(out)))
			return cli.ExitFailed
		}
		fmt.Fprintf(stdout, "userdown-watchd was not running: asked systemd to start %s\n", unit)
		return cli.ExitOK
	}
	pid, err := startDetached(c, store)
	if err != nil {
		log.Error("userdown-watchd not started", "err", err)
		return cli.ExitFailed
	}
	fmt.Fprintf(stdout, "userdown-watchd was not running: started it (pid %d, log %s)\n", pid, c.DetachedLog)
	return cli.ExitOK
}

// startDetached runs this program as the daemon in a session of its own
// (out of the watcher hook's process group and its time bound), stdin
// from /dev/null, stdout and stderr to the log file, and waits until it
// holds the daemon lock.
func startDetached(c flags, store *state.Store) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(c.DetachedLog), 0o755); err != nil {
		return 0, err
	}
	logf, err := os.OpenFile(c.DetachedLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	args := []string{}
	if c.Config != "" {
		args = append(args, "--config", c.Config)
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			return 0, fmt.Errorf("it exited at once (%v): see %s", err, c.DetachedLog)
		case <-deadline.C:
			return 0, fmt.Errorf("it did not take its lock %s within 5s: see %s", store.DaemonLockPath(), c.DetachedLog)
		case <-tick.C:
			if ok, _ := store.DaemonRunning(); ok {
				return cmd.Process.Pid, nil
			}
		}
	}
}
