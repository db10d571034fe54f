package hooks

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// envMarker starts the environment part of a hook capture; what comes
// before it (argv, cwd, umask...) describes the run, not the environment.
const envMarker = "--- environment"

// ParseEnvFile reads a hook environment written one KEY=VALUE per line,
// sorted or not: the captures of real Ganeti hook runs (where the
// variables follow a "--- environment" line) and the fixtures written
// from Ganeti's documentation. Blank lines and lines starting with '#' are
// skipped; name is used in errors, which give the line number.
func ParseEnvFile(name string, b []byte) (map[string]string, error) {
	env := map[string]string{}
	if i := bytes.Index(b, []byte("\n"+envMarker)); i >= 0 {
		b = b[i+1:]
		if j := bytes.IndexByte(b, '\n'); j >= 0 {
			b = b[j+1:]
		} else {
			b = nil
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		t := sc.Text()
		if strings.TrimSpace(t) == "" || strings.HasPrefix(t, "#") {
			continue
		}
		k, v, ok := strings.Cut(t, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s: line %d: want KEY=VALUE, got %q", name, line, t)
		}
		env[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return env, nil
}

// ReadEnvFile is ParseEnvFile on a file.
func ReadEnvFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return ParseEnvFile(path, b)
}

// GanetiEnv keeps the GANETI_* variables of an environment in
// os.Environ form: what a hook may read.
func GanetiEnv(environ []string) map[string]string {
	env := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, "GANETI_") {
			env[k] = v
		}
	}
	return env
}
