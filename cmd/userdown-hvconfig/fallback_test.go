package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ganeti-userdown/internal/trust/trusttest"
)

// distributionXL is Debian's versioned xl (xen-utils-4.17), the last
// toolstack the shim falls back to.
const distributionXL = "/usr/lib/xen-4.17/bin/xl"

// xlReached is what the real xl prints on a node without a running Xen
// hypervisor: proof that the shim reached it.
const xlReached = "cannot init xl context"

func needDistributionXL(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(distributionXL); err != nil {
		t.Fatalf("%s: %v (apt-get install -y xen-utils-4.17)", distributionXL, err)
	}
}

// TestShimFallsBackToAWorkingToolstack checks that a [xen] command that
// cannot be run (removed by an upgrade, the shim itself, not executable,
// or refused because others could replace it) does not stop xl calls: the
// shim runs the diverted toolstack or, without one (as here), the
// distribution's, and says so loudly.
// Reference: issue 14, point 1; doc/design.md, "Shim".
func TestShimFallsBackToAWorkingToolstack(t *testing.T) {
	needDistributionXL(t)
	r := newRig(t)
	xl := r.linkAs(t, "xl")
	notExec := r.file(t, "notexec", "#!/bin/sh\n")
	open := trusttest.Dir(t, filepath.Join(r.dir, "open"), 0o777, 0)
	replaceable := trusttest.File(t, filepath.Join(open, "xl"), "#!/bin/sh\necho evil\n", 0o755, 0)
	for _, tc := range []struct{ name, command, why string }{
		{"removed by an upgrade", "/usr/lib/xen-4.11/bin/xl", "/usr/lib/xen-4.11/bin/xl"},
		{"the shim itself", xl, "shim itself"},
		{"not executable", notExec, "not an executable file"},
		{"replaceable by others", replaceable, "not writable by group or others"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.writeConfig(t, fmt.Sprintf("[xen]\ncommand = %q\n", tc.command))
			res := r.run(t, xl, "", nil, "list")
			if !strings.Contains(res.stderr, xlReached) {
				t.Errorf("exit %d, stderr %q: the distribution's xl was not run", res.code, res.stderr)
			}
			if strings.Contains(res.stderr, "evil") {
				t.Errorf("the replaceable command ran")
			}
			if !strings.Contains(res.stderr, "level=ERROR") || !strings.Contains(res.stderr, tc.why) || !strings.Contains(res.stderr, distributionXL) {
				t.Errorf("stderr %q: want an error saying %q and naming %s", res.stderr, tc.why, distributionXL)
			}
		})
	}
}

// TestShimRefusedConfigStillRuns checks that a configuration root must not
// trust is not used, and that the call still reaches a toolstack.
// Reference: issue 14, point 2 ("a start always goes ahead").
func TestShimRefusedConfigStillRuns(t *testing.T) {
	needDistributionXL(t)
	r := newRig(t)
	xl := r.linkAs(t, "xl")
	if err := os.Chown(r.config, trusttest.Nobody, 0); err != nil {
		t.Fatal(err)
	}
	res := r.run(t, xl, "", nil, "list")
	if !strings.Contains(res.stderr, xlReached) {
		t.Errorf("exit %d, stderr %q: the distribution's xl was not run", res.code, res.stderr)
	}
	if !strings.Contains(res.stderr, "configuration not used") || !strings.Contains(res.stderr, "uid 65534") {
		t.Errorf("stderr %q: want an error naming the refused configuration's owner", res.stderr)
	}
	if n := len(r.calls(t)); n != 0 {
		t.Errorf("the toolstack the refused configuration names ran %d times", n)
	}
}
