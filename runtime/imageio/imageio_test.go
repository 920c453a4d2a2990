package imageio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// identity leaves pixel values at x/255.
var identity = Normalization{Mean: [3]float32{0, 0, 0}, Std: [3]float32{1, 1, 1}}

// gray returns a w x h grayscale image with pixel (x, y) = f(x, y).
func gray(w, h int, f func(x, y int) uint8) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetGray(x, y, color.Gray{Y: f(x, y)})
		}
	}
	return img
}

// plane returns channel c of a [1,3,H,W] tensor scaled back to 0..255.
func plane(t *tensor.Tensor, c int) [][]float64 {
	h, w := t.Shape[2], t.Shape[3]
	d := tensor.Data[float32](t)
	out := make([][]float64, h)
	for y := range out {
		out[y] = make([]float64, w)
		for x := range out[y] {
			out[y][x] = float64(d[c*h*w+y*w+x]) * 255
		}
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-3 }

func TestResizeShort(t *testing.T) {
	for _, tc := range []struct{ h, w, want int }{{224, 224, 256}, {16, 16, 18}, {32, 32, 37}, {7, 7, 8}, {299, 299, 342}, {7, 14, 16}} {
		if got := ResizeShort(tc.h, tc.w); got != tc.want {
			t.Errorf("ResizeShort(%d, %d) = %d, want %d", tc.h, tc.w, got, tc.want)
		}
	}
}

// TestPipelineHandChecked runs small images through the pipeline; the expected values are
// worked out by hand in the comments.
func TestPipelineHandChecked(t *testing.T) {
	t.Run("no resize, centre crop", func(t *testing.T) {
		// S=7 -> R=8: an 8x8 image is not resampled; the crop offset is round_half_even(0.5) = 0.
		img := gray(8, 8, func(x, y int) uint8 { return uint8(10*y + x) })
		out, err := Preprocess(img, 7, 7, identity)
		if err != nil {
			t.Fatal(err)
		}
		if !out.Shape.Equal(tensor.Shape{1, 3, 7, 7}) || out.DType != tensor.Float32 {
			t.Fatalf("got %s %v", out.DType, out.Shape)
		}
		for c := 0; c < 3; c++ {
			p := plane(out, c)
			for y := 0; y < 7; y++ {
				for x := 0; x < 7; x++ {
					if !near(p[y][x], float64(10*y+x)) {
						t.Fatalf("channel %d (%d,%d) = %g, want %d", c, y, x, p[y][x], 10*y+x)
					}
				}
			}
		}
	})
	t.Run("bilinear upscale", func(t *testing.T) {
		// A 4x4 horizontal ramp 0,40,80,120 upscaled x2 to 8 (S=7): output sample i is centred
		// at input coordinate (i+0.5)/2, so the row becomes 0 (clamped), .75*0+.25*40 = 10,
		// .25*0+.75*40 = 30, 50, 70, 90, 110, 120; the crop keeps the first 7 columns.
		img := gray(4, 4, func(x, y int) uint8 { return uint8(40 * x) })
		out, err := Preprocess(img, 7, 7, identity)
		if err != nil {
			t.Fatal(err)
		}
		want := []float64{0, 10, 30, 50, 70, 90, 110}
		p := plane(out, 1)
		for y := 0; y < 7; y++ {
			for x, v := range want {
				if !near(p[y][x], v) {
					t.Fatalf("(%d,%d) = %g, want %g; row %v", y, x, p[y][x], v, p[y])
				}
			}
		}
	})
	t.Run("area downscale", func(t *testing.T) {
		// A 16x16 ramp v = 10*x downscaled x2 to 8 (S=7): output sample i is centred at input
		// coordinate 2i+1 and averages inputs j with weights 1 - |j+0.5-(2i+1)|/2.
		// i=0: j=0,1,2 weigh .75,.75,.25 -> (0*.75 + 10*.75 + 20*.25)/1.75 = 7.142857.
		// i=1: j=1..4 weigh .25,.75,.75,.25 -> (10*.25 + 20*.75 + 30*.75 + 40*.25)/2 = 25;
		// likewise i=2 -> 45 and i=6 -> 125.
		img := gray(16, 16, func(x, y int) uint8 { return uint8(10 * x) })
		out, err := Preprocess(img, 7, 7, identity)
		if err != nil {
			t.Fatal(err)
		}
		p := plane(out, 0)
		for _, tc := range []struct {
			x    int
			want float64
		}{{0, 12.5 / 1.75}, {1, 25}, {2, 45}, {6, 125}} {
			if !near(p[3][tc.x], tc.want) {
				t.Errorf("x=%d: %g, want %g (row %v)", tc.x, p[3][tc.x], tc.want, p[3])
			}
		}
	})
	t.Run("landscape crop offset", func(t *testing.T) {
		// 8 wide x 4 tall, S=7: the short side 4 -> 8, the long side floor(8*8/4) = 16; the crop
		// starts at column round_half_even((16-7)/2 = 4.5) = 4 and row round_half_even(0.5) = 0.
		// A vertical ramp v = 40*y maps rows like the horizontal ramp above: 0,10,30,...
		img := gray(8, 4, func(x, y int) uint8 { return uint8(40 * y) })
		out, err := Preprocess(img, 7, 7, identity)
		if err != nil {
			t.Fatal(err)
		}
		p := plane(out, 2)
		for y, v := range []float64{0, 10, 30, 50, 70, 90, 110} {
			if !near(p[y][3], v) {
				t.Errorf("row %d = %g, want %g", y, p[y][3], v)
			}
		}
		// A horizontal ramp u = 20*x: resized column i is centred at (i+0.5)/2, so column 4+k
		// holds 20*((4+k+0.5)/2 - 0.5) = 10*(4+k) - 5 for columns away from the edges.
		img = gray(8, 4, func(x, y int) uint8 { return uint8(20 * x) })
		out, _ = Preprocess(img, 7, 7, identity)
		p = plane(out, 0)
		for k := 0; k < 7; k++ {
			if want := 10*float64(4+k) - 5; !near(p[2][k], want) {
				t.Errorf("column %d = %g, want %g", k, p[2][k], want)
			}
		}
	})
}

func TestColorAndNormalization(t *testing.T) {
	norm := ImageNet()
	tests := []struct {
		name    string
		img     image.Image
		r, g, b uint8
	}{
		{"rgba opaque", func() image.Image {
			m := image.NewRGBA(image.Rect(0, 0, 8, 8))
			fill(m, color.RGBA{200, 100, 50, 255})
			return m
		}(), 200, 100, 50},
		{"nrgba transparent keeps colour", func() image.Image {
			m := image.NewNRGBA(image.Rect(0, 0, 8, 8))
			fill(m, color.NRGBA{200, 100, 50, 0})
			return m
		}(), 200, 100, 50},
		{"gray", gray(8, 8, func(x, y int) uint8 { return 77 }), 77, 77, 77},
		{"gray16", func() image.Image {
			m := image.NewGray16(image.Rect(0, 0, 8, 8))
			fill(m, color.Gray16{Y: 77 * 257})
			return m
		}(), 77, 77, 77},
		{"paletted", func() image.Image {
			m := image.NewPaletted(image.Rect(0, 0, 8, 8), color.Palette{color.Black, color.RGBA{10, 20, 30, 255}})
			for i := range m.Pix {
				m.Pix[i] = 1
			}
			return m
		}(), 10, 20, 30},
		{"offset bounds", func() image.Image {
			m := image.NewNRGBA(image.Rect(5, 9, 13, 17))
			fill(m, color.NRGBA{1, 2, 3, 255})
			return m
		}(), 1, 2, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Preprocess(tc.img, 7, 7, norm)
			if err != nil {
				t.Fatal(err)
			}
			d := tensor.Data[float32](out)
			for c, v := range []uint8{tc.r, tc.g, tc.b} {
				want := (float64(v)/255 - float64(norm.Mean[c])) / float64(norm.Std[c])
				for i := c * 49; i < (c+1)*49; i++ {
					if math.Abs(float64(d[i])-want) > 1e-5 {
						t.Fatalf("channel %d element %d = %g, want %g", c, i, d[i], want)
					}
				}
			}
		})
	}
}

