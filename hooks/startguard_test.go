package hooks

import (
	"context"
	"testing"

	"ganeti-userdown/detect"
	"ganeti-userdown/internal/xen"
	"ganeti-userdown/internal/xen/xentest"
)

// poweroffAfterList is a toolstack whose guest powers its domain off
// right after the first listing: a user's poweroff while a start's pre
// hook runs.
type poweroffAfterList struct {
	*xentest.Toolstack
	domain xen.Domain
	lists  int
}

func (x *poweroffAfterList) List(ctx context.Context) ([]xen.Domain, error) {
	doms, err := x.Toolstack.List(ctx)
	x.lists++
	if x.lists == 1 {
		d := x.domain
		d.State = xentest.MustState(xen.XL, "---s--")
		x.Set(d)
	}
	return doms, err
}

// TestStartDestroysOnlyWhatTheGuardSaw: the start of an instance whose
// domain runs goes through the guard (nothing to refuse); if its user
// powers it off while the pre hook runs, the start's DestroyDead leaves
// the fresh poweroff alone: it destroys only domains the guard judged
// dead, so the start finds the domain in its way instead of undoing the
// poweroff.
//
// Reference: design.md, "The start guard" ("decides ... before Ganeti
// ... creates the domain"), and "Safety rules", rule 2.
func TestStartDestroysOnlyWhatTheGuardSaw(t *testing.T) {
	const inst = "xen1.example.com"
	running := xentest.Domain(inst, 7, "u7", "-b----")
	x := &poweroffAfterList{Toolstack: newFakeXen(running), domain: running}
	r, st := newRunner(t, x.Toolstack)
	r.Xen, r.Records, r.DefaultPolicy = x, st, detect.PolicyDown
	rq := &detect.StartRequest{Instance: inst, Node: "node1.example.com", AdminState: "up"}
	out := r.Run(context.Background(), Decision{Actions: []Action{
		{Kind: GuardStart, Instance: inst, Start: rq},
		{Kind: DestroyDead, Instance: inst},
	}})
	if len(out) != 2 || out[0].Refused != "" || out[0].Verdict == nil || out[0].Verdict.Case != detect.StartNoSign {
		t.Fatalf("outcomes %+v", out)
	}
	if got := x.Destroyed(); len(got) != 0 {
		t.Errorf("destroyed %v: the poweroff during the hook was undone", got)
	}
	if d, _ := x.Get(7); !d.State.UserPoweredOff() {
		t.Errorf("domain 7: %s", d.State.Letters)
	}
	// The next start (the watcher's, say) sees the poweroff: refused.
	out = r.Run(context.Background(), Decision{Actions: []Action{
		{Kind: GuardStart, Instance: inst, Start: rq},
		{Kind: DestroyDead, Instance: inst},
	}})
	if len(out) != 1 || out[0].Refused == "" {
		t.Fatalf("second start: outcomes %+v", out)
	}
}
