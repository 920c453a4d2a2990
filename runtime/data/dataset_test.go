package data

import (
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// allSources builds one small dataset of every source, plus a Split subset.
func allSources(t *testing.T) map[string]Dataset {
	dir := t.TempDir()
	writeImage(t, filepath.Join(dir, "folder", "a", "1.png"), pattern8())
	writeImage(t, filepath.Join(dir, "folder", "b", "2.jpg"), rgbImage(12, 9, func(x, y int) [3]byte { return [3]byte{byte(x * 20), byte(y * 25), 7} }))
	folder, err := ImageFolder(filepath.Join(dir, "folder"), 6, imageNet())
	if err != nil {
		t.Fatal(err)
	}
	cifar10Dir(t, filepath.Join(dir, "cifar"), true)
	cifar, err := CIFAR(filepath.Join(dir, "cifar"), true, imageNet())
	if err != nil {
		t.Fatal(err)
	}
	xp, yp := filepath.Join(dir, "x.npy"), filepath.Join(dir, "y.pb")
	saveTensor(t, xp, tensor.FromSlice(tensor.Shape{3, 3, 9, 7}, ramp(3*3*9*7)))
	saveTensor(t, yp, tensor.FromSlice(tensor.Shape{3}, []int64{1, 0, 1}))
	tensors, err := TensorFiles(xp, yp)
	if err != nil {
		t.Fatal(err)
	}
	train, _ := Split(Shapes(10, 12, 1), 0.3, 1)
	return map[string]Dataset{"folder": folder, "cifar": cifar, "tensors": tensors, "shapes": Shapes(8, 12, 1), "split": train}
}

// TestDatasetContract runs the checks every Dataset must pass: consistent metadata, images of
// 3*H*W finite values, labels in range, augmentation deterministic given the generator and
// label-preserving, bad indices and a missing generator reported as errors.
func TestDatasetContract(t *testing.T) {
	for name, d := range allSources(t) {
		t.Run(name, func(t *testing.T) {
			h, w := d.Size()
			if d.Len() <= 0 || d.NumClasses() <= 0 || len(d.ClassNames()) != d.NumClasses() || h <= 0 || w <= 0 {
				t.Fatalf("Len %d, NumClasses %d, %d names, Size %dx%d", d.Len(), d.NumClasses(), len(d.ClassNames()), h, w)
			}
			for i := range d.Len() {
				plain, err := d.Load(i, false, nil)
				if err != nil {
					t.Fatal(err)
				}
				aug, err := d.Load(i, true, seeded(uint64(i)))
				if err != nil {
					t.Fatal(err)
				}
				again, _ := d.Load(i, true, seeded(uint64(i)))
				for _, ex := range []Example{plain, aug} {
					if ex.Label < 0 || ex.Label >= d.NumClasses() || len(ex.Image) != 3*h*w {
						t.Fatalf("example %d: label %d, %d values", i, ex.Label, len(ex.Image))
					}
					for _, v := range ex.Image {
						if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
							t.Fatalf("example %d: value %g", i, v)
						}
					}
				}
				if aug.Label != plain.Label || !slices.Equal(aug.Image, again.Image) {
					t.Errorf("example %d: augmentation changes the label or is not deterministic", i)
				}
			}
			for _, i := range []int{-1, d.Len()} {
				if _, err := d.Load(i, false, nil); err == nil {
					t.Errorf("Load(%d) succeeded", i)
				}
			}
			if _, err := d.Load(0, true, nil); err == nil {
				t.Error("augmenting without a generator succeeded")
			}
		})
	}
}
