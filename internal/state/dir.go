package state

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"ganeti-userdown/internal/atomicfile"
	"ganeti-userdown/internal/trust"
)

// The state directory is trusted only when it is root's (or, for a
// process that is not root, its own user's) and nobody else may write in
// it or in any directory above it, as OpenSSH checks a user's ~/.ssh: the
// rule of package trust (trust.Walk), applied whoever runs.
// Every file inside is reached from the directory's descriptor with
// O_NOFOLLOW: a symbolic link planted there is refused, never followed.
// Reference: doc/design.md, "State files".

// Bounds of the files read from the state directory: an intent is a few
// hundred bytes, an observation about 150 (4 MiB is some 25,000 domains).
const (
	intentLimit       = 64 << 10
	observationsLimit = 4 << 20
)

// dirMode is the mode the state directory and intents/ are created with.
const dirMode = 0o700

// UnsafeDirError says the state directory (or a directory above it, or
// intents/ in it) may be written by someone other than root: nothing in
// it is trusted and nothing is written to it.
type UnsafeDirError struct {
	Path string // the directory at fault
	UID  uint32
	Mode uint32 // permission bits, with setuid, setgid and sticky
	Why  string
	// Above: Path is a directory above the state dir.
	Above bool
}

// Error names the directory, its owner and mode, and the fix.
func (e *UnsafeDirError) Error() string {
	fix := "chmod 0700 " + e.Path
	if e.Above {
		fix = "chmod go-w " + e.Path
	}
	return fmt.Sprintf("state dir: %s (owner uid %d, mode %04o) %s: refused (fix: chown root:root %s && %s, or choose another [state] dir)",
		e.Path, e.UID, e.Mode, e.Why, e.Path, fix)
}

// trustDir checks a directory of the store (the state dir itself or
// intents/, as fstat saw it once opened) by trust.Safe's rule, without
// the sticky exception: only its owner may write in it.
func trustDir(path string, fi fs.FileInfo) error {
	if !fi.IsDir() {
		st, _ := fi.Sys().(*syscall.Stat_t)
		e := &UnsafeDirError{Path: path, Why: "is not a directory"}
		if st != nil {
			e.UID, e.Mode = st.Uid, st.Mode&0o7777
		}
		return e
	}
	return unsafeDir(trust.Safe(path, path, fi, false), path)
}

// unsafeDir turns a refusal by package trust into an *UnsafeDirError,
// shown as dir when the culprit is the state dir itself (as resolved)
// and as above it otherwise. Other errors are returned as they are.
func unsafeDir(err error, dir string) error {
	var te *trust.Error
	if !errors.As(err, &te) {
		return err
	}
	e := &UnsafeDirError{Path: te.Culprit, UID: uint32(te.UID), Mode: unixMode(te.Mode), Why: "is writable by group or others"}
	if real, rerr := filepath.EvalSymlinks(dir); rerr != nil || te.Culprit != real && te.Culprit != dir {
		e.Above = true
	} else {
		e.Path = dir
	}
	if te.BadOwner() {
		e.Why = fmt.Sprintf("is owned by neither root nor uid %d", os.Geteuid())
		if os.Geteuid() == 0 {
			e.Why = "is not owned by root"
		}
	}
	return e
}

// unixMode is m's permission bits with setuid, setgid and sticky, as
// chmod takes them.
func unixMode(m fs.FileMode) uint32 {
	n := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		n |= syscall.S_ISUID
	}
	if m&fs.ModeSetgid != 0 {
		n |= syscall.S_ISGID
	}
	if m&fs.ModeSticky != 0 {
		n |= syscall.S_ISVTX
	}
	return n
}

// root is an open, checked directory of the store. Close it after use.
type root struct {
	f *os.File
}

func (r *root) close() {
	if r != nil {
		r.f.Close()
	}
}

func (r *root) path(name string) string { return filepath.Join(r.f.Name(), name) }

// openRoot opens the state directory after checking it and everything
// above it. With create it makes the directory (0700) when missing;
// without, a missing directory is (nil, nil): nothing was ever recorded.
func (s *Store) openRoot(create bool) (*root, error) {
	if create {
		if err := os.MkdirAll(filepath.Dir(s.dir), 0o755); err != nil {
			return nil, fmt.Errorf("state dir %s: %w", s.dir, err)
		}
		if err := os.Mkdir(s.dir, dirMode); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("state dir %s: %w", s.dir, err)
		}
	}
	// The state dir, every directory above it and those holding links on
	// the way: trust.Walk's rule, for root and for any other user.
	real, _, err := trust.Walk(s.dir)
	if err != nil {
		if !create {
			if _, serr := filepath.EvalSymlinks(s.dir); errors.Is(serr, fs.ErrNotExist) {
				return nil, nil // nothing was ever recorded
			}
		}
		if trust.IsRefused(err) {
			return nil, unsafeDir(err, s.dir)
		}
		return nil, fmt.Errorf("state dir %s: %w", s.dir, err)
	}
	fd, err := syscall.Open(real, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("state dir %s: %w", s.dir, err)
	}
	r := &root{f: os.NewFile(uintptr(fd), s.dir)}
	if err := r.trust(s.dir); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

func (r *root) trust(shown string) error {
	fi, err := r.f.Stat()
	if err != nil {
		return fmt.Errorf("state dir %s: %w", shown, err)
	}
	return trustDir(shown, fi)
}