func fill(m interface {
	Set(x, y int, c color.Color)
	Bounds() image.Rectangle
}, c color.Color) {
	b := m.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			m.Set(x, y, c)
		}
	}
}

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	src := image.NewNRGBA(image.Rect(0, 0, 20, 10))
	fill(src, color.NRGBA{255, 0, 128, 255})

	var pngBuf, jpgBuf bytes.Buffer
	if err := png.Encode(&pngBuf, src); err != nil {
		t.Fatal(err)
	}
	if err := jpeg.Encode(&jpgBuf, src, &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"a.png": pngBuf.Bytes(), "a.jpg": jpgBuf.Bytes()} {
		path := filepath.Join(dir, name)
		os.WriteFile(path, data, 0o644)
		out, err := LoadFile(path, 16, 16, identity)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		d := tensor.Data[float32](out)
		// JPEG's chroma subsampling and quantisation move a flat colour by a few levels.
		tol := 0.5 / 255
		if strings.HasSuffix(name, ".jpg") {
			tol = 4.0 / 255
		}
		for c, want := range []float64{1, 0, 128.0 / 255} {
			if got := float64(d[c*256+100]); math.Abs(got-want) > tol {
				t.Errorf("%s channel %d = %g, want %g", name, c, got, want)
			}
		}
	}
}

