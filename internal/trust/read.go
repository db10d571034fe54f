package trust

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
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
	root := Required()
	var real string
	var err error
	if root {
		real, _, err = check(path)
	} else {
		real, err = filepath.EvalSymlinks(path)
	}
	if err != nil {
		return File{}, err
	}
	return read(path, real, max, root)
}

// read opens real without blocking and reads it whole with plain system
// calls (an *os.File would first register the descriptor with the
// runtime's poller: three system calls more on the shim's every call).
func read(path, real string, max int64, root bool) (File, error) {
	fd, err := syscall.Open(real, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return File{}, &fs.PathError{Op: "open", Path: real, Err: err}
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return File{}, &fs.PathError{Op: "fstat", Path: real, Err: err}
	}
	fi := statInfo{name: filepath.Base(real), st: st}
	if !fi.Mode().IsRegular() {
		return File{}, errors.New(real + " is not a regular file (" + fi.Mode().Type().String() + ")")
	}
	if root {
		if err := Safe(path, real, fi, false); err != nil {
			return File{}, err
		}
	}
	if st.Size > max {
		return File{}, errors.New(real + " is larger than " + strconv.FormatInt(max, 10) + " bytes (" + strconv.FormatInt(st.Size, 10) + ")")
	}
	// One byte more than fstat says tells a file that grew meanwhile.
	buf := make([]byte, st.Size+1)
	n := 0
	for n < len(buf) {
		m, err := syscall.Read(fd, buf[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return File{}, &fs.PathError{Op: "read", Path: real, Err: err}
		}
		if m == 0 {
			break
		}
		n += m
	}
	if int64(n) > st.Size {
		return File{}, errors.New(real + " changed while read")
	}
	return File{Path: real, Info: fi, Data: buf[:n]}, nil
}

// statInfo is an fs.FileInfo from a syscall.Stat_t.
type statInfo struct {
	name string
	st   syscall.Stat_t
}

func (s statInfo) Name() string       { return s.name }
func (s statInfo) Size() int64        { return s.st.Size }
func (s statInfo) ModTime() time.Time { return time.Unix(s.st.Mtim.Unix()) }
func (s statInfo) IsDir() bool        { return s.Mode().IsDir() }
func (s statInfo) Sys() any           { return &s.st }

// Mode converts the kernel's mode bits as package os does.
func (s statInfo) Mode() fs.FileMode {
	m := fs.FileMode(s.st.Mode & 0o777)
	switch s.st.Mode & syscall.S_IFMT {
	case syscall.S_IFBLK:
		m |= fs.ModeDevice
	case syscall.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case syscall.S_IFDIR:
		m |= fs.ModeDir
	case syscall.S_IFIFO:
		m |= fs.ModeNamedPipe
	case syscall.S_IFLNK:
		m |= fs.ModeSymlink
	case syscall.S_IFSOCK:
		m |= fs.ModeSocket
	}
	if s.st.Mode&syscall.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if s.st.Mode&syscall.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if s.st.Mode&syscall.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}
