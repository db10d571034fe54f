package main

import (
	"time"

	"ganeti-userdown/internal/config"
	"ganeti-userdown/internal/doctor"
	"ganeti-userdown/internal/state"
)

// gatherDaemon finds whether userdown-watchd runs (it holds its lock in
// the state dir) and reads its status file.
func gatherDaemon(cfg config.Config) doctor.DaemonFacts {
	f := doctor.DaemonFacts{Now: time.Now()}
	s := state.Open(cfg.State.Dir)
	running, err := s.DaemonRunning()
	if err != nil {
		f.RunningErr = oneLine(err.Error())
	}
	f.Running = running
	st, found, err := s.LoadDaemonStatus()
	if err != nil {
		f.StatusErr = oneLine(err.Error())
	}
	f.Status, f.StatusFound = st, found
	return f
}
