// Command barefloor is floor without package os: it execs /bin/true with
// the environment but no arguments (package syscall alone cannot read
// them), the lowest a Go program can go.
package main

import "syscall"

func main() {
	syscall.Exec("/bin/true", []string{"/bin/true"}, syscall.Environ())
}
