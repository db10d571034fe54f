// Package trusttest makes the files the root-trust tests need: owned by a
// chosen user, with an exact mode (the umask does not apply).
package trusttest

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Nobody is the uid given to files root must refuse.
const Nobody = 65534

// RequireRoot fails the test unless it runs as root (CI does).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test checks what root trusts: run it as root (CI does)")
	}
}

// File writes content to path (creating its directories 0755) with
// exactly mode, owned by uid and group 0, and returns path.
func File(t testing.TB, path, content string, mode fs.FileMode, uid int) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	own(t, path, mode, uid)
	return path
}

// Dir makes the directory path with exactly mode (fs.ModeSticky counts),
// owned by uid and group 0, and returns path.
func Dir(t testing.TB, path string, mode fs.FileMode, uid int) string {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	own(t, path, mode, uid)
	return path
}

func own(t testing.TB, path string, mode fs.FileMode, uid int) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, uid, 0); err != nil {
		t.Fatal(err)
	}
}

// Sparse makes path a file of size bytes that costs no disk: what a
// bounded reader must refuse by its size, cheaply.
func Sparse(t testing.TB, path string, size int64) string {
	t.Helper()
	f, err := os.Create(path)
	if err == nil {
		err = f.Truncate(size)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// Fifo makes path a named pipe nobody writes to: a reader that opens it
// as a file would wait for ever.
func Fifo(t testing.TB, path string) string {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Prompt runs read and returns its error, failing the test at once when
// read has not returned within five seconds (a FIFO opened for reading,
// say).
func Prompt(t testing.TB, what string, read func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- read() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: still blocked after 5s", what)
		return nil
	}
}
