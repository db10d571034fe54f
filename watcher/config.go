package watcher

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"ganeti-userdown/internal/config"
	"ganeti-userdown/internal/dnsname"
	"ganeti-userdown/internal/ganeti"
	"ganeti-userdown/internal/metrics"
	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/xen"
)

// FromConfig returns the sources of a node configured by c: the toolstack
// client of [xen], the cluster client of [cluster] (built only when
// needed), the store of [state] and the policies of [policy] and [crash].
func FromConfig(c config.Config, log *slog.Logger) (Sources, *xen.Client, error) {
	node, err := c.Cluster.NodeName()
	if err != nil {
		return Sources{}, nil, fmt.Errorf("this node's name: %w", err)
	}
	x := xen.NewClient(xen.Flavour(c.Xen.Toolstack), c.Xen.Command, c.Xen.Timeout.Duration)
	x.SetLogger(log)
	cluster := c.Cluster
	s := Sources{
		// Ganeti's own spelling of the name, so that the master's filter
		// on the primary node matches (design.md, "Node names").
		Node:    dnsname.Normalize(node),
		Flavour: xen.Flavour(c.Xen.Toolstack),
		Xen:     x,
		Cluster: func(context.Context) (ganeti.Client, error) {
			return ganeti.New(cluster)
		},
		UserShutdown: func() (bool, error) {
			return ganeti.UserShutdownEnabled(cluster.SsconfDir)
		},
		Store:         state.Open(c.State.Dir).WithIntentTTL(c.State.IntentTTL.Duration),
		DefaultPolicy: c.Policy.Default,
		Settle:        c.Policy.Settle.Duration,
		DumpCrashes:   c.Crash.DumpDir != "",
		Now:           time.Now,
		Log:           log,
	}
	return s, x, nil
}

// MetricsRecorder returns the recorder of the metrics configured by c:
// the totals in the state dir, the textfile of [metrics].
func MetricsRecorder(c config.Config) *metrics.Recorder {
	return &metrics.Recorder{Store: state.Open(c.State.Dir), Textfile: c.Metrics.Textfile}
}
