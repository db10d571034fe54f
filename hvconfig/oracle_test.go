package hvconfig

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// corpusDir holds the config corpus: Ganeti-generated configs of several
// releases, xm-era files, the hard cases, and files Xen rejects (named
// reject-*).
const corpusDir = "../testdata/xencfg"

var (
	oracleOnce sync.Once
	oraclePath string
	oracleErr  error
)

// buildOracle compiles testdata/xencfg/oracle/oracle.c against libxlutil
// (Xen's own config parser, from libxen-dev).
func buildOracle(t *testing.T) string {
	t.Helper()
	oracleOnce.Do(func() {
		const install = "the differential test needs Xen's config parser and a C compiler: apt-get install libxen-dev gcc pkg-config"
		cc, err := exec.LookPath("cc")
		if err != nil {
			oracleErr = fmt.Errorf("no C compiler (%v); %s", err, install)
			return
		}
		flags := []string{"-lxlutil"}
		if out, err := exec.Command("pkg-config", "--cflags", "--libs", "xlutil").Output(); err == nil {
			flags = strings.Fields(string(out))
		}
		dir, err := os.MkdirTemp("", "hvconfig-oracle-")
		if err != nil {
			oracleErr = err
			return
		}
		bin := filepath.Join(dir, "oracle")
		args := append([]string{"-O1", "-o", bin, filepath.Join(corpusDir, "oracle", "oracle.c")}, flags...)
		if out, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
			oracleErr = fmt.Errorf("cc %s: %v\n%s\n%s", strings.Join(args, " "), err, out, install)
			return
		}
		oraclePath = bin
	})
	if oracleErr != nil {
		t.Fatal(oracleErr)
	}
	return oraclePath
}

// oracleRead runs the oracle on path: accepted reports whether libxlutil
// accepts the file; values holds, for each key, Xen's value in the
// oracle's encoding ("-" when unset).
func oracleRead(t *testing.T, path string, keys []string) (accepted bool, values map[string]string, report string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, buildOracle(t), append([]string{path}, keys...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		src, _ := os.ReadFile(path)
		t.Fatalf("oracle %s: no answer in 10s (libxlutil hangs?) on %q", path, src)
	case err == nil:
	case errors.As(err, &ee) && ee.ExitCode() == 1:
		return false, nil, stderr.String()
	default:
		t.Fatalf("oracle %s: %v\n%s", path, err, stderr.String())
	}
	values = make(map[string]string, len(keys))
	for _, line := range strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n") {
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("oracle output line %q", line)
		}
		values[k] = v
	}
	return true, values, stderr.String()
}

// encode renders a value as the oracle prints it: numbers are strings to
// libxlutil.
func encode(v Value) string {
	if v.Kind != KindList {
		return "s" + hex.EncodeToString([]byte(v.String))
	}
	items := make([]string, len(v.List))
	for i, it := range v.List {
		items[i] = encode(it)
	}
	return "[" + strings.Join(items, ",") + "]"
}

func ourValues(f *File, keys []string) map[string]string {
	m := make(map[string]string, len(keys))
	for _, k := range keys {
		if v, ok := f.Get(k); ok {
			m[k] = encode(v)
		} else {
			m[k] = "-"
		}
	}
	return m
}

func corpus(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(corpusDir, "*.cfg"))
	if err != nil || len(files) < 20 {
		t.Fatalf("corpus %s: %d files, %v", corpusDir, len(files), err)
	}
	return files
}

// TestAgainstLibxlutil compares this parser with Xen's own on every corpus
// file: the same files are accepted, and accepted files give the same
// value for every key. Then it checks Ensure's output with Xen's parser:
// every key reads as before except the action keys, which read as set.
// Reference: design.md, "Xen facts the code must get exactly right":
// "whatever Xen rejects, we reject too, without touching the file", and
// "Tests and fakes": "Config tests compare our rewriter against it."
func TestAgainstLibxlutil(t *testing.T) {
	for _, path := range corpus(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, perr := Parse(path, src)
			keys := []string{"name", "on_poweroff", "on_crash", "on_shutdown", "absent_key"}
			if perr == nil {
				for _, k := range f.Keys() {
					if !slices.Contains(keys, k) {
						keys = append(keys, k)
					}
				}
			}
			xenOK, xenValues, report := oracleRead(t, path, keys)
			wantReject := strings.HasPrefix(filepath.Base(path), "reject-")
			if xenOK == wantReject {
				t.Fatalf("corpus file misnamed: libxlutil accepted=%v (%s)", xenOK, report)
			}
			if (perr == nil) != xenOK {
				t.Fatalf("libxlutil accepted=%v (%s) but Parse error = %v", xenOK, strings.TrimSpace(report), perr)
			}
			if !xenOK {
				var se *SyntaxError
				if !errors.As(perr, &se) || se.Line < 1 || se.Col < 1 {
					t.Errorf("rejection %v has no line and column", perr)
				}
				if _, _, err := Ensure(path, src, defaultActions); err == nil {
					t.Errorf("Ensure accepted a file Xen rejects")
				}
				return
			}
			if diff := cmp.Diff(xenValues, ourValues(f, keys)); diff != "" {
				t.Errorf("values differ from libxlutil's (-xen +ours):\n%s", diff)
			}

			out, _, err := Ensure(path, src, defaultActions)
			if err != nil {
				t.Fatalf("Ensure: %v", err)
			}
			tmp := filepath.Join(t.TempDir(), "out.cfg")
			if err := os.WriteFile(tmp, out, 0o644); err != nil {
				t.Fatal(err)
			}
			ok, after, report := oracleRead(t, tmp, keys)
			if !ok {
				t.Fatalf("libxlutil rejects Ensure's output: %s\n%s", report, out)
			}
			want := make(map[string]string, len(xenValues))
			for k, v := range xenValues {
				want[k] = v
			}
			for _, a := range defaultActions {
				want[a.Key] = encode(Value{Kind: KindString, String: a.Value})
			}
			if diff := cmp.Diff(want, after); diff != "" {
				t.Errorf("after Ensure, libxlutil reads (-want +got):\n%s\n%s", diff, out)
			}
		})
	}
}
