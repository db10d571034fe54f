package main

import (
	"os/exec"
	"testing"
)

func TestFromDescribe(t *testing.T) {
	tests := []struct {
		describe string
		count    int
		want     string
	}{
		{"v1.2.3", 40, "1.2.3"},
		{"1.2.3", 40, "1.2.3"},
		{"v1.2.3-4-gabc1234", 40, "1.2.3+git4.abc1234"},
		{"v1.2.3-4-gabc1234-dirty", 40, "1.2.3+git4.abc1234.dirty"},
		{"v1.2.3-dirty", 40, "1.2.3+dirty"},
		{"v2.0-rc1", 40, "2.0~rc1"},
		{"v2.0-rc1-3-g0123abc", 40, "2.0~rc1+git3.0123abc"},
		{"27acdd4", 3, "0~git3.27acdd4"},
		{"27acdd4-dirty", 3, "0~git3.27acdd4+dirty"},
		{"v1_2", 1, "1.2"},
	}
	for _, tt := range tests {
		got, err := FromDescribe(tt.describe, tt.count)
		if err != nil {
			t.Errorf("FromDescribe(%q, %d): %v", tt.describe, tt.count, err)
			continue
		}
		if got != tt.want {
			t.Errorf("FromDescribe(%q, %d) = %q, want %q", tt.describe, tt.count, got, tt.want)
		}
	}
}

func TestFromDescribeRejects(t *testing.T) {
	for _, d := range []string{"", "release-one", "vX.1", "27acdd4:"} {
		if v, err := FromDescribe(d, 3); err == nil {
			t.Errorf("FromDescribe(%q) = %q, want an error", d, v)
		}
	}
	if v, err := FromDescribe("27acdd4", -1); err == nil {
		t.Errorf("untagged describe without a count = %q, want an error", v)
	}
}

// TestVersionsSortAsCommits checks with dpkg itself that the versions of
// successive builds compare the way the commits were made.
func TestVersionsSortAsCommits(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Fatalf("dpkg not found (apt-get install dpkg): %v", err)
	}
	order := [][2]any{
		{"abc1234", 3}, {"abc1234-dirty", 3}, {"def5678", 4},
		{"v0.9-rc1", 10}, {"v0.9-rc1-2-g1234567", 12}, {"v0.9", 13},
		{"v0.9-1-g89abcde", 14}, {"v0.9-1-g89abcde-dirty", 14}, {"v1.0", 20},
	}
	var prev string
	for _, o := range order {
		v, err := FromDescribe(o[0].(string), o[1].(int))
		if err != nil {
			t.Fatal(err)
		}
		if prev != "" {
			if err := exec.Command("dpkg", "--compare-versions", prev, "lt", v).Run(); err != nil {
				t.Errorf("dpkg --compare-versions %s lt %s: false", prev, v)
			}
		}
		prev = v
	}
}
