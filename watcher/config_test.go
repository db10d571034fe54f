package watcher

import (
	"testing"

	"ganeti-userdown/internal/config"
)

// The node name is sent to the master as Ganeti spells it, so that the
// master's filter on the primary node matches however the configuration
// (or the host's FQDN) spells it.
// Reference: doc/design.md, "Decisions", "Node names".
func TestFromConfigNormalisesTheNodeName(t *testing.T) {
	c := config.Default()
	c.Cluster.Node = "Node1.Example.COM."
	c.State.Dir = t.TempDir()
	s, _, err := FromConfig(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Node != "node1.example.com" {
		t.Errorf("Node = %q, want node1.example.com", s.Node)
	}
}
