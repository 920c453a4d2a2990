package data

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// cifarPixel is the known pixel value of channel c, position p (y*32+x) of record r of file f.
func cifarPixel(f, r, c, p int) byte { return byte(f*71 + r*31 + c*97 + p*13) }

// cifarFile returns a CIFAR binary file of records whose label bytes are labels[r] and whose pixels
// are cifarPixel(f, r, ., .).
func cifarFile(f int, labels [][]byte) []byte {
	var out []byte
	for r, lb := range labels {
		out = append(out, lb...)
		for c := range 3 {
			for p := range 1024 {
				out = append(out, cifarPixel(f, r, c, p))
			}
		}
	}
	return out
}

// cifar10Dir writes a CIFAR-10 distribution with 2 records per training batch (labels 2f, 2f+1)
// and 3 test records (labels 9, 0, 5).
func cifar10Dir(t *testing.T, dir string, names bool) {
	for f := 1; f <= 5; f++ {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("data_batch_%d.bin", f)), cifarFile(f, [][]byte{{byte(2*f - 2)}, {byte(2*f - 1)}}))
	}
	writeFile(t, filepath.Join(dir, "test_batch.bin"), cifarFile(0, [][]byte{{9}, {0}, {5}}))
	if names {
		writeFile(t, filepath.Join(dir, "batches.meta.txt"),
			[]byte("airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n"))
	}
}

// checkCIFARExample compares example i with the normalised known pixels of file f, record r.
func checkCIFARExample(t *testing.T, d Dataset, i, f, r, label int, norm Normalization) {
	t.Helper()
	ex, err := d.Load(i, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Label != label {
		t.Errorf("example %d: label %d, want %d", i, ex.Label, label)
	}
	if len(ex.Image) != cifarPixels {
		t.Fatalf("example %d: %d values, want %d", i, len(ex.Image), cifarPixels)
	}
	for c := range 3 {
		for p := range 1024 {
			want := normalised(cifarPixel(f, r, c, p), c, norm)
			if got := float64(ex.Image[c*1024+p]); got-want > formulaTol || want-got > formulaTol {
				t.Fatalf("example %d (c=%d, p=%d) = %g, want %g", i, c, p, got, want)
			}
		}
	}
}

func TestCIFAR10(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sub    string // folder the files are in, below the folder passed to CIFAR
		names  bool
		wantN0 string
	}{
		{"plain", "", true, "airplane"},
		{"archive folder", "cifar-10-batches-bin", true, "airplane"},
		{"no names", "", false, "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cifar10Dir(t, filepath.Join(dir, tc.sub), tc.names)
			train, err := CIFAR(dir, true, imageNet())
			if err != nil {
				t.Fatal(err)
			}
			if train.Len() != 10 || train.NumClasses() != 10 || len(train.ClassNames()) != 10 || train.ClassNames()[0] != tc.wantN0 {
				t.Fatalf("Len %d, NumClasses %d, names %q", train.Len(), train.NumClasses(), train.ClassNames())
			}
			if h, w := train.Size(); h != 32 || w != 32 {
				t.Errorf("Size = %d, %d", h, w)
			}
			for i := range 10 { // file f = i/2+1, record r = i%2, label i
				checkCIFARExample(t, train, i, i/2+1, i%2, i, imageNet())
			}
			test, err := CIFAR(dir, false, identity)
			if err != nil {
				t.Fatal(err)
			}
			for i, label := range []int{9, 0, 5} {
				checkCIFARExample(t, test, i, 0, i, label, identity)
			}
		})
	}
}

func TestCIFAR100(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "train.bin"), cifarFile(1, [][]byte{{19, 99}, {0, 42}}))
	writeFile(t, filepath.Join(dir, "test.bin"), cifarFile(2, [][]byte{{3, 7}}))
	train, err := CIFAR(dir, true, imageNet())
	if err != nil {
		t.Fatal(err)
	}
	if train.Len() != 2 || train.NumClasses() != 100 || train.ClassNames()[99] != "99" {
		t.Fatalf("Len %d, NumClasses %d, names %q...", train.Len(), train.NumClasses(), train.ClassNames()[:3])
	}
	checkCIFARExample(t, train, 0, 1, 0, 99, imageNet()) // the fine label, not the coarse one
	checkCIFARExample(t, train, 1, 1, 1, 42, imageNet())

	var names []string
	for i := range 100 {
		names = append(names, fmt.Sprintf("class_%d", i))
	}
	writeFile(t, filepath.Join(dir, "fine_label_names.txt"), []byte(strings.Join(names, "\n")+"\n"))
	test, err := CIFAR(dir, false, imageNet())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(test.ClassNames(), names) {
		t.Errorf("names = %q..., want %q...", test.ClassNames()[:2], names[:2])
	}
	checkCIFARExample(t, test, 0, 2, 0, 7, imageNet())
}

