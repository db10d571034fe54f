package detect

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/xen"
)

// TestGuardStop: a shutdown is refused only while our mark-down of the
// instance is in flight and the domain it was decided on no longer is
// what is there; a gone or unchanged stopped domain, no record, another
// instance's or an old record let it through.
//
// Reference: design.md, "The stop guard".
func TestGuardStop(t *testing.T) {
	const x = "x.example.com"
	poweredOff := domain(x, 7, stPoweroff)
	inFlight := &state.MarkDown{Instance: x, DomID: 7, UUID: uuidOf(x), State: "---s--", Submitted: now.Add(-2 * time.Second)}
	old := &state.MarkDown{Instance: x, DomID: 7, UUID: uuidOf(x), State: "---s--", Submitted: now.Add(-MarkDownInFlightFor)}
	other := &state.MarkDown{Instance: "y.example.com", DomID: 7, Submitted: now.Add(-time.Second)}
	rebooted := domain(x, 9, stRunning)
	sameIDRunning := domain(x, 7, stRunning)
	newUUID := poweredOff
	newUUID.UUID = "uuid-other"
	upperUUID := poweredOff
	upperUUID.UUID = strings.ToUpper(poweredOff.UUID)
	newDomPoweredOff := domain(x, 9, stPoweroff)

	tests := []struct {
		name     string
		domains  []xen.Domain
		inFlight *state.MarkDown
		refuse   bool
	}{
		{"no record: an operator's shutdown", []xen.Domain{dom0(), rebooted}, nil, false},
		{"in flight, same powered-off domain", []xen.Domain{dom0(), poweredOff}, inFlight, false},
		{"in flight, uuid differs only in case", []xen.Domain{dom0(), upperUUID}, inFlight, false},
		{"in flight, domain gone", []xen.Domain{dom0()}, inFlight, false},
		{"in flight, rebooted: another domid running", []xen.Domain{dom0(), rebooted}, inFlight, true},
		{"in flight, same domid alive again", []xen.Domain{dom0(), sameIDRunning}, inFlight, true},
		{"in flight, same domid, another uuid", []xen.Domain{dom0(), newUUID}, inFlight, true},
		{"in flight, another domid powered off", []xen.Domain{dom0(), newDomPoweredOff}, inFlight, true},
		{"record too old to be in flight", []xen.Domain{dom0(), rebooted}, old, false},
		{"record of another instance", []xen.Domain{dom0(), rebooted}, other, false},
		{"domain of another instance running", []xen.Domain{dom0(), poweredOff, domain("y.example.com", 9, stRunning)}, inFlight, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := GuardStop(StopInput{Instance: x, Node: node, Domains: tt.domains, InFlight: tt.inFlight, Now: now})
			if d := cmp.Diff(tt.refuse, v.Refuse); d != "" {
				t.Errorf("refuse (-want +got): %s; why %q", d, v.Why)
			}
			if v.Why == "" {
				t.Error("no why")
			}
			if tt.refuse != (v.Message != "") {
				t.Errorf("message %q with refuse %v", v.Message, v.Refuse)
			}
			if v.Refuse && (!strings.HasPrefix(v.Message, StopRefused+x+":") || strings.Contains(v.Message, "\n")) {
				t.Errorf("message not one line starting with %q: %q", StopRefused, v.Message)
			}
		})
	}
}
