package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/testbin"
)

// TestReadConfig reads what create needs from configs Ganeti writes and
// from the hard cases of the xl.cfg grammar (testdata/xencfg).
func TestReadConfig(t *testing.T) {
	dir := filepath.Join(testbin.ModuleRoot(t), "testdata", "xencfg")
	for _, tc := range []struct {
		file string
		want map[string]string // the keys create reads
	}{
		{"ganeti-2.9-pvm.cfg", map[string]string{"name": "web1.example.com", "memory": "1024", "vcpus": "2", "on_poweroff": "destroy", "on_reboot": "restart", "on_crash": "restart"}},
		{"ganeti-3.0-pvm.cfg", map[string]string{"name": "db1.example.com", "memory": "256", "vcpus": "1", "on_poweroff": "preserve", "on_reboot": "restart", "on_crash": "restart"}},
		{"hard-multiline-lists.cfg", map[string]string{"name": "lists.example.com", "on_crash": "restart"}},
		{"hard-several-per-line.cfg", map[string]string{"name": "semi.example.com", "memory": "128", "vcpus": "1", "on_poweroff": "destroy", "on_reboot": "restart", "on_crash": "restart"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join(dir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			vals, err := readConfig(tc.file, src)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, k := range []string{"name", "memory", "vcpus", "uuid", "on_poweroff", "on_reboot", "on_watchdog", "on_crash", "on_soft_reset"} {
				if v, ok := vals[k]; ok {
					got[k] = v
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	for _, bad := range []string{"name = 'x\nmemory = 1\n", "memory = \n", "= 3\n", "name 'x'\n", "disk = [ 'a'\n", "name = 'x' y\n"} {
		if vals, err := readConfig("bad.cfg", []byte(bad)); err == nil || !strings.Contains(err.Error(), "bad.cfg:") {
			t.Errorf("%q: %v, %v; want an error naming the file", bad, vals, err)
		}
	}
}
