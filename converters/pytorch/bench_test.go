package pytorch

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkLoad measures reading each fixture from memory.
func BenchmarkLoad(b *testing.B) {
	for _, fx := range fixtures {
		data, err := os.ReadFile(filepath.Join("testdata", fx.file))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fx.file, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := load(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