// pngHeader returns the signature and IHDR chunk of a PNG declaring w x h pixels, and nothing else.
func pngHeader(w, h uint32) []byte { return pngHeaderDepth(w, h, 8, 2) }

// pngHeaderDepth is a PNG signature and IHDR chunk of a w x h image with the given bit depth and
// colour type (2 RGB, 6 RGBA), without pixel data.
func pngHeaderDepth(w, h uint32, depth, colorType byte) []byte {
	var ihdr []byte
	ihdr = binary.BigEndian.AppendUint32(ihdr, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, depth, colorType, 0, 0, 0)
	out := []byte("\x89PNG\r\n\x1a\n")
	out = binary.BigEndian.AppendUint32(out, uint32(len(ihdr)))
	chunk := append([]byte("IHDR"), ihdr...)
	out = append(out, chunk...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(chunk))
}

func TestDecodeErrors(t *testing.T) {
	var good bytes.Buffer
	png.Encode(&good, gray(4, 4, func(x, y int) uint8 { return 1 }))
	tests := []struct {
		name string
		data []byte
		msg  string
	}{
		{"not an image", []byte("hello, world"), "unknown format"},
		{"huge declared size", pngHeader(100000, 100000), "100000x100000"},
		// 10k x 10k 16-bit RGBA is under MaxPixels but would decode to 763 MiB.
		{"16-bit RGBA over the decoded bytes", pngHeaderDepth(10000, 10000, 16, 6), "8 bytes per pixel would take 762 MiB"},
		{"truncated png", good.Bytes()[:len(good.Bytes())-20], "png"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(bytes.NewReader(tc.data))
			if !errors.Is(err, ErrImage) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %v: want ErrImage mentioning %q", err, tc.msg)
			}
		})
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "none.png")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestPreprocessErrors(t *testing.T) {
	img := gray(4, 4, func(x, y int) uint8 { return 0 })
	if _, err := Preprocess(img, 0, 4, identity); err == nil {
		t.Error("size 0: no error")
	}
	if _, err := Preprocess(img, 4, 4, Normalization{Std: [3]float32{1, 0, 1}}); err == nil {
		t.Error("std 0: no error")
	}
	if _, err := Preprocess(image.NewGray(image.Rect(0, 0, 0, 3)), 4, 4, identity); err == nil {
		t.Error("empty image: no error")
	}
}
