// Package configfile says where the configuration file is: the one
// decision the toolstack shim needs before it reads anything, kept apart
// from package config so that the shim links nothing heavy.
package configfile

// DefaultPath is where the configuration lives on a node.
const DefaultPath = "/etc/ganeti/userdown.toml"

// EnvVar names the environment variable that overrides DefaultPath. It is
// honoured when running as root too (the shim included): every file it
// can name must pass the same root-trust check as the default one (owned
// by root, not writable by group or others, nor any directory on the
// way), so it chooses only among root's own files.
const EnvVar = "USERDOWN_CONFIG"

// MaxSize bounds the configuration file (the packaged one is 3 KiB).
const MaxSize = 1 << 20

// Resolve returns the configuration path to use: the flag value when set,
// else $USERDOWN_CONFIG, else DefaultPath. explicit reports whether the
// path was asked for (a missing explicit file is an error; a missing
// default file means built-in defaults).
func Resolve(flag string, getenv func(string) string) (path string, explicit bool) {
	if flag != "" {
		return flag, true
	}
	if v := getenv(EnvVar); v != "" {
		return v, true
	}
	return DefaultPath, false
}
