package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"ganeti-userdown/internal/state"
)

// startDaemon runs userdown-watchd on n, as systemd would, and waits
// until its first run is recorded.
func (n *node) startDaemon() {
	d := n.d
	cmd := exec.Command(filepath.Join(d.bin, "userdown-watchd"), "--config", n.config, "--log-file", n.wdLog)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	if err := cmd.Start(); err != nil {
		d.check(false, "start userdown-watchd: %v", err)
		return
	}
	n.watchd, n.wdDone = cmd, make(chan struct{})
	go func() {
		cmd.Wait()
		n.wdCode = cmd.ProcessState.ExitCode()
		close(n.wdDone)
	}()
	d.event("systemd on %s: $ userdown-watchd", n.name)
	_, ok := waitFor(15*time.Second, func() bool {
		st, found, _ := state.Open(n.state).LoadDaemonStatus()
		return found && st.PID == cmd.Process.Pid
	})
	n.showDaemonLog()
	d.check(ok, "userdown-watchd watches xenstored's @releaseDomain and did its first run")
}

// stopDaemon stops userdown-watchd with SIGTERM (systemctl stop) and
// waits for it.
func (n *node) stopDaemon() {
	if n.watchd == nil {
		return
	}
	n.watchd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.wdDone:
	case <-time.After(30 * time.Second):
		n.watchd.Process.Kill()
		<-n.wdDone
	}
	n.watchd = nil
}

// showDaemonLog prints what userdown-watchd logged since the last call,
// each line stamped with its own time on the story's clock.
func (n *node) showDaemonLog() {
	b, err := os.ReadFile(n.wdLog)
	if err != nil || len(b) <= n.wdShown {
		return
	}
	text := string(b[n.wdShown:])
	// Only whole lines: the daemon may be writing one.
	end := strings.LastIndexByte(text, '\n')
	if end < 0 {
		return
	}
	n.wdShown += end + 1
	for _, line := range strings.Split(text[:end], "\n") {
		stamp := "        "
		if t, err := time.Parse(time.RFC3339Nano, logValue(line, "time")); err == nil {
			stamp = fmt.Sprintf("%7.1fs", t.Sub(n.d.start).Seconds())
		}
		n.d.lines(stamp+"  watchd: ", indent+"            ", n.d.short(condense(line)))
	}
}

// waitDaemon waits (up to limit) until cond holds and, unless action is
// "", the daemon recorded an action after since (the event it acts on)
// whose summary names action; then it shows the daemon's log. It returns
// the time from since to cond and whether both came true.
func (n *node) waitDaemon(since time.Time, limit time.Duration, action string, cond func() bool) (time.Duration, bool) {
	var took time.Duration
	_, ok := waitFor(limit, func() bool {
		if took == 0 {
			if !cond() {
				return false
			}
			took = time.Since(since)
		}
		if action == "" {
			return true
		}
		// The daemon logs a run, then records it: once the action is
		// recorded, the run's lines are all in the log.
		st, _, _ := state.Open(n.state).LoadDaemonStatus()
		return st.LastAction.After(since) && strings.Contains(st.LastActionWhat, action)
	})
	n.showDaemonLog()
	return took, ok && cond()
}

// condense shortens a log/slog text line for the timeline: the message
// and its values, without time, level INFO and program.
func condense(line string) string {
	var kept []string
	for _, kv := range splitLogfmt(line) {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case k == "time" || k == "prog" || (k == "level" && v == "INFO"):
		case k == "msg":
			kept = append(kept, strings.Trim(v, `"`))
		default:
			kept = append(kept, k+"="+v)
		}
	}
	return strings.Join(kept, " ")
}

// logValue returns the value of key in a logfmt line, unquoted.
func logValue(line, key string) string {
	for _, kv := range splitLogfmt(line) {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// splitLogfmt splits a logfmt line into key=value pairs, keeping quoted
// values whole.
func splitLogfmt(line string) []string {
	var out []string
	var cur strings.Builder
	quoted, escaped := false, false
	for _, r := range line {
		switch {
		case escaped:
			escaped = false
		case r == '\\' && quoted:
			escaped = true
		case r == '"':
			quoted = !quoted
		case r == ' ' && !quoted:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
			continue
		}
		cur.WriteRune(r)
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// metric returns the value of one sample of n's metrics textfile, or "".
func (n *node) metric(series string) string {
	for _, l := range strings.Split(read(n.metrics), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			return v
		}
	}
	return ""
}
