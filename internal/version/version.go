// Package version holds the ganeti-userdown release, set at link time by
// the Makefile from `git describe`.
package version

// Version is the release; "dev" for builds outside the Makefile.
var Version = "dev"
