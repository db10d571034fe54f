package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// width is where printed lines are wrapped.
const width = 96

// The margins of the timeline: a stamp, then the event; below it what a
// command printed (|), what ganeti-userdown decided (→) and the checks.
const (
	indent = "         "
	cont   = indent + "  "
)

func (d *demo) stamp() string {
	return fmt.Sprintf("%7.1fs", time.Since(d.start).Seconds())
}

// chapter starts a part of the story, with a few lines saying what it
// shows.
func (d *demo) chapter(title string, about ...string) {
	fmt.Fprintf(d.out, "\n== %s ==\n", title)
	for _, a := range about {
		for _, l := range wrap(a, width-2) {
			fmt.Fprintf(d.out, "  %s\n", l)
		}
	}
	fmt.Fprintln(d.out)
}

// event prints a timestamped line: who did what.
func (d *demo) event(format string, a ...any) {
	d.lines(d.stamp()+"  ", indent+"    ", fmt.Sprintf(format, a...))
}

// printed shows a line of a command's output.
func (d *demo) printed(s string) {
	d.lines(indent+"| ", indent+"|   ", d.short(s))
}

// decided shows what ganeti-userdown decided and why.
func (d *demo) decided(format string, a ...any) {
	d.lines(indent+"→ ", indent+"  ", fmt.Sprintf(format, a...))
}

// check shows a claim of the story and records it when it does not hold.
func (d *demo) check(ok bool, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	if ok {
		d.lines(indent+"✓ ", indent+"  ", msg)
		return
	}
	d.lines(indent+"✗ ", indent+"  ", msg)
	d.failed = append(d.failed, msg)
}

// lines prints s wrapped, the first line after first, the rest after
// rest.
func (d *demo) lines(first, rest, s string) {
	for i, l := range wrap(s, width-len([]rune(first))) {
		if i == 0 {
			fmt.Fprintf(d.out, "%s%s\n", first, l)
		} else {
			fmt.Fprintf(d.out, "%s%s\n", rest, l)
		}
	}
}

// wrap breaks s at spaces into lines of at most n runes (a longer word
// stays whole). Short lines and tables (runs of spaces, tabs) are kept as
// they are.
func wrap(s string, n int) []string {
	var out []string
	for _, para := range strings.Split(s, "\n") {
		if len([]rune(para)) <= n || strings.Contains(para, "  ") || strings.Contains(para, "\t") {
			out = append(out, strings.TrimRight(para, " "))
			continue
		}
		line := ""
		for _, w := range strings.Fields(para) {
			switch {
			case line == "":
				line = w
			case len([]rune(line))+1+len([]rune(w)) <= n:
				line += " " + w
			default:
				out = append(out, line)
				line = w
			}
		}
		out = append(out, line)
	}
	return out
}

// short shows paths as on a real node (/etc/xen, the state dir, the
// dump dir, xenstored's socket, the configuration) and the rest of the
// work directory as $DEMO.
func (d *demo) short(s string) string {
	for _, n := range d.nodes {
		s = strings.NewReplacer(n.etcXen, "/etc/xen", n.dumps, "/var/lib/xen/dump", n.state, "/var/lib/ganeti-userdown",
			n.socket, "/run/xenstored/socket", n.config, "/etc/ganeti/userdown.toml").Replace(s)
	}
	return strings.ReplaceAll(s, d.dir, "$DEMO")
}

// result is what a command did.
type result struct {
	code   int
	stdout string
	stderr string
}

// sh runs a command on n as who (a comment printed beside it) and shows
// its output.
func (n *node) sh(who string, name string, args ...string) result {
	cmd := exec.Command(name, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "USERDOWN_CONFIG=" + n.config}
	line := "$ " + strings.Join(append([]string{filepath.Base(name)}, args...), " ")
	if who != "" {
		line = who + ": " + line
	}
	return n.d.exec(line, cmd, true)
}

// exec runs cmd, printing line and, when show, its output; stderr only
// with -v or when it failed.
func (d *demo) exec(line string, cmd *exec.Cmd, show bool) result {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		done <- err
	} else {
		go func() { done <- cmd.Wait() }()
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		err = errors.Join(errors.New("killed after 60s"), <-done)
	}
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		r.code = -1
		r.stderr += err.Error()
	}
	suffix := ""
	if r.code != 0 {
		suffix = fmt.Sprintf("   => exit %d", r.code)
	}
	d.event("%s%s", d.short(line), suffix)
	if show {
		for _, l := range strings.Split(strings.TrimRight(r.stdout, "\n"), "\n") {
			if l != "" {
				d.printed(l)
			}
		}
	}
	// A failure's log is shown unless the command said why on stdout.
	if d.verbose || (r.code != 0 && show && strings.TrimSpace(r.stdout) == "") {
		for _, l := range strings.Split(strings.TrimRight(r.stderr, "\n"), "\n") {
			if l != "" {
				d.lines(indent+"! ", indent+"!   ", d.short(l))
			}
		}
	}
	return r
}

func read(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// waitFor polls cond every 20ms for up to limit and returns how long it
// took and whether it came true.
func waitFor(limit time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > limit {
			return time.Since(start), false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
