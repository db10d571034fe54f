package ganeti

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is a Ganeti release, e.g. 2.10.8.
type Version struct {
	Major, Minor, Patch int
}

// String returns the version as Ganeti writes it.
func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// AtLeast reports whether v is o or later.
func (v Version) AtLeast(o Version) bool {
	if v.Major != o.Major {
		return v.Major > o.Major
	}
	if v.Minor != o.Minor {
		return v.Minor > o.Minor
	}
	return v.Patch >= o.Patch
}

// ParseVersion reads a Ganeti release version: "2.10.8", "3.0.2", with an
// optional suffix ("2.16.0~rc1", "2.16.0rc1", "3.0.2-1"), or two numbers
// ("2.10", meaning 2.10.0).
func ParseVersion(s string) (Version, error) {
	parts := strings.SplitN(s, ".", 3)
	if len(parts) < 2 {
		return Version{}, fmt.Errorf("ganeti version %q: want MAJOR.MINOR[.PATCH]", s)
	}
	var n [3]int
	for i, p := range parts {
		if i == len(parts)-1 && i == 2 {
			// The patch level may carry a suffix: keep its leading digits.
			end := strings.IndexFunc(p, func(r rune) bool { return r < '0' || r > '9' })
			if end == 0 {
				return Version{}, fmt.Errorf("ganeti version %q: bad patch level", s)
			}
			if end > 0 {
				p = p[:end]
			}
		}
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 || p == "" || p[0] == '+' {
			return Version{}, fmt.Errorf("ganeti version %q: bad number %q", s, p)
		}
		n[i] = v
	}
	return Version{n[0], n[1], n[2]}, nil
}

// serverVersion reads the release from the Server header every answer of
// Ganeti's HTTP server carries ("Ganeti 2.10.8": lib/http/server.py
// HttpResponder._Finalize with lib/http/__init__.py HTTP_GANETI_VERSION,
// the same from 2.9 to 3.0). ok is false for any other server text (a
// proxy in between, say).
func serverVersion(header string) (v Version, ok bool) {
	rest, found := strings.CutPrefix(header, "Ganeti ")
	if !found {
		return Version{}, false
	}
	v, err := ParseVersion(strings.TrimSpace(rest))
	return v, err == nil
}

// The first releases with a behaviour ganeti-userdown depends on. See
// doc/ganeti-versions.md for the sources.
var (
	// versionAdminStateSource is the first release whose instance
	// shutdown takes admin_state_source (and whose instance query knows
	// the field): src/Ganeti/OpCodes.hs OpInstanceShutdown gains
	// pAdminStateSource at v2.11.2; before, RAPI answers 400 "Invalid body
	// parameters" (lib/rapi/baserlib.py FillOpcode).
	versionAdminStateSource = Version{2, 11, 2}
	// versionLockFilter is the first release that filters lock queries:
	// 2.9 to 2.11 answer a lock query with a filter with HTTP 500 "Lock
	// queries can't be filtered" (lib/server/masterd.py
	// ClientOps.handle_request); from 2.12 the lock daemon's query filters
	// (src/Ganeti/Query/Query.hs).
	versionLockFilter = Version{2, 12, 0}
)
