// Command demo plays ganeti-userdown's story on simulated parts and prints
// it as a timeline a Ganeti operator can follow: what Ganeti, the guest's
// user, the watcher and the operator do, what ganeti-userdown decided and
// why, and how long it took.
//
// The parts: the Xen simulator (testdata/xensim) stands in for the
// hypervisor and the real toolstack, the xenstored simulator
// (testdata/xenstored) for Xen's store daemon, whose @releaseDomain
// watch wakes the event daemon, and the RAPI fake (testdata/ganetifake)
// for the Ganeti master, one cluster as Ganeti 3.0 and one as 2.10. The
// binaries are ganeti-userdown's own, built into a temporary directory
// that is removed at the end.
//
// Every step checks what it claims (the ✓ lines); the demo exits 1 if
// one does not hold. Waits are for conditions, each with a bound. Run it
// from the module: `make demo` or `go run ./testdata/demo`.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

func main() {
	keep := flag.Bool("keep", false, "keep the work directory for inspection")
	verbose := flag.Bool("v", false, "also show what the commands log on stderr")
	flag.Parse()
	os.Exit(run(options{keep: *keep, verbose: *verbose}, os.Stdout))
}

// options are the demo's flags.
type options struct {
	keep    bool
	verbose bool
}

// run plays the whole story and returns the exit code: 0 when every check
// held.
func run(o options, out io.Writer) int {
	d := &demo{out: out, verbose: o.verbose, start: time.Now()}
	defer d.tearDown(o.keep)
	if err := d.setUp(); err != nil {
		fmt.Fprintf(out, "demo: set-up failed: %v\n", err)
		return 1
	}
	d.story()
	d.stopAll()
	if len(d.failed) > 0 {
		fmt.Fprintf(out, "\ndemo: %d check(s) failed:\n", len(d.failed))
		for _, f := range d.failed {
			fmt.Fprintln(out, "  - "+f)
		}
		return 1
	}
	fmt.Fprintf(out, "\ndemo: every step behaved as described (story %.1fs, with the build %.1fs)\n",
		time.Since(d.start).Seconds(), time.Since(d.began).Seconds())
	return 0
}
