// Package cli holds what the ganeti-userdown binaries share around their
// command line: parsing with kong without letting it end the process, so
// that each binary keeps its own exit codes (a pre hook, for one, must
// exit 0 whatever happens).
package cli

import (
	"fmt"
	"io"

	"github.com/alecthomas/kong"
)

// Exit codes shared by every binary (design.md, "Binaries").
const (
	ExitOK         = 0 // success
	ExitFailed     = 1 // some item failed
	ExitUsage      = 2 // usage or configuration error
	ExitUnreadable = 3 // Xen's or the cluster's state could not be read; nothing changed
)

// Outcome is what Parse made of the command line.
type Outcome struct {
	// Context is kong's parse result; nil when Done.
	Context *kong.Context
	// Done is true when the program must stop now with Code: help or the
	// version was printed (0), or the command line is wrong (ExitUsage;
	// Err says why).
	Done bool
	Code int
	Err  error
}

// Finish reports a Done outcome's error on stderr as "name: error" and
// returns the code the program exits with.
func (o Outcome) Finish(stderr io.Writer, name string) int {
	if o.Err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, o.Err)
	}
	return o.Code
}

// exitRequest carries kong's exit out of its callback.
type exitRequest struct{ code int }

// Parse builds a kong parser named name for grammar, writing help to
// stdout and errors to stderr, and parses args. Kong's own exits (--help,
// --version) come back as Done with code 0 instead of ending the process.
func Parse(name string, grammar any, args []string, stdout, stderr io.Writer, options ...kong.Option) (out Outcome) {
	opts := append([]kong.Option{
		kong.Name(name),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { panic(exitRequest{code}) }),
	}, options...)
	parser, err := kong.New(grammar, opts...)
	if err != nil {
		return Outcome{Done: true, Code: ExitUsage, Err: fmt.Errorf("command line grammar: %w", err)}
	}
	defer func() {
		if r := recover(); r != nil {
			req, ok := r.(exitRequest)
			if !ok {
				panic(r)
			}
			out = Outcome{Done: true, Code: req.code}
			if req.code != 0 {
				out.Code = ExitUsage
			}
		}
	}()
	ctx, err := parser.Parse(args)
	if err != nil {
		return Outcome{Done: true, Code: ExitUsage, Err: err}
	}
	return Outcome{Context: ctx}
}
