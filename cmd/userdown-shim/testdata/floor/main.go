// Command floor is the floor of a Go toolstack shim: a static Go program
// that does nothing but exec /bin/true with its arguments and
// environment (runtime start plus one exec). BenchmarkShimRatio compares
// the shim with it.
package main

import (
	"os"
	"syscall"
)

func main() {
	err := syscall.Exec("/bin/true", append([]string{"/bin/true"}, os.Args[1:]...), os.Environ())
	os.Stderr.WriteString("floor: " + err.Error() + "\n")
	os.Exit(1)
}
