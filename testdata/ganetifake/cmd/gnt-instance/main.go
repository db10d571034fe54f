// Command gnt-instance is a fake of Ganeti's gnt-instance for tests: `list`
// and `shutdown` over the fake cluster in $GANETIFAKE_STATE, printing what
// Ganeti 3.0.2 prints. $GANETIFAKE_NODE, when it is not the master, makes
// every command fail as on a non-master node.
package main

import (
	"os"

	"ganeti-userdown/testdata/ganetifake"
)

func main() {
	os.Exit(ganetifake.RunGntInstance(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}
