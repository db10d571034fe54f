package shim

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/toolstack"
	"ganeti-userdown/internal/xen"
)

func TestShutdownTargets(t *testing.T) {
	doms := []xen.Domain{
		{Name: "Domain-0", ID: 0, UUID: "u0"},
		{Name: "web1.example.com", ID: 5, UUID: "u5"},
		{Name: "7", ID: 9, UUID: "u9"}, // a name that looks like a domid
		{Name: "db1.example.com", ID: 7, UUID: "u7"},
	}
	tests := []struct {
		args []string
		want []int
	}{
		{[]string{"shutdown", "web1.example.com"}, []int{5}},
		{[]string{"shutdown", "-w", "web1.example.com"}, []int{5}},
		{[]string{"shutdown", "7"}, []int{7}}, // xl reads a number as a domid first
		{[]string{"shutdown", "0"}, nil},      // never dom0
		{[]string{"shutdown", "Domain-0"}, nil},
		{[]string{"shutdown", "nosuch"}, nil},
		{[]string{"shutdown", "-a"}, []int{5, 9, 7}},
		{[]string{"shutdown", "-a", "-w"}, []int{5, 9, 7}},
	}
	for _, tc := range tests {
		p := toolstack.Analyze("xl", tc.args, false)
		if p.Problem != "" {
			t.Fatalf("%v: %s", tc.args, p.Problem)
		}
		var got []int
		for _, d := range ShutdownTargets(p, doms) {
			got = append(got, d.ID)
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("%v (-want +got):\n%s", tc.args, d)
		}
	}
}

func TestShutdownIntentAndReaperArgs(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	d := xen.Domain{Name: "web1.example.com", ID: 5, UUID: "6a1c3f9e-0000-4000-8000-000000000005"}
	in := ShutdownIntent(d, now, time.Hour)
	want := state.Intent{UUID: d.UUID, DomID: 5, Domain: d.Name, Op: "shutdown", Source: "shim", Created: now, Expires: now.Add(time.Hour)}
	if diff := cmp.Diff(want, in); diff != "" {
		t.Errorf("intent (-want +got):\n%s", diff)
	}
	if err := in.Validate(); err != nil {
		t.Errorf("the shim's intent does not validate: %v", err)
	}
	args := ReaperArgs(d, ShutdownOptions{ReapWait: 10 * time.Minute, Config: "/etc/ganeti/userdown.toml"})
	wantArgs := []string{"--reap", "5", "--uuid", d.UUID, "--wait", "10m0s", "--config", "/etc/ganeti/userdown.toml"}
	if diff := cmp.Diff(wantArgs, args); diff != "" {
		t.Errorf("reaper args (-want +got):\n%s", diff)
	}
}
