package kickstart

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkLint1000 lints 1,000 kickstarts per iteration (our corpus
// repeated, one release each, rotating), the server's worst case when a
// whole fleet re-renders. Target: well under one second per op.
func BenchmarkLint1000(b *testing.B) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "ks", "*.ks"))
	if len(paths) == 0 {
		b.Fatal("no testdata kickstarts")
	}
	var srcs [][]byte
	for _, p := range paths {
		s, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		srcs = append(srcs, s)
	}
	vs := Versions()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := 0; k < 1000; k++ {
			Lint(srcs[k%len(srcs)], "bench.ks", vs[k%len(vs)], LintOptions{})
		}
	}
}
