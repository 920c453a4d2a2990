package data

import (
	"errors"
	"math"
	"testing"
)

// FuzzCIFAR parses arbitrary bytes as a CIFAR-10 and a CIFAR-100 file. Nothing may panic; a
// rejected file wraps ErrDataset; an accepted one is a whole number of records whose examples load
// (plain and augmented) with labels in range and finite values.
func FuzzCIFAR(f *testing.F) {
	f.Add(cifarFile(0, [][]byte{{3}}))
	f.Add(cifarFile(1, [][]byte{{9}, {0}}))
	f.Add(cifarFile(0, [][]byte{{19, 99}}))
	f.Add(cifarFile(0, [][]byte{{20, 3}}))
	f.Add(cifarFile(0, [][]byte{{12}})[:3000])
	f.Add([]byte{})
	table := byteTable(imageNet())
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, format := range cifarFormats() {
			labels, records, err := parseCIFAR(raw, format)
			if err != nil {
				if !errors.Is(err, ErrDataset) {
					t.Fatalf("%s: error %q does not wrap ErrDataset", format.name, err)
				}
				continue
			}
			if len(labels) == 0 || len(labels) != len(records) || len(labels)*(format.labelBytes+cifarPixels) != len(raw) {
				t.Fatalf("%s: %d labels, %d records from %d bytes", format.name, len(labels), len(records), len(raw))
			}
			d := &cifar{records: records, labels: labels, names: numberedNames(format.classes), table: table}
			for i := range min(d.Len(), 4) {
				for _, augment := range []bool{false, true} {
					ex, err := d.Load(i, augment, seeded(uint64(i)))
					if err != nil {
						t.Fatal(err)
					}
					if ex.Label < 0 || ex.Label >= format.classes || len(ex.Image) != cifarPixels {
						t.Fatalf("%s: example %d: label %d, %d values", format.name, i, ex.Label, len(ex.Image))
					}
					for _, v := range ex.Image {
						if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) || math.Abs(float64(v)) > 3 {
							t.Fatalf("%s: example %d: value %g", format.name, i, v)
						}
					}
				}
			}
		}
	})
}
