// Command userdown-shim is the toolstack shim as the package installs it
// in place of xl and xm (/usr/sbin/xl is a link to it): the same shim as
// `userdown-hvconfig exec --`, in a binary that links nothing else, since
// it runs before every toolstack call Ganeti makes. It has no options of
// its own: under the name xl or xm every argument is the toolstack's.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"ganeti-userdown/internal/shim"
	"ganeti-userdown/internal/toolstack"
)

func main() {
	switch name := filepath.Base(os.Args[0]); name {
	case "xl", "xm":
		os.Exit(shim.Main(name, os.Args[1:], os.Getenv, os.Stderr, toolstack.DefaultLayout))
	}
	fmt.Fprintf(os.Stderr, "userdown-shim: the toolstack shim of ganeti-userdown runs only under the name xl or xm (a link /usr/sbin/xl -> %s); see userdown-hvconfig(8): userdown-hvconfig exec -- ARGS runs it by hand\n", os.Args[0])
	os.Exit(2)
}