// sub opens the directory name inside r, never through a link, making
// it (0700) with create. A missing one without create is (nil, nil).
func (r *root) sub(name string, create bool) (*root, error) {
	if create {
		err := syscall.Mkdirat(int(r.f.Fd()), name, dirMode)
		if err != nil && !errors.Is(err, syscall.EEXIST) {
			return nil, fmt.Errorf("state dir: create %s: %w", r.path(name), err)
		}
	}
	fd, err := syscall.Openat(int(r.f.Fd()), name, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		if !create && errors.Is(err, syscall.ENOENT) {
			return nil, nil
		}
		return nil, fmt.Errorf("state dir: %w", noFollowError(r.path(name), err))
	}
	d := &root{f: os.NewFile(uintptr(fd), r.path(name))}
	if err := d.trust(d.f.Name()); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// noFollowError explains an open refused by O_NOFOLLOW.
func noFollowError(path string, err error) error {
	if errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.ENOTDIR) {
		var st syscall.Stat_t
		if syscall.Lstat(path, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFLNK {
			return fmt.Errorf("%s is a symbolic link: refused (the state dir holds no links)", path)
		}
	}
	return &fs.PathError{Op: "open", Path: path, Err: err}
}

// openFile opens name inside r for flag, never through a link, and
// refuses anything but a regular file (a FIFO would block a reader).
func (r *root) openFile(name string, flag int) (*os.File, error) {
	fd, err := syscall.Openat(int(r.f.Fd()), name, flag|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return nil, &fs.PathError{Op: "open", Path: r.path(name), Err: fs.ErrNotExist}
		}
		return nil, noFollowError(r.path(name), err)
	}
	f := os.NewFile(uintptr(fd), r.path(name))
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file (%s): refused", f.Name(), fi.Mode().Type())
	}
	return f, nil
}

// readFile reads name inside r, at most limit bytes: a larger file is an
// error naming it, and costs no more than the bound.
func (r *root) readFile(name string, limit int64) ([]byte, fs.FileInfo, error) {
	f, err := r.openFile(name, syscall.O_RDONLY)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if fi.Size() > limit {
		return nil, fi, fmt.Errorf("%s is %d bytes, more than the %d a state file may have: refused", f.Name(), fi.Size(), limit)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fi, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	if int64(len(b)) > limit {
		return nil, fi, fmt.Errorf("%s is more than the %d bytes a state file may have: refused", f.Name(), limit)
	}
	return b, fi, nil
}

// writeFile replaces name inside r atomically, never through a link.
func (r *root) writeFile(name string, data []byte) error {
	return atomicfile.WriteFileAt(r.f, name, data, 0o600)
}

// remove unlinks name inside r (a link itself, never its target).
func (r *root) remove(name string) error {
	if err := syscall.Unlinkat(int(r.f.Fd()), name); err != nil && !errors.Is(err, syscall.ENOENT) {
		return &fs.PathError{Op: "remove", Path: r.path(name), Err: err}
	}
	return nil
}

// list returns the names in r, sorted.
func (r *root) list() ([]fs.DirEntry, error) {
	fd, err := syscall.Openat(int(r.f.Fd()), ".", syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", r.f.Name(), err)
	}
	d := os.NewFile(uintptr(fd), r.f.Name())
	defer d.Close()
	ents, err := d.ReadDir(-1)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", r.f.Name(), err)
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	return ents, nil
}

// Problems reports what makes the state directory untrusted or unusable,
// for `userdown-hvconfig doctor`: its owner or mode or those of a
// directory above it, symbolic links and other non-regular files in it
// or in intents/, and files larger than a state file may be. A missing
// directory is no problem (the first real run creates it). Nothing is
// changed.
func (s *Store) Problems() []error {
	r, err := s.openRoot(false)
	if err != nil {
		return []error{err}
	}
	if r == nil {
		return nil
	}
	defer r.close()
	var out []error
	check := func(d *root, limits map[string]int64, dirs map[string]bool) {
		ents, err := d.list()
		if err != nil {
			out = append(out, err)
			return
		}
		for _, e := range ents {
			n, p := e.Name(), d.path(e.Name())
			switch t := e.Type(); {
			case t&fs.ModeSymlink != 0:
				out = append(out, fmt.Errorf("%s is a symbolic link: refused (remove it)", p))
			case t.IsDir() && dirs[n]:
			case t.IsDir() || !t.IsRegular():
				out = append(out, fmt.Errorf("%s is not a regular file (%s): not ganeti-userdown's", p, t))
			default:
				limit, ok := limits[n]
				if !ok {
					limit = limits["*"]
				}
				if fi, err := e.Info(); err == nil && limit > 0 && fi.Size() > limit {
					out = append(out, fmt.Errorf("%s is %d bytes, more than the %d a state file may have", p, fi.Size(), limit))
				}
			}
		}
	}
	check(r, map[string]int64{"observations.json": observationsLimit}, map[string]bool{"intents": true})
	in, err := r.sub("intents", false)
	if err != nil {
		out = append(out, err)
	} else if in != nil {
		defer in.close()
		check(in, map[string]int64{"*": intentLimit}, nil)
	}
	return out
}

// notFuture returns t, or now when t is later than now (a clock stepped
// back, or a planted record), and whether it was.
func notFuture(t, now time.Time) (time.Time, bool) {
	if t.After(now) {
		return now, true
	}
	return t, false
}

func notExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

func hidden(name string) bool { return strings.HasPrefix(name, ".") }
