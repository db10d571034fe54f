package destroy

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/xen"
	"ganeti-userdown/internal/xen/xentest"
)

// Reference: doc/design.md, "Shim": the reaper "destroys the domain once
// it is preserved"; "Decisions", safety rule 1.
func TestReap(t *testing.T) {
	ctx := context.Background()
	opts := ReapOptions{DomID: 3, UUID: "uuid-a", Wait: 5 * time.Second, Poll: time.Millisecond}
	t.Run("destroys once preserved, one look per poll", func(t *testing.T) {
		x := xentest.NewToolstack(dom("a", 3, "uuid-a", running))
		looks := 0
		x.OnLookup = func(x *xentest.Toolstack, id int) {
			looks++
			switch looks {
			case 2:
				x.Set(dom("a", 3, "uuid-a", suspended)) // a shutdown in flight: not yet
			case 3:
				x.Set(dom("a", 3, "uuid-a", poweroff))
			}
		}
		r, err := Reap(ctx, x, opts)
		if err != nil || !r.Destroyed {
			t.Fatalf("Reap = %+v, %v; want destroyed", r, err)
		}
		if d := cmp.Diff([]string{"destroy 3"}, x.Calls()); d != "" {
			t.Errorf("calls (-want +got):\n%s", d)
		}
		if looks != 3 {
			t.Errorf("%d looks at the domain over 3 polls, want 3", looks)
		}
	})
	for _, tc := range []struct {
		name  string
		later xen.Domain
		gone  bool
	}{
		{"uuid changes", dom("a", 3, "uuid-new", poweroff), false},
		{"disappears", xen.Domain{}, true},
		{"dying", dom("a", 3, "uuid-a", dying), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := xentest.NewToolstack(dom("a", 3, "uuid-a", running))
			x.OnLookup = func(x *xentest.Toolstack, id int) {
				if tc.gone {
					x.Remove(3)
				} else {
					x.Set(tc.later)
				}
			}
			o := opts
			o.Wait = 100 * time.Millisecond
			r, err := Reap(ctx, x, o)
			if err != nil || r.Destroyed || len(x.Calls()) != 0 {
				t.Fatalf("Reap = %+v, %v, calls %v; want no action", r, err, x.Calls())
			}
		})
	}
	t.Run("runs again after a reboot", func(t *testing.T) {
		x := xentest.NewToolstack(dom("a", 3, "uuid-a", rebooting))
		n := 0
		x.OnLookup = func(x *xentest.Toolstack, id int) {
			n++
			if n == 2 {
				x.Set(dom("a", 3, "uuid-a", running))
			}
		}
		r, err := Reap(ctx, x, opts)
		if err != nil || r.Destroyed || !strings.Contains(r.Outcome, "runs again") {
			t.Fatalf("Reap = %+v, %v; want runs again", r, err)
		}
	})
	t.Run("gives up after wait", func(t *testing.T) {
		x := xentest.NewToolstack(dom("a", 3, "uuid-a", running))
		start := time.Now()
		o := opts
		o.Wait, o.Poll = 50*time.Millisecond, 5*time.Millisecond
		r, err := Reap(ctx, x, o)
		if err != nil || r.Destroyed || len(x.Calls()) != 0 {
			t.Fatalf("Reap = %+v, %v; want no action", r, err)
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("took %s", el)
		}
	})
}
