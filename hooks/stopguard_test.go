package hooks

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ganeti-userdown/detect"
	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/xen"
	"ganeti-userdown/internal/xen/xentest"
)

// TestStopGuardOnRealCapture plans the instance-stop pre hook environment
// captured from Ganeti 3.0.2 and runs it: while our mark-down of the
// instance is in flight, the shutdown is refused when a rebooted domain
// runs (no intent recorded: the shutdown will not happen), and let through
// (intent recorded) when the domain is the powered-off one it was decided
// on, or gone, or when the record cannot be read.
//
// Reference: design.md, "Hooks", instance-stop pre, and "The stop guard".
func TestStopGuardOnRealCapture(t *testing.T) {
	env := readEnv(t, filepath.Join(capturesDir(t), "xen-instance-shutdown--instance-stop-pre.d.env"))
	d, err := Plan(env, "node1.example.com")
	if err != nil {
		t.Fatal(err)
	}
	const inst = xen1
	poweredOff := xentest.Domain(inst, 7, "u7", "---s--")
	rebooted := xentest.Domain(inst, 9, "u9", "-b----")
	tests := []struct {
		name    string
		doms    []xen.Domain
		corrupt bool
		refuse  bool
	}{
		{"rebooted domain runs", []xen.Domain{rebooted}, false, true},
		{"same powered-off domain", []xen.Domain{poweredOff}, false, false},
		{"domain gone", nil, false, false},
		{"record unreadable", []xen.Domain{rebooted}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := newFakeXen(tt.doms...)
			r, st := newRunner(t, x)
			r.Records = st
			md := state.MarkDown{Instance: inst, DomID: 7, UUID: "u7", State: "---s--", Submitted: r.Now().Add(-3 * time.Second)}
			if err := st.RecordMarkDownInFlight(md); err != nil {
				t.Fatal(err)
			}
			if tt.corrupt {
				if err := os.WriteFile(filepath.Join(st.Dir(), "start-guard", "inflight@"+inst+".json"), []byte("{"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			out := r.Run(context.Background(), d)
			msg := Refused(out)
			if tt.refuse != (msg != "") {
				t.Fatalf("refused %q, want refusal %v; outcomes %+v", msg, tt.refuse, out)
			}
			intents, _ := st.Intents(r.Now())
			if tt.refuse {
				if !strings.HasPrefix(msg, detect.StopRefused+inst+": ") || strings.Contains(msg, "\n") {
					t.Errorf("message %q", msg)
				}
				if len(out) != 1 || len(intents) != 0 {
					t.Errorf("actions ran after the refusal: outcomes %d, intents %v", len(out), intents)
				}
				return
			}
			if len(out) != 2 || len(intents) != 1 || intents[0].Op != "stop" {
				t.Errorf("shutdown let through without its intent: outcomes %+v, intents %v", out, intents)
			}
		})
	}
}
