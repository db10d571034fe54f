package ganetifake

import (
	"fmt"
	"strings"
)

// Versions the fake can play, newest last: ClusterInfo.Version takes one
// of these ("" is 3.0). Each stands for the last point release of its
// family (2.10.8, 2.12.6, 2.16.2, 3.0.2), read from Ganeti's source at
// that tag.
var Versions = []string{"2.10", "2.12", "2.16", "3.0"}

// profile is how one Ganeti version answers, where it differs from 3.0.2.
type profile struct {
	// release is the version the Server header and /2/info report.
	release string
	// protocol is /2/info protocol_version (constants.PROTOCOL_VERSION).
	protocol int
	// masterdLocks: 2.9 to 2.11 keep locks in masterd's threads. Every
	// lock is listed, free ones with mode and owner null and pending [];
	// owners and pending are thread names "Jq<worker>/Job<id>/<summary>";
	// a job in an RPC adds a row rpc/<node>/<procedure>; a filtered lock
	// query answers HTTP 500 (lib/locking.py, lib/jqueue.py,
	// lib/http/client.py, lib/server/masterd.py at v2.10.8). From 2.12
	// only taken locks are listed, owners are job ids, and the filter
	// works (src/Ganeti/Query/Locks.hs).
	masterdLocks bool
	// adminStateSource: the instance field and the shutdown parameter
	// exist (2.11.2 and later).
	adminStateSource bool
	// xenStateIgnored: 2.9 and 2.10 count every listed domain as running,
	// whatever its state letters (lib/hypervisor/hv_xen.py at v2.10.8).
	xenStateIgnored bool
	// htmlEscape: error messages are escaped with Python 3's html.escape
	// (quotes too, 3.0); 2.x uses cgi.escape (&, <, > only).
	htmlEscape bool
	// pythonQueue: job cancel answers of masterd's Python job queue
	// (lib/jqueue.py _QueuedJob.Cancel, 2.9 to 2.11) rather than luxid's.
	pythonQueue bool
}

var profiles = map[string]profile{
	"2.10": {release: "2.10.8", protocol: 2100000, masterdLocks: true, xenStateIgnored: true, pythonQueue: true},
	"2.12": {release: "2.12.6", protocol: 2120000, adminStateSource: true},
	"2.16": {release: "2.16.2", protocol: 2160000, adminStateSource: true},
	"3.0":  {release: "3.0.2", protocol: 3000000, adminStateSource: true, htmlEscape: true},
}

// profileOf returns the profile of a ClusterInfo.Version.
func profileOf(version string) (profile, error) {
	if version == "" {
		version = "3.0"
	}
	p, ok := profiles[version]
	if !ok {
		return profile{}, fmt.Errorf("ganetifake: unknown Ganeti version %q (want one of %s)", version, strings.Join(Versions, ", "))
	}
	return p, nil
}

// tinySummary abbreviates an opcode id as Ganeti's OpCode.TinySummary
// does (lib/opcodes_base.py SUMMARY_PREFIX): OP_INSTANCE_SHUTDOWN is
// I_SHUTDOWN.
func tinySummary(opID string) string {
	text := strings.TrimPrefix(opID, "OP_")
	for prefix, short := range map[string]string{"CLUSTER_": "C_", "GROUP_": "G_", "NODE_": "N_", "INSTANCE_": "I_"} {
		if rest, ok := strings.CutPrefix(text, prefix); ok {
			return short + rest
		}
	}
	return text
}

// threadName is the name of the masterd job queue worker running job j
// in 2.9 to 2.11: worker "Jq<n>" of the 25, task "Job<id>/<summary>".
func threadName(j Job) string {
	return fmt.Sprintf("Jq%d/Job%d/%s", j.ID%25+1, j.ID, tinySummary(j.OpID))
}
