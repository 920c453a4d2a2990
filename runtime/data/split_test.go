package data

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// indexDS is a Dataset whose example i is a 1 x 1 image of value i with label i mod classes.
type indexDS struct{ n, classes int }

func (d indexDS) Len() int             { return d.n }
func (d indexDS) NumClasses() int      { return d.classes }
func (d indexDS) ClassNames() []string { return numberedNames(d.classes) }
func (d indexDS) Size() (h, w int)     { return 1, 1 }
func (d indexDS) Load(i int, augment bool, rng *rand.Rand) (Example, error) {
	if err := checkIndex(i, d.n); err != nil {
		return Example{}, err
	}
	v := float32(i)
	return Example{Image: []float32{v, v, v}, Label: i % d.classes}, nil
}

// indicesOf returns the parent indices of s's examples, read through Load.
func indicesOf(t *testing.T, s Dataset) []int {
	var out []int
	for i := range s.Len() {
		ex, err := s.Load(i, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, int(ex.Image[0]))
	}
	return out
}

func TestSplit(t *testing.T) {
	d := indexDS{n: 50, classes: 5}
	for _, tc := range []struct {
		frac    float64
		wantVal int
	}{{0.2, 10}, {0.5, 25}, {0.01, 1}, {0, 0}, {1, 50}, {-1, 0}, {1.5, 50}, {math.NaN(), 0}, {0.123, 6}} {
		train, val := Split(d, tc.frac, 7)
		if val.Len() != tc.wantVal || train.Len() != 50-tc.wantVal {
			t.Errorf("frac %g: train %d, val %d, want %d, %d", tc.frac, train.Len(), val.Len(), 50-tc.wantVal, tc.wantVal)
			continue
		}
		ti, vi := indicesOf(t, train), indicesOf(t, val)
		all := append(slices.Clone(ti), vi...)
		slices.Sort(all)
		for i, v := range all { // disjoint and covering: the union is exactly 0..49
			if v != i {
				t.Fatalf("frac %g: train and val are not a partition: %v", tc.frac, all)
			}
		}
		if !slices.IsSorted(ti) || !slices.IsSorted(vi) {
			t.Errorf("frac %g: subsets not in dataset order", tc.frac)
		}
		if train.NumClasses() != 5 || len(val.ClassNames()) != 5 {
			t.Errorf("frac %g: classes not kept", tc.frac)
		}
		if _, err := val.Load(val.Len(), false, nil); err == nil {
			t.Errorf("frac %g: Load past the end succeeded", tc.frac)
		}
	}
	// Deterministic by seed; another seed gives another split.
	_, v1 := Split(d, 0.3, 1)
	_, v2 := Split(d, 0.3, 1)
	_, v3 := Split(d, 0.3, 2)
	if !slices.Equal(indicesOf(t, v1), indicesOf(t, v2)) {
		t.Error("same seed, different splits")
	}
	if slices.Equal(indicesOf(t, v1), indicesOf(t, v3)) {
		t.Error("seeds 1 and 2 give the same split")
	}
}
