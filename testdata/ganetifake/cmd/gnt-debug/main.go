// Command gnt-debug is a fake of Ganeti's gnt-debug for tests: `locks`
// over the fake cluster in $GANETIFAKE_STATE.
package main

import (
	"os"

	"ganeti-userdown/testdata/ganetifake"
)

func main() {
	os.Exit(ganetifake.RunGntDebug(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}
