package detect

import (
	"fmt"
	"testing"
	"time"

	"ganeti-userdown/internal/ganeti"
	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/xen"
)

// benchInput is a node with 1000 domains (one in ten powered off, one in a
// hundred crashed) in a cluster of 10,000 instances, 1000 of them on this
// node, with 100 live intents and the observations of every dead domain.
func benchInput() Input {
	const domains, instances = 1000, 10000
	in := Input{Node: node, Flavour: xen.XL, Queried: true, DefaultPolicy: PolicyDown, Now: now, Settle: time.Second}
	in.Domains = append(in.Domains, dom0())
	for i := 1; i < domains; i++ {
		st := stRunning
		switch {
		case i%100 == 0:
			st = stCrash
		case i%10 == 0:
			st = stPoweroff
		}
		in.Domains = append(in.Domains, domain(fmt.Sprintf("inst%05d.example.com", i), i, st))
	}
	for i := 0; i < instances; i++ {
		pnode := node
		if i >= domains {
			pnode = fmt.Sprintf("node%d.example.com", 2+i%40)
		}
		tags := []string{"owner:someone"}
		if i%7 == 0 {
			tags = append(tags, "userdown:restart")
		}
		in.Instances = append(in.Instances, ganeti.Instance{Name: fmt.Sprintf("inst%05d.example.com", i), PrimaryNode: pnode, AdminState: ganeti.AdminUp, Tags: tags})
	}
	for i := 0; i < 100; i++ {
		in.Intents = append(in.Intents, state.Intent{Instance: fmt.Sprintf("inst%05d.example.com", i*10), Op: "stop", Source: "hook", Expires: now.Add(time.Hour)})
	}
	in.Observations = state.Observe(nil, in.Domains, now.Add(-time.Minute))
	return in
}

// BenchmarkDecide1000Domains10000Instances measures the decision core on a
// large node of a large cluster (the design's figure for detect's own
// CPU, excluding the toolstack and the master).
func BenchmarkDecide1000Domains10000Instances(b *testing.B) {
	in := benchInput()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if ds := Decide(in); len(ds) != len(in.Domains) {
			b.Fatalf("%d decisions", len(ds))
		}
	}
}

// BenchmarkObserve1000Domains measures updating the observations of a
// large node.
func BenchmarkObserve1000Domains(b *testing.B) {
	in := benchInput()
	b.ReportAllocs()
	for b.Loop() {
		state.Observe(in.Observations, in.Domains, now)
	}
}
