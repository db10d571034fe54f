package main

import (
	"fmt"
	"strings"

	"ganeti-userdown/hvconfig"
)

// CheckCmd verifies that domain config files carry the configured actions.
type CheckCmd struct {
	Files []string `arg:"" name:"FILE" help:"Domain config files (e.g. /etc/xen/<instance>)." type:"path"`
}

// Run checks every file and fails when any lacks an action or cannot be
// read.
func (c *CheckCmd) Run(g *Globals) error {
	cfg, err := g.load()
	if err != nil {
		return err
	}
	actions := cfg.Actions.ActionList()
	results := make([]fileResult, 0, len(c.Files))
	bad := 0
	for _, f := range c.Files {
		r := fileResult{File: f, Status: "ok"}
		missing, err := hvconfig.CheckFile(f, actions)
		switch {
		case err != nil:
			r.Status, r.Error = "error", err.Error()
		case len(missing) > 0:
			r.Status = "missing"
			for _, kv := range missing {
				r.Missing = append(r.Missing, kv.Key+"="+kv.Value)
			}
		}
		if r.Status != "ok" {
			bad++
		}
		results = append(results, r)
		if g.JSON {
			continue
		}
		switch r.Status {
		case "ok":
			fmt.Fprintf(g.stdout, "%s: ok\n", f)
		case "missing":
			fmt.Fprintf(g.stdout, "%s: missing %s\n", f, strings.Join(r.Missing, ", "))
		default:
			fmt.Fprintf(g.stdout, "%s: error: %s\n", f, r.Error)
		}
	}
	if g.JSON {
		if err := writeJSON(g, results); err != nil {
			return err
		}
	}
	if bad > 0 {
		return exitErr(exitFailed, nil)
	}
	return nil
}
