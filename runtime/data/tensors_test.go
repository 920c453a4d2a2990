package data

import (
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/runtime/tensor"
	"github.com/dnx-ml/dnx/runtime/tensor/npy"
)

// saveTensor writes t as .npy or TensorProto .pb, by path's extension.
func saveTensor(t *testing.T, path string, x *tensor.Tensor) {
	t.Helper()
	if filepath.Ext(path) == ".npy" {
		b, err := npy.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, path, b)
		return
	}
	if err := onnx.WriteTensorFile(path, x, "t"); err != nil {
		t.Fatal(err)
	}
}

// ramp returns n values k*0.25 - 3, all distinct.
func ramp(n int) []float32 {
	out := make([]float32, n)
	for k := range out {
		out[k] = float32(k)*0.25 - 3
	}
	return out
}

func TestTensorFiles(t *testing.T) {
	const n, h, w = 3, 4, 5
	for _, tc := range []struct {
		name     string
		x        *tensor.Tensor
		y        *tensor.Tensor
		ext      string
		channels int
	}{
		{"npy int64", tensor.FromSlice(tensor.Shape{n, 3, h, w}, ramp(n*3*h*w)), tensor.FromSlice(tensor.Shape{n}, []int64{2, 0, 6}), ".npy", 3},
		{"pb int32", tensor.FromSlice(tensor.Shape{n, 3, h, w}, ramp(n*3*h*w)), tensor.FromSlice(tensor.Shape{n}, []int32{2, 0, 6}), ".pb", 3},
		{"grey [N,1] labels", tensor.FromSlice(tensor.Shape{n, 1, h, w}, ramp(n*h*w)), tensor.FromSlice(tensor.Shape{n, 1}, []int64{2, 0, 6}), ".npy", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			xp, yp := filepath.Join(dir, "x"+tc.ext), filepath.Join(dir, "y"+tc.ext)
			saveTensor(t, xp, tc.x)
			saveTensor(t, yp, tc.y)
			d, err := TensorFiles(xp, yp)
			if err != nil {
				t.Fatal(err)
			}
			if d.Len() != n || d.NumClasses() != 7 || !slices.Equal(d.ClassNames(), numberedNames(7)) {
				t.Fatalf("Len %d, NumClasses %d, names %q", d.Len(), d.NumClasses(), d.ClassNames())
			}
			if gh, gw := d.Size(); gh != h || gw != w {
				t.Errorf("Size = %d, %d", gh, gw)
			}
			src := tensor.Data[float32](tc.x)
			plane := h * w
			for i, label := range []int{2, 0, 6} {
				ex, err := d.Load(i, false, nil)
				if err != nil {
					t.Fatal(err)
				}
				if ex.Label != label {
					t.Errorf("example %d: label %d, want %d", i, ex.Label, label)
				}
				want := make([]float32, 0, 3*plane)
				for c := range 3 {
					off := (i*tc.channels + c%tc.channels) * plane
					want = append(want, src[off:off+plane]...)
				}
				if d := maxDiff(ex.Image, want); d != exactTol {
					t.Errorf("example %d: max diff %g, want exact", i, d)
				}
				aug, err := d.Load(i, true, seeded(uint64(i)))
				if err != nil || aug.Label != label || len(aug.Image) != 3*plane {
					t.Errorf("augmented example %d: label %d, %d values, %v", i, aug.Label, len(aug.Image), err)
				}
			}
		})
	}
}

func TestTensorFilesFloat64(t *testing.T) {
	dir := t.TempDir()
	xp, yp := filepath.Join(dir, "x.npy"), filepath.Join(dir, "y.npy")
	saveTensor(t, xp, tensor.FromSlice(tensor.Shape{1, 3, 1, 1}, []float64{0.5, -1, 2}))
	saveTensor(t, yp, tensor.FromSlice(tensor.Shape{1}, []int64{0}))
	d, err := TensorFiles(xp, yp)
	if err != nil {
		t.Fatal(err)
	}
	ex, _ := d.Load(0, false, nil)
	if !slices.Equal(ex.Image, []float32{0.5, -1, 2}) {
		t.Errorf("image %v", ex.Image)
	}
}

func TestTensorFilesErrors(t *testing.T) {
	x4 := tensor.FromSlice(tensor.Shape{2, 3, 2, 2}, ramp(24))
	y2 := tensor.FromSlice(tensor.Shape{2}, []int64{0, 1})
	nan := ramp(24)
	nan[17] = float32(math.NaN())
	for _, tc := range []struct {
		name  string
		x, y  *tensor.Tensor
		xExt  string
		named string // "x" or "y": the file the error names
		subs  []string
	}{
		{"length mismatch", x4, tensor.FromSlice(tensor.Shape{3}, []int64{0, 1, 1}), ".npy", "y", []string{"3 labels", "2 images", "x.npy"}},
		{"negative label", x4, tensor.FromSlice(tensor.Shape{2}, []int64{0, -1}), ".npy", "y", []string{"label -1", "example 1"}},
		{"huge label", x4, tensor.FromSlice(tensor.Shape{2}, []int64{0, 1 << 40}), ".npy", "y", []string{"outside"}},
		{"float labels", x4, tensor.FromSlice(tensor.Shape{2}, []float32{0, 1}), ".npy", "y", []string{"int64 or int32"}},
		{"label rank", x4, tensor.FromSlice(tensor.Shape{1, 2}, []int64{0, 1}), ".npy", "y", []string{"[1 2]"}},
		{"image rank", tensor.FromSlice(tensor.Shape{2, 12}, ramp(24)), y2, ".npy", "x", []string{"[2 12]"}},
		{"channels", tensor.FromSlice(tensor.Shape{2, 2, 3, 2}, ramp(24)), y2, ".pb", "x", []string{"[2 2 3 2]"}},
		{"int images", tensor.FromSlice(tensor.Shape{2, 3, 1, 1}, []int32{1, 2, 3, 4, 5, 6}), y2, ".npy", "x", []string{"int32"}},
		{"NaN", tensor.FromSlice(tensor.Shape{2, 3, 2, 2}, nan), y2, ".npy", "x", []string{"element 17"}},
		{"extension", x4, y2, ".bin", "x", []string{"unknown tensor file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			xp, yp := filepath.Join(dir, "x"+tc.xExt), filepath.Join(dir, "y.npy")
			if tc.xExt == ".bin" {
				writeFile(t, xp, []byte("raw"))
			} else {
				saveTensor(t, xp, tc.x)
			}
			saveTensor(t, yp, tc.y)
			_, err := TensorFiles(xp, yp)
			named := xp
			if tc.named == "y" {
				named = yp
			}
			target := ErrDataset
			wantErr(t, err, target, append(tc.subs, named)...)
		})
	}
	t.Run("truncated npy", func(t *testing.T) {
		dir := t.TempDir()
		xp, yp := filepath.Join(dir, "x.npy"), filepath.Join(dir, "y.npy")
		b, _ := npy.Marshal(x4)
		writeFile(t, xp, b[:len(b)-3])
		saveTensor(t, yp, y2)
		_, err := TensorFiles(xp, yp)
		wantErr(t, err, npy.ErrFormat, xp)
	})
}