// padCropFlipRef is the definition of the small-image augmentation for one (dy, dx, flip):
// output (c, y, x) = src(c, y+dy, x'+dx) with x' = w-1-x when flipped, fill outside.
func padCropFlipRef(src []float32, c, h, w, dy, dx int, flip bool, fill []float32) []float32 {
	out := make([]float32, c*h*w)
	for ch := range c {
		for y := range h {
			for x := range w {
				xx := x
				if flip {
					xx = w - 1 - x
				}
				sy, sx := y+dy, xx+dx
				v := fill[ch]
				if sy >= 0 && sy < h && sx >= 0 && sx < w {
					v = src[ch*h*w+sy*w+sx]
				}
				out[ch*h*w+y*w+x] = v
			}
		}
	}
	return out
}

// TestCIFARAugment checks every augmented image against padCropFlipRef at the offsets and flip
// the documented draw order gives (dy, dx in [-4, 4], then the flip), padded with the normalised
// black; the label must be kept, and flips and most offsets must occur.
func TestCIFARAugment(t *testing.T) {
	dir := t.TempDir()
	cifar10Dir(t, dir, false)
	d, err := CIFAR(dir, false, imageNet())
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := d.Load(2, false, nil)
	black := []float32{float32(normalised(0, 0, imageNet())), float32(normalised(0, 1, imageNet())), float32(normalised(0, 2, imageNet()))}
	offsets, flips := map[[2]int]bool{}, map[bool]bool{}
	for k := range uint64(300) {
		ex, err := d.Load(2, true, seeded(k))
		if err != nil {
			t.Fatal(err)
		}
		if ex.Label != 5 {
			t.Fatalf("augmented label %d, want 5", ex.Label)
		}
		r := seeded(k)
		dy, dx := r.IntN(9)-4, r.IntN(9)-4
		flip := r.IntN(2) == 1
		if diff := maxDiff(ex.Image, padCropFlipRef(plain.Image, 3, 32, 32, dy, dx, flip, black)); diff > formulaTol {
			t.Fatalf("seed %d: differs from the crop at (%d, %d), flip %v, by %g", k, dy, dx, flip, diff)
		}
		offsets[[2]int{dy, dx}], flips[flip] = true, true
	}
	if len(flips) != 2 || len(offsets) < 60 {
		t.Errorf("%d flip states and %d of 81 offsets in 300 draws", len(flips), len(offsets))
	}
}

func TestCIFARErrors(t *testing.T) {
	valid := cifarFile(1, [][]byte{{1}})
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, dir string)
		train  bool
		file   string // the file the error must name, relative to dir ("" = dir itself)
		target error
		subs   []string
	}{
		{"no files", func(t *testing.T, dir string) {}, true, "", ErrDataset, []string{"no CIFAR"}},
		{"truncated", func(t *testing.T, dir string) {
			cifar10Dir(t, dir, false)
			writeFile(t, filepath.Join(dir, "data_batch_3.bin"), valid[:len(valid)-1])
		}, true, "data_batch_3.bin", ErrDataset, []string{"3072 bytes", "truncated"}},
		{"empty", func(t *testing.T, dir string) {
			cifar10Dir(t, dir, false)
			writeFile(t, filepath.Join(dir, "test_batch.bin"), nil)
		}, false, "test_batch.bin", ErrDataset, []string{"0 bytes"}},
		{"CIFAR-100 record size", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "train.bin"), valid) // 3073 bytes: a CIFAR-10 record
		}, true, "train.bin", ErrDataset, []string{"3074-byte"}},
		{"missing batch", func(t *testing.T, dir string) {
			cifar10Dir(t, dir, false)
			os.Remove(filepath.Join(dir, "data_batch_4.bin"))
		}, true, "data_batch_4.bin", os.ErrNotExist, nil},
		{"label 10", func(t *testing.T, dir string) {
			cifar10Dir(t, dir, false)
			writeFile(t, filepath.Join(dir, "test_batch.bin"), cifarFile(0, [][]byte{{3}, {10}}))
		}, false, "test_batch.bin", ErrDataset, []string{"record 1", "label 10"}},
		{"fine label 100", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "test.bin"), cifarFile(0, [][]byte{{3, 100}}))
		}, false, "test.bin", ErrDataset, []string{"record 0", "label 100"}},
		{"coarse label 20", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "test.bin"), cifarFile(0, [][]byte{{20, 1}}))
		}, false, "test.bin", ErrDataset, []string{"coarse label 20"}},
		{"names count", func(t *testing.T, dir string) {
			cifar10Dir(t, dir, false)
			writeFile(t, filepath.Join(dir, "batches.meta.txt"), []byte("a\nb\n"))
		}, false, "batches.meta.txt", ErrDataset, []string{"2 class names, want 10"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			_, err := CIFAR(dir, tc.train, identity)
			wantErr(t, err, tc.target, append(tc.subs, filepath.Join(dir, tc.file))...)
		})
	}
	t.Run("bad std", func(t *testing.T) {
		_, err := CIFAR(t.TempDir(), true, Normalization{Std: [3]float32{1, -1, 1}})
		wantErr(t, err, nil, "std")
	})
}
