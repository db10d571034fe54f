// Package debtest tests the Debian package that packaging/build-deb makes:
// its contents, its maintainer scripts (install, upgrade, remove, purge and
// failed installs in scratch roots), lintian's verdict, and the toolstack
// shim in front of Debian's real xl wrapper. The tests need root.
package debtest
