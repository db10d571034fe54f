// Command faketoolstack stands in for xl in the shim's tests: it records
// how it was called and exits with a chosen status.
//
// Environment:
//
//	FAKE_TOOLSTACK_LOG      append one JSON line per call (argv, stdin, env, cwd, captured file)
//	FAKE_TOOLSTACK_CAPTURE  a file whose content at call time is recorded
//	FAKE_TOOLSTACK_STDOUT   printed on stdout
//	FAKE_TOOLSTACK_STDERR   printed on stderr
//	FAKE_TOOLSTACK_EXIT     exit status (default 0)
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
)

// Call is one recorded invocation.
type Call struct {
	Argv     []string `json:"argv"`
	Stdin    string   `json:"stdin"`
	Env      []string `json:"env"`
	Cwd      string   `json:"cwd"`
	Captured *string  `json:"captured,omitempty"`
}

func main() {
	fmt.Fprint(os.Stdout, os.Getenv("FAKE_TOOLSTACK_STDOUT"))
	fmt.Fprint(os.Stderr, os.Getenv("FAKE_TOOLSTACK_STDERR"))
	if log := os.Getenv("FAKE_TOOLSTACK_LOG"); log != "" {
		c := Call{Argv: os.Args, Env: os.Environ()}
		c.Cwd, _ = os.Getwd()
		if in, err := io.ReadAll(os.Stdin); err == nil {
			c.Stdin = string(in)
		}
		if p := os.Getenv("FAKE_TOOLSTACK_CAPTURE"); p != "" {
			if b, err := os.ReadFile(p); err == nil {
				s := string(b)
				c.Captured = &s
			}
		}
		b, _ := json.Marshal(c)
		f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "faketoolstack:", err)
			os.Exit(99)
		}
		f.Write(append(b, '\n'))
		f.Close()
	}
	code, _ := strconv.Atoi(os.Getenv("FAKE_TOOLSTACK_EXIT"))
	os.Exit(code)
}
