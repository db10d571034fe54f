package ganeti

import (
	"fmt"
	"net"

	"ganeti-userdown/internal/config"
)

// RAPIPort is the port of Ganeti's RAPI daemon.
const RAPIPort = "5080"

// New returns the Client the [cluster] section asks for: "rapi" (the URL
// defaults to https://<ssconf_master_node>:5080) or "cli". The client
// serves one run: its first call starts the run's budget, [cluster]
// run_timeout.
func New(c config.Cluster) (Client, error) {
	switch c.Backend {
	case "rapi", "":
		o, err := RAPIOptionsFrom(c)
		if err != nil {
			return nil, err
		}
		r, err := NewRAPI(o)
		if err != nil {
			return nil, err
		}
		return r, nil
	case "cli":
		cl, err := NewCLI(CLIOptions{
			GntInstance: c.GntInstance, GntDebug: c.GntDebug,
			ShutdownTimeout: c.ShutdownTimeout.Duration, Timeout: c.Timeout.Duration,
			RunTimeout: c.RunTimeout.Duration,
		})
		if err != nil {
			return nil, err
		}
		return cl, nil
	}
	return nil, fmt.Errorf("[cluster] backend: unknown backend %q (want \"rapi\" or \"cli\")", c.Backend)
}

// RAPIOptionsFrom builds the RAPI options of the [cluster] section,
// reading the master from ssconf when rapi_url is empty.
func RAPIOptionsFrom(c config.Cluster) (RAPIOptions, error) {
	url := c.RAPIURL
	if url == "" {
		m, err := MasterNode(c.SsconfDir)
		if err != nil {
			return RAPIOptions{}, fmt.Errorf("[cluster] rapi_url is empty and the master is unknown: %w", err)
		}
		url = "https://" + net.JoinHostPort(m, RAPIPort)
	}
	return RAPIOptions{
		URL: url, CAFile: c.RAPICA, CredentialsFile: c.RAPICredentials,
		Timeout: c.Timeout.Duration, ShutdownTimeout: c.ShutdownTimeout.Duration,
		RunTimeout: c.RunTimeout.Duration,
	}, nil
}
