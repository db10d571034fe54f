package state

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"ganeti-userdown/internal/trust/trusttest"
)

// BenchmarkIntents reads 50 intents beside a 512 MiB (sparse) intent
// file: B/op is what every run pays, which must stay far below the
// file's size (issue 14 #6: it was 535 MB).
func BenchmarkIntents(b *testing.B) {
	dir := b.TempDir()
	s := Open(dir)
	for i := range 50 {
		if err := s.RecordIntent(hookIntent(fmt.Sprintf("web%d.example.com", i), "stop", t0.Add(time.Hour))); err != nil {
			b.Fatal(err)
		}
	}
	trusttest.Sparse(b, filepath.Join(dir, "intents", "instance@big@stop.json"), 512<<20)
	b.ReportAllocs()
	for b.Loop() {
		live, problems := s.Intents(t0)
		if len(live) != 50 || len(problems) != 1 {
			b.Fatalf("%d live, problems %v", len(live), problems)
		}
	}
}
