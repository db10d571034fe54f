package xen

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestClientOutputBounded checks that a toolstack printing without end
// is stopped at the output bound with an error naming the command and the
// bound, instead of growing the caller's memory with it.
// Reference: issue 14, point 6 (unbounded reads of toolstack output).
func TestClientOutputBounded(t *testing.T) {
	xl, _ := fakeToolstack(t, `"list -v") exec yes 'Domain-0 0 2048 2 r----- 812.3';;`)
	c := NewClient(XL, xl, 20*time.Second)
	c.maxOutput = 1 << 20
	start := time.Now()
	_, err := c.List(context.Background())
	if err == nil {
		t.Fatal("endless output: no error")
	}
	for _, want := range []string{xl + " list -v", "more than 1048576 bytes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v: the command was not stopped at the bound", d)
	}
}

// TestParseSExprsDepth checks that deeply nested input from `xm list -l`
// is an error, not a stack overflow of the whole process (which exits 2,
// read as a configuration error).
// Reference: issue 14, point 9.
func TestParseSExprsDepth(t *testing.T) {
	deep := strings.Repeat("(", 7<<20)
	if _, err := ParseXMLong([]byte(deep)); err == nil || !strings.Contains(err.Error(), "nested deeper than") {
		t.Errorf("7 MB of '(': err = %v, want a nesting-depth error", err)
	}
	ok := strings.Repeat("(a ", 60) + strings.Repeat(")", 60)
	if _, err := ParseSExprs([]byte(ok)); err != nil {
		t.Errorf("60 levels: %v", err)
	}
}
