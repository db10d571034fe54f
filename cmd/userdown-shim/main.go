// Command userdown-shim is the toolstack shim as the package installs it
// in place of xl and xm (/usr/sbin/xl is a link to it). It runs before
// every toolstack call Ganeti makes, so it links only what a pass-through
// call needs: when the command line needs nothing done first (anything
// but create and shutdown) and the configuration, root's and in the plain
// subset of TOML, names a [xen] command that can be run, it execs that
// command at once. Every other call it hands, unchanged, to the full
// shim, userdown-hvconfig called as xl or xm (the same as
// `userdown-hvconfig exec --`), which rewrites configs, records intents,
// reads any configuration and falls back to another toolstack, logging
// why.
//
// It has no options of its own: under the name xl or xm every argument
// is the toolstack's.
package main

import (
	"os"
	"path/filepath"
	"syscall"

	"ganeti-userdown/internal/configfile"
	"ganeti-userdown/internal/plaintoml"
	"ganeti-userdown/internal/toolstack"
	"ganeti-userdown/internal/trust"
)

func main() {
	name := filepath.Base(os.Args[0])
	if name != "xl" && name != "xm" {
		os.Stderr.WriteString("userdown-shim: the toolstack shim of ganeti-userdown runs only under the name xl or xm (as /usr/sbin/xl, a link to it); to run it by hand: userdown-hvconfig exec -- ARGS (see userdown-hvconfig(8))\n")
		os.Exit(2)
	}
	args := os.Args[1:]
	env := os.Environ()
	if command, ok := passThrough(name, args, os.Getenv); ok {
		// On failure the full shim below says what went wrong.
		_ = syscall.Exec(command, append([]string{command}, args...), env)
	}
	full := fullShim()
	err := syscall.Exec(full, append([]string{name}, args...), env)
	os.Stderr.WriteString("userdown-shim: cannot run the full shim " + full + ": " + err.Error() + " (reinstall ganeti-userdown)\n")
	os.Exit(3)
}

// passThrough returns the toolstack to exec the command line with when
// there is nothing to do but exec it: nothing to prepare, a configuration
// root may trust, in the plain subset of TOML, naming an absolute [xen]
// command that can be run (see toolstack.CheckToolstack).
func passThrough(name string, args []string, getenv func(string) string) (string, bool) {
	if toolstack.Analyze(name, args, getenv("POSIXLY_CORRECT") != "").Prepares() {
		return "", false
	}
	path, _ := configfile.Resolve("", getenv)
	f, err := trust.ReadFile(path, configfile.MaxSize)
	if err != nil {
		return "", false
	}
	command := ""
	if !plaintoml.Scan(f.Data, func(section, key string, v plaintoml.Value) bool {
		if section == "xen" && key == "command" {
			command = v.String
			return !v.IsInt
		}
		return true
	}) || !filepath.IsAbs(command) || toolstack.CheckToolstack(command) != "" {
		return "", false
	}
	return command, true
}

// fullShim returns userdown-hvconfig: beside this executable (as in the
// tests), else in ../../sbin from it, where the package installs it
// (/usr/libexec/ganeti-userdown/shim, /usr/sbin/userdown-hvconfig; in a
// dpkg --root as well), else /usr/sbin/userdown-hvconfig.
func fullShim() string {
	if self, err := os.Executable(); err == nil {
		dir := filepath.Dir(self)
		for _, p := range []string{filepath.Join(dir, "userdown-hvconfig"), filepath.Join(dir, "../../sbin/userdown-hvconfig")} {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	return "/usr/sbin/userdown-hvconfig"
}
