package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// syncBuffer is a bytes.Buffer safe to read while the demo writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemo runs the whole demo, as `make demo` does: every check of the
// story must hold, and the lines that tell it must be there, in order.
func TestDemo(t *testing.T) {
	var out syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(options{}, &out) }()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("demo exit %d:\n%s", code, out.String())
		}
	case <-time.After(4 * time.Minute):
		t.Fatalf("demo not finished after 4 minutes; so far:\n%s", out.String())
	}
	text := out.String()
	if strings.Contains(text, "✗") {
		t.Errorf("a check failed:\n%s", text)
	}
	// The story's key lines, in the order they must come.
	want := []string{
		"== 1. The shim",
		"Ganeti writes /etc/xen/web1.example.com: on_poweroff='destroy', on_crash='restart'",
		"on_poweroff = 'preserve'",
		"on_crash = 'preserve'",
		"== 2. A user powers web1 off",
		"watchd: marked down instance=web1.example.com",
		"web1.example.com ADMIN_down",
		"== 3. db1's kernel panics",
		"watchd: crashed instance started again instance=db1.example.com",
		"one core dump of db1",
		"== 4. The operator stops db1 with Ganeti",
		"instance@db1.example.com@stop.json",
		"ganeti-userdown submitted no shutdown job for db1",
		"== 5. The multi-node race",
		"the job fails (HooksAbort)",
		"ganeti-userdown: not starting app1.example.com",
		"userdown-hook --allow-start web1.example.com",
		"== 6. Without the daemon",
		"ganeti-userdown: not starting web1.example.com",
		"web1.example.com   mark-down",
		"userdown-detect: marked down instance=web1.example.com",
		"userdown-destroy: crashed instance started again instance=app1.example.com",
		"== 7. A Ganeti 2.10 cluster",
		"Jq3/Job2/C_VERIFY_DISKS",
		"watchd: marked down instance=mail1.example.com",
		"PUT /2/query/lock => 200 (every lock: 2.10 refuses a filter)",
		"== Summary",
		"demo: every step behaved as described",
	}
	rest := text
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("missing, or out of order: %q\noutput:\n%s", w, text)
		}
		rest = rest[i+len(w):]
	}
	for i, l := range strings.Split(text, "\n") {
		if n := len([]rune(l)); n > 110 && !strings.HasPrefix(l, "  - ") {
			t.Errorf("line %d is %d characters long: %q", i+1, n, l)
		}
	}
}

func TestWrap(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want []string
	}{
		{"short line", 20, []string{"short line"}},
		{"one two three four five", 10, []string{"one two", "three four", "five"}},
		{"a-very-long-word stays", 8, []string{"a-very-long-word", "stays"}},
		{"Name    ID   State  and a long table row", 10, []string{"Name    ID   State  and a long table row"}},
		{"tab\tseparated row that is long", 10, []string{"tab\tseparated row that is long"}},
		{"first\nsecond line here", 8, []string{"first", "second", "line", "here"}},
	} {
		if diff := cmp.Diff(tc.want, wrap(tc.in, tc.n)); diff != "" {
			t.Errorf("wrap(%q, %d) (-want +got):\n%s", tc.in, tc.n, diff)
		}
	}
}

func TestCondense(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{`time=2026-12-02T01:58:51.603Z level=INFO msg="marked down" prog=userdown-watchd instance=web1.example.com job=4`,
			`marked down instance=web1.example.com job=4`},
		{`time=2026-12-02T01:58:51.603Z level=WARN msg=destroyed prog=userdown-destroy why="a \"quoted\" reason"`,
			`level=WARN destroyed why="a \"quoted\" reason"`},
	} {
		if got := condense(tc.in); got != tc.want {
			t.Errorf("condense(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := logValue(`time=2026-12-02T01:58:51.603Z msg=x`, "time"); got != "2026-12-02T01:58:51.603Z" {
		t.Errorf("logValue time = %q", got)
	}
}
