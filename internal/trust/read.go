package trust

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// File is a file read whole: the path its links lead to, what fstat said
// of it when opened, and its bytes.
type File struct {
	Path string
	Info fs.FileInfo
	Data []byte
}

// ReadRegular resolves path's links and reads the file they lead to, which
// must be a regular file of at most max bytes. It is opened without
// blocking (a FIFO or a device is refused, not waited on or read without
// end) and checked on the open descriptor, so what is read is what was
// checked. Errors name the file.
func ReadRegular(path string, max int64) (File, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return File{}, err
	}
	return read(path, real, max, false)
}

// ReadFile is ReadRegular for a file root acts on: when running as root
// (see Required) the file and every directory on the way must pass Check,
// and the opened file is checked again (owner root, not writable by group
// or others), so that nothing replaced in between is read.
func ReadFile(path string, max int64) (File, error) {
	real, err := Check(path)
	if err != nil {
		return File{}, err
	}
	return read(path, real, max, Required())
}

func read(path, real string, max int64, root bool) (File, error) {
	f, err := os.OpenFile(real, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return File{}, err
	}
	if !fi.Mode().IsRegular() {
		return File{}, fmt.Errorf("%s is not a regular file (%s)", real, fi.Mode().Type())
	}
	if root {
		if err := safe(path, real, fi, false); err != nil {
			return File{}, err
		}
	}
	if fi.Size() > max {
		return File{}, fmt.Errorf("%s is larger than %d bytes (%d)", real, max, fi.Size())
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return File{}, fmt.Errorf("%s: %w", real, err)
	}
	if int64(len(b)) > max {
		return File{}, fmt.Errorf("%s grew larger than %d bytes while read", real, max)
	}
	return File{Path: real, Info: fi, Data: b}, nil
}
