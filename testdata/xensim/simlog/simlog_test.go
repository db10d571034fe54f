package simlog

import (
	"testing"
)

func TestParseMergesStartAndEnd(t *testing.T) {
	log := `{"pid":7,"time":"2026-01-01T00:00:00Z","flavour":"xl","argv":["shutdown","-w","web1"]}
{"pid":8,"time":"2026-01-01T00:00:01Z","flavour":"xl","argv":["destroy","3"]}
{"pid":8,"end":"2026-01-01T00:00:02Z","exit":0,"destroyed":{"name":"web1","domid":3,"uuid":"u","state":"-b----"}}

{"pid":8,"time":"2026-01-01T00:00:03Z","flavour":"xl","argv":["destroy","4"]}
{"pid":8,"end":"2026-01-01T00:00:04Z","exit":0,"destroyed":{"name":"web2","domid":4,"uuid":"v","state":"---sc-"}}
`
	es, err := Parse([]byte(log))
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 3 || es[0].Finished || !es[1].Finished || es[1].Destroyed.ID != 3 || es[2].Destroyed.ID != 4 {
		t.Fatalf("entries: %+v", es)
	}
	if got := es[0].String(); got != "xl shutdown -w web1 (unfinished)" {
		t.Errorf("String() = %q", got)
	}
	live, err := LiveDestroys(es)
	if err != nil || len(live) != 1 || live[0].Destroyed.Name != "web1" {
		t.Errorf("LiveDestroys = %+v, %v", live, err)
	}
	if n := len(Calls(es, "destroy")); n != 2 {
		t.Errorf("Calls(destroy) = %d", n)
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		"not json\n",
		`{"pid":9,"end":"2026-01-01T00:00:02Z","exit":0}` + "\n",
	} {
		if es, err := Parse([]byte(in)); err == nil {
			t.Errorf("%q: parsed as %+v", in, es)
		}
	}
	bad := `{"pid":1,"time":"2026-01-01T00:00:00Z","flavour":"xl","argv":["destroy","3"]}
{"pid":1,"end":"2026-01-01T00:00:02Z","exit":0,"destroyed":{"name":"x","domid":3,"state":"--"}}
`
	es, err := Parse([]byte(bad))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LiveDestroys(es); err == nil {
		t.Errorf("unparsable destroyed state accepted")
	}
}

// TestStoppedForGood: the simulator's own judgement of which destroyed
// domains had stopped for good, on the states of the design's letters
// table.
// Reference: doc/design.md, "Decisions", safety rule 1.
func TestStoppedForGood(t *testing.T) {
	for _, tc := range []struct {
		flavour, letters string
		want             bool
	}{
		{"xl", "r-----", false}, {"xl", "-b----", false}, {"xl", "--p---", false}, {"xl", "------", false},
		{"xl", "---s--", true}, {"xl", "---sc-", true}, {"xl", "--psc-", true}, {"xl", "---sw-", true},
		{"xl", "---sr-", false}, {"xl", "---ss-", false}, {"xl", "---sS-", false}, {"xl", "---s?-", false},
		{"xl", "---s-d", false}, {"xl", "-----d", false},
		{"xm", "---s--", true}, {"xm", "----c-", true}, {"xm", "-b----", false}, {"xm", "----cd", false},
	} {
		got, err := StoppedForGood(tc.flavour, tc.letters)
		if err != nil || got != tc.want {
			t.Errorf("StoppedForGood(%s, %q) = %v, %v; want %v", tc.flavour, tc.letters, got, err, tc.want)
		}
	}
	if _, err := StoppedForGood("kvm", "---s--"); err == nil {
		t.Error("unknown flavour accepted")
	}
}
