package hvconfig

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkEnsure measures Ensure on typical Ganeti configs: a 2.10 PVM
// config that needs rewriting, and a 3.0 one that is already right after
// a first rewrite (the common case at every start).
func BenchmarkEnsure(b *testing.B) {
	for _, name := range []string{"ganeti-2.9-pvm.cfg", "ganeti-2.10-hvm.cfg"} {
		src, err := os.ReadFile(filepath.Join(corpusDir, name))
		if err != nil {
			b.Fatal(err)
		}
		done, _, err := Ensure(name, src, defaultActions)
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range []struct {
			label string
			src   []byte
		}{{"rewrite", src}, {"unchanged", done}} {
			b.Run(name+"/"+c.label, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(c.src)))
				for b.Loop() {
					if _, _, err := Ensure(name, c.src, defaultActions); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkParse measures Parse alone on a typical Ganeti config.
func BenchmarkParse(b *testing.B) {
	src, err := os.ReadFile(filepath.Join(corpusDir, "ganeti-2.9-pvm.cfg"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if _, err := Parse("bench", src); err != nil {
			b.Fatal(err)
		}
	}
}
