package data

import (
	"errors"
	"image"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dnx-ml/dnx/runtime/imageio"
)

// Tolerances: values computed in float32 along the same path agree exactly; against a float64
// formula they agree to a few float32 ulps of values of magnitude <= 3.
const (
	exactTol   = 0
	formulaTol = 1e-5
)

// identity leaves pixel values at v/255.
var identity = Normalization{Mean: [3]float32{0, 0, 0}, Std: [3]float32{1, 1, 1}}

// normalised returns (v/255 - mean[c]) / std[c] in float64, the definition of normalisation.
func normalised(v byte, c int, norm Normalization) float64 {
	return (float64(v)/255 - float64(norm.Mean[c])) / float64(norm.Std[c])
}

// writeFile writes data to dir/name, creating parent folders.
func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeImage encodes img as PNG or JPEG (by path's extension) at path.
func writeImage(t testing.TB, path string, img image.Image) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if strings.HasSuffix(strings.ToLower(path), ".png") {
		err = png.Encode(f, img)
	} else {
		err = jpeg.Encode(f, img, &jpeg.Options{Quality: 95})
	}
	if err != nil {
		t.Fatal(err)
	}
}

// rgbImage returns a w x h NRGBA image with pixel (x, y) = f(x, y), alpha 255.
func rgbImage(w, h int, f func(x, y int) [3]byte) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			p := f(x, y)
			i := img.PixOffset(x, y)
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = p[0], p[1], p[2], 255
		}
	}
	return img
}

// maxDiff returns max |a[i] - b[i]|, or +Inf when the lengths differ.
func maxDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	m := 0.0
	for i := range a {
		m = max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

// wantErr checks that err is non-nil, wraps target (if any) and mentions every string of subs.
func wantErr(t *testing.T, err error, target error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", subs)
	}
	if target != nil && !errors.Is(err, target) {
		t.Errorf("error %q does not wrap %q", err, target)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

// seeded returns a generator for test case k.
func seeded(k uint64) *rand.Rand { return rand.New(rand.NewPCG(k, 42)) }

// waitGoroutines waits until the number of goroutines is back to at most base, failing after 5 s.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, want <= %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// imageNet is the normalisation most tests use, so that mean and std matter.
func imageNet() Normalization { return imageio.ImageNet() }
