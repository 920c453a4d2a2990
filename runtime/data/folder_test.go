package data

import (
	"fmt"
	"image"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dnx-ml/dnx/runtime/imageio"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// pattern8 is an 8 x 8 image whose pixels all differ: (x, y) -> (8y+x, 100+x, 200-3y).
func pattern8() *image.NRGBA {
	return rgbImage(8, 8, func(x, y int) [3]byte { return [3]byte{byte(8*y + x), byte(100 + x), byte(200 - 3*y)} })
}

// folderTree writes a small ImageFolder tree and returns its root; the comments give the expected
// classes and files.
func folderTree(t *testing.T) string {
	dir := t.TempDir()
	img := pattern8()
	writeImage(t, filepath.Join(dir, "b_cat", "1.png"), img)
	writeImage(t, filepath.Join(dir, "b_cat", "nested", "2.PNG"), img)
	writeImage(t, filepath.Join(dir, "b_cat", "3.jpeg"), img)
	writeFile(t, filepath.Join(dir, "b_cat", "notes.txt"), []byte("not an image"))
	writeImage(t, filepath.Join(dir, "b_cat", ".cache", "4.png"), img) // hidden folder: skipped
	writeImage(t, filepath.Join(dir, "a_dog", "x.jpg"), img)
	writeImage(t, filepath.Join(dir, ".ipynb_checkpoints", "y.png"), img) // hidden class: skipped
	writeFile(t, filepath.Join(dir, "README"), []byte("a file, not a class"))
	return dir
}

func TestImageFolderIndex(t *testing.T) {
	root := folderTree(t)
	d, err := ImageFolder(root, 7, imageNet())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := d.ClassNames(), []string{"a_dog", "b_cat"}; !slices.Equal(got, want) {
		t.Errorf("ClassNames = %q, want %q", got, want)
	}
	if d.NumClasses() != 2 || d.Len() != 4 {
		t.Fatalf("NumClasses, Len = %d, %d, want 2, 4", d.NumClasses(), d.Len())
	}
	if h, w := d.Size(); h != 7 || w != 7 {
		t.Errorf("Size = %d, %d, want 7, 7", h, w)
	}
	f := d.(*folder)
	var rel []string
	for _, p := range f.paths {
		r, _ := filepath.Rel(root, p)
		rel = append(rel, filepath.ToSlash(r))
	}
	wantPaths := []string{"a_dog/x.jpg", "b_cat/1.png", "b_cat/3.jpeg", "b_cat/nested/2.PNG"}
	if !slices.Equal(rel, wantPaths) {
		t.Errorf("files = %q, want %q", rel, wantPaths)
	}
	for i, want := range []int{0, 1, 1, 1} {
		ex, err := d.Load(i, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ex.Label != want || len(ex.Image) != 3*7*7 {
			t.Errorf("example %d: label %d, %d values, want %d, %d", i, ex.Label, len(ex.Image), want, 3*7*7)
		}
	}
}

// TestImageFolderEvalExact checks the evaluation transform pixel by pixel. For S = 7 the image is
// resized to R = round(7*256/224) = 8, so an 8 x 8 image is not resampled (the triangle filter
// with scale 1 has the single weight 1), and the centre crop's offset round_half_even(0.5) = 0
// keeps pixels 0..6 of each row and column: output (c, y, x) = normalise(src(x, y)[c]).
func TestImageFolderEvalExact(t *testing.T) {
	for _, norm := range []Normalization{identity, imageNet()} {
		dir := t.TempDir()
		writeImage(t, filepath.Join(dir, "only", "p.png"), pattern8())
		d, err := ImageFolder(dir, 7, norm)
		if err != nil {
			t.Fatal(err)
		}
		ex, err := d.Load(0, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		src := pattern8()
		for c := range 3 {
			for y := range 7 {
				for x := range 7 {
					v := src.Pix[src.PixOffset(x, y)+c]
					got := ex.Image[c*49+y*7+x]
					if diff := float64(got) - normalised(v, c, norm); diff > formulaTol || diff < -formulaTol {
						t.Fatalf("norm %v: (c=%d, y=%d, x=%d) = %g, want %g", norm, c, y, x, got, normalised(v, c, norm))
					}
				}
			}
		}
	}
}

// window8 returns the expected training output for pattern8 at S = 7: the 7 x 7 window at (top,
// left), mirrored when flip is set, normalised with identity.
func window8(top, left int, flip bool) []float32 {
	src := pattern8()
	out := make([]float32, 3*49)
	for c := range 3 {
		for y := range 7 {
			for x := range 7 {
				sx := x
				if flip {
					sx = 6 - x
				}
				v := src.Pix[src.PixOffset(left+sx, top+y)+c]
				out[c*49+y*7+x] = float32(v) * (1 / float32(255))
			}
		}
	}
	return out
}

// TestImageFolderAugment checks that the training transform of an image that is not resampled
// (see TestImageFolderEvalExact) is one of the 8 windows: top, left in {0, 1}, flipped or not;
// that all 8 occur; and that the same generator state gives the same output.
func TestImageFolderAugment(t *testing.T) {
	dir := t.TempDir()
	writeImage(t, filepath.Join(dir, "a", "p.png"), pattern8())
	writeImage(t, filepath.Join(dir, "b", "p.png"), pattern8())
	d, err := ImageFolder(dir, 7, identity)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for k := range uint64(200) {
		ex, err := d.Load(int(k%2), true, seeded(k))
		if err != nil {
			t.Fatal(err)
		}
		if ex.Label != int(k%2) {
			t.Fatalf("augmented label %d, want %d", ex.Label, k%2)
		}
		found := ""
		for _, top := range []int{0, 1} {
			for _, left := range []int{0, 1} {
				for _, flip := range []bool{false, true} {
					if maxDiff(ex.Image, window8(top, left, flip)) <= formulaTol {
						found = fmt.Sprint(top, left, flip)
					}
				}
			}
		}
		if found == "" {
			t.Fatalf("seed %d: augmented image is none of the 8 crops", k)
		}
		seen[found] = true
		again, _ := d.Load(int(k%2), true, seeded(k))
		if maxDiff(ex.Image, again.Image) != exactTol {
			t.Fatalf("seed %d: augmentation is not deterministic", k)
		}
	}
	if len(seen) != 8 {
		t.Errorf("%d of the 8 crops occurred in 200 draws: %v", len(seen), seen)
	}
}

// TestResampleWindowMatchesPreprocess checks that the training resampler, at the centre offsets
// without flip, reproduces imageio.Preprocess exactly, for images that are down- and up-scaled and
// decoded from PNG (NRGBA), JPEG (YCbCr) and grey PNG.
func TestResampleWindowMatchesPreprocess(t *testing.T) {
	grad := func(x, y int) [3]byte { return [3]byte{byte(x * 5), byte(y * 7), byte((x*y + 13) % 256)} }
	gray := image.NewGray(image.Rect(0, 0, 23, 40))
	for i := range gray.Pix {
		gray.Pix[i] = byte(i * 37)
	}
	for _, tc := range []struct {
		name string
		img  image.Image
		size int
	}{
		{"down-landscape.png", rgbImage(50, 30, grad), 16},
		{"down-portrait.jpg", rgbImage(31, 47, grad), 12},
		{"up.png", rgbImage(9, 6, grad), 16},
		{"gray.png", gray, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tc.name)
			writeImage(t, path, tc.img)
			img, err := imageio.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want, err := imageio.Preprocess(img, tc.size, tc.size, imageNet())
			if err != nil {
				t.Fatal(err)
			}
			b := img.Bounds()
			rw, rh := imageio.ResizedSize(b.Dx(), b.Dy(), imageio.ResizeShort(tc.size, tc.size))
			// Preprocess's centre offsets: round half to even of (r - S)/2.
			left := int(roundHalfEven(float64(rw-tc.size) / 2))
			top := int(roundHalfEven(float64(rh-tc.size) / 2))
			got := imageio.ResampleWindow(img, rw, rh, top, left, tc.size, tc.size, false, imageNet())
			if d := maxDiff(got, tensor.Data[float32](want)); d > formulaTol {
				t.Errorf("max |window - Preprocess| = %g, want <= %g", d, formulaTol)
			}
			flipped := imageio.ResampleWindow(img, rw, rh, top, left, tc.size, tc.size, true, imageNet())
			for c := range 3 {
				for y := range tc.size {
					for x := range tc.size {
						i := c*tc.size*tc.size + y*tc.size
						if flipped[i+x] != got[i+tc.size-1-x] {
							t.Fatalf("flip: (c=%d, y=%d, x=%d) is not the mirror", c, y, x)
						}
					}
				}
			}
		})
	}
}

func roundHalfEven(x float64) float64 {
	r := float64(int(x + 0.5))
	if r-x == 0.5 && int(r)%2 != 0 {
		r--
	}
	return r
}

func TestImageFolderErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, dir string) // populates dir
		size   int
		norm   Normalization
		target error
		subs   []string // besides the folder
	}{
		{"no classes", func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "x.png"), nil) }, 8, identity, ErrDataset, []string{"no class"}},
		{"empty class", func(t *testing.T, dir string) {
			writeImage(t, filepath.Join(dir, "a", "1.png"), pattern8())
			writeFile(t, filepath.Join(dir, "b", "notes.txt"), nil)
		}, 8, identity, ErrDataset, []string{"class folder", "no .jpg"}},
		{"size 0", func(t *testing.T, dir string) {}, 0, identity, nil, []string{"size 0"}},
		{"zero std", func(t *testing.T, dir string) {}, 8, Normalization{}, nil, []string{"std"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			_, err := ImageFolder(dir, tc.size, tc.norm)
			wantErr(t, err, tc.target, append(tc.subs, dir)...)
		})
	}
	t.Run("missing folder", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "nope")
		_, err := ImageFolder(dir, 8, identity)
		wantErr(t, err, nil, dir)
	})
	t.Run("unreadable image", func(t *testing.T) {
		dir := t.TempDir()
		bad := filepath.Join(dir, "a", "broken.jpg")
		writeFile(t, bad, []byte("\xff\xd8 definitely not a JPEG"))
		d, err := ImageFolder(dir, 8, identity)
		if err != nil {
			t.Fatal(err)
		}
		for _, augment := range []bool{false, true} {
			_, err = d.Load(0, augment, seeded(1))
			wantErr(t, err, imageio.ErrImage, bad)
		}
		_, err = d.Load(1, false, nil)
		wantErr(t, err, nil, "outside")
	})
}
