package data

import (
	"math"
	"slices"
	"testing"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// TestShapes checks the synthetic dataset: balanced labels, distinct images, determinism by seed,
// and size clamping.
func TestShapes(t *testing.T) {
	d := Shapes(40, 16, 3)
	if d.Len() != 40 || d.NumClasses() != 4 || len(d.ClassNames()) != 4 {
		t.Fatalf("Len %d, NumClasses %d, names %q", d.Len(), d.NumClasses(), d.ClassNames())
	}
	counts := make([]int, 4)
	var imgs [][]float32
	for i := range d.Len() {
		ex, err := d.Load(i, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		counts[ex.Label]++
		if len(ex.Image) != 3*16*16 {
			t.Fatalf("%d values", len(ex.Image))
		}
		for j, prev := range imgs {
			if slices.Equal(prev, ex.Image) {
				t.Errorf("images %d and %d are equal", j, i)
			}
		}
		imgs = append(imgs, ex.Image)
		again, _ := Shapes(40, 16, 3).Load(i, false, nil)
		if !slices.Equal(again.Image, ex.Image) {
			t.Errorf("image %d differs between two datasets of the same seed", i)
		}
		other, _ := Shapes(40, 16, 4).Load(i, false, nil)
		if slices.Equal(other.Image, ex.Image) {
			t.Errorf("image %d is the same for seeds 3 and 4", i)
		}
		aug, err := d.Load(i, true, seeded(uint64(i)))
		if err != nil || aug.Label != ex.Label || len(aug.Image) != len(ex.Image) {
			t.Errorf("augmented %d: label %d, %d values, %v", i, aug.Label, len(aug.Image), err)
		}
	}
	if !slices.Equal(counts, []int{10, 10, 10, 10}) {
		t.Errorf("class counts %v, want balanced", counts)
	}
	for _, tc := range []struct{ n, size, wantN, wantSize int }{{-3, 2, 0, 8}, {5, 5000, 5, 1024}} {
		s := Shapes(tc.n, tc.size, 0)
		if h, w := s.Size(); s.Len() != tc.wantN || h != tc.wantSize || w != tc.wantSize {
			t.Errorf("Shapes(%d, %d): Len %d, Size %dx%d", tc.n, tc.size, s.Len(), h, w)
		}
	}
}

// TestShapesSeparable classifies raw renders by their most frequent saturated colour (red, green,
// blue, yellow: one channel pair at least 100 apart) and expects every image right: the class
// signal is present and unoccluded in every image, which is what makes the dataset learnable by a
// small network.
func TestShapesSeparable(t *testing.T) {
	for _, size := range []int{8, 16, 32} {
		wrong := 0
		for i := range 400 {
			px := renderShape(size, i%4, newRand(11, domainShapes, uint64(i), 0))
			plane := size * size
			var votes [4]int
			for p := range plane {
				r, g, b := int(px[p]), int(px[plane+p]), int(px[2*plane+p])
				switch {
				case r-g > 100 && r-b > 100:
					votes[0]++
				case g-r > 100 && g-b > 100:
					votes[1]++
				case b-r > 100 && b-g > 100:
					votes[2]++
				case r-b > 100 && g-b > 100:
					votes[3]++
				}
			}
			best := 0
			for c := range votes {
				if votes[c] > votes[best] {
					best = c
				}
			}
			if best != i%4 || votes[best] == 0 {
				wrong++
			}
		}
		if wrong > 0 {
			t.Errorf("size %d: %d of 400 images misclassified by colour", size, wrong)
		}
	}
}

// TestShapesLinearlySeparable is a learnability proxy: the per-channel means of the images the
// Loader produces (normalised and augmented), i.e. global average pooling of the input, already
// separate the classes. A nearest-centroid classifier fitted on 200 training examples must
// classify 200 held-out validation examples at least 95% right; a small CNN, which sees local
// colour, has an easier task.
func TestShapesLinearlySeparable(t *testing.T) {
	const size = 16
	train, val := Split(Shapes(400, size, 21), 0.5, 1)
	features := func(d Dataset, augment bool) (xs [][3]float64, ys []int64) {
		l := mustLoader(t, d, LoaderOptions{Batch: 32, Shuffle: true, Augment: augment, Seed: 2})
		for _, b := range collect(t, l, 0) {
			x := tensor.Data[float32](b.X)
			for k := range b.Indices {
				var f [3]float64
				for c := range 3 {
					for _, v := range x[(3*k+c)*size*size : (3*k+c+1)*size*size] {
						f[c] += float64(v) / (size * size)
					}
				}
				xs, ys = append(xs, f), append(ys, b.Y[k])
			}
		}
		return xs, ys
	}
	// Centroids of the colour differences (R-G, G-B, R-B), which do not depend on brightness.
	diff := func(f [3]float64) [3]float64 { return [3]float64{f[0] - f[1], f[1] - f[2], f[0] - f[2]} }
	var centroid [4][3]float64
	var count [4]float64
	xs, ys := features(train, true)
	for i, f := range xs {
		d := diff(f)
		for j := range 3 {
			centroid[ys[i]][j] += d[j]
		}
		count[ys[i]]++
	}
	for c := range centroid {
		for j := range 3 {
			centroid[c][j] /= count[c]
		}
	}
	xs, ys = features(val, false)
	right := 0
	for i, f := range xs {
		d := diff(f)
		best, bestDist := 0, math.Inf(1)
		for c := range centroid {
			dist := 0.0
			for j := range 3 {
				dist += (d[j] - centroid[c][j]) * (d[j] - centroid[c][j])
			}
			if dist < bestDist {
				best, bestDist = c, dist
			}
		}
		if int64(best) == ys[i] {
			right++
		}
	}
	if acc := float64(right) / float64(len(xs)); acc < 0.95 {
		t.Errorf("nearest-centroid validation accuracy %.3f, want >= 0.95", acc)
	}
}
