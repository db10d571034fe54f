package ganeti

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// ReadCredentials reads a RAPI credentials file: "user password" on one
// line. The file is refused, naming it and its mode, when group or others
// have any access to it (it must be 0600 or stricter). The password never
// appears in an error.
func ReadCredentials(path string) (user, password string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", fmt.Errorf("rapi credentials: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", "", fmt.Errorf("rapi credentials: %w", err)
	}
	if !st.Mode().IsRegular() {
		return "", "", fmt.Errorf("rapi credentials %s: not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return "", "", fmt.Errorf("rapi credentials %s: mode %04o lets group or others read it; run chmod 600 %s", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return "", "", fmt.Errorf("rapi credentials %s: %w", path, err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		return "", "", fmt.Errorf("rapi credentials %s: want one line \"user password\", found %d non-empty lines", path, len(lines))
	}
	fields := strings.Fields(lines[0])
	if len(fields) != 2 {
		return "", "", fmt.Errorf("rapi credentials %s: want \"user password\" on one line, found %d words", path, len(fields))
	}
	return fields[0], fields[1], nil
}
