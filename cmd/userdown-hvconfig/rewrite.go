package main

import (
	"encoding/json"
	"fmt"

	"ganeti-userdown/hvconfig"
)

// RewriteCmd sets the configured actions in domain config files.
type RewriteCmd struct {
	Files []string `arg:"" name:"FILE" help:"Domain config files (e.g. /etc/xen/<instance>)." type:"path"`
}

// fileResult is one file's outcome, as --json prints it.
type fileResult struct {
	File    string   `json:"file"`
	Status  string   `json:"status"` // rewritten | unchanged | ok | missing | error
	Missing []string `json:"missing,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// Run rewrites every file; a file that fails does not stop the others.
func (c *RewriteCmd) Run(g *Globals) error {
	cfg, err := g.load()
	if err != nil {
		return err
	}
	actions := cfg.Actions.ActionList()
	results := make([]fileResult, 0, len(c.Files))
	failed := 0
	for _, f := range c.Files {
		r := fileResult{File: f, Status: "unchanged"}
		changed, err := hvconfig.RewriteFile(f, actions)
		switch {
		case err != nil:
			failed++
			r.Status, r.Error = "error", err.Error()
			g.log.Error("rewrite failed, file left as it was", "file", f, "err", err)
		case changed:
			r.Status = "rewritten"
		}
		results = append(results, r)
		if !g.JSON && err == nil {
			fmt.Fprintf(g.stdout, "%s: %s\n", f, r.Status)
		}
	}
	if g.JSON {
		if err := writeJSON(g, results); err != nil {
			return err
		}
	}
	if failed > 0 {
		return exitErr(exitFailed, fmt.Errorf("rewrite: %d of %d files failed", failed, len(c.Files)))
	}
	return nil
}

func writeJSON(g *Globals, v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}
