package data

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/runtime/tensor"
	"github.com/dnx-ml/dnx/runtime/tensor/npy"
)

// MaxClasses bounds NumClasses of datasets whose classes come from label values (TensorFiles), so
// that one wild label cannot allocate millions of class names.
const MaxClasses = 1 << 16

// tensors is the Dataset of TensorFiles.
type tensors struct {
	x          []float32 // [N, c, h, w]
	c, h, w    int
	labels     []int
	numClasses int
	yPath      string // the label file, for FirstLabelOutside
}

// TensorFiles returns the examples held in two tensor files: xPath an [N, C, H, W] float32 (or
// float64, converted) tensor of images that are already normalised, with C = 3 (or 1, repeated to
// three channels), and yPath an int64 or int32 tensor of N labels, shape [N] or [N, 1]. Files
// ending in .npy are NumPy arrays, files ending in .pb serialized ONNX TensorProtos (as
// onnx.ReadTensorFile reads). Labels must be in [0, MaxClasses); NumClasses is the largest label
// plus one and the classes are named "0", "1", ... Non-finite pixel values are errors. The training
// augmentation pads round(min(H, W)/8) zeros, crops and flips.
func TensorFiles(xPath, yPath string) (Dataset, error) {
	xt, err := readTensor(xPath)
	if err != nil {
		return nil, err
	}
	yt, err := readTensor(yPath)
	if err != nil {
		return nil, err
	}
	if xt.Rank() != 4 || (xt.Shape[1] != 3 && xt.Shape[1] != 1) || xt.Shape[0] == 0 || xt.Shape[2] == 0 || xt.Shape[3] == 0 {
		return nil, fmt.Errorf("images %s: %w: shape %v, want [N, 3, H, W] or [N, 1, H, W] with N, H, W > 0", xPath, ErrDataset, xt.Shape)
	}
	d := &tensors{c: xt.Shape[1], h: xt.Shape[2], w: xt.Shape[3], yPath: yPath}
	switch v := xt.Data.(type) {
	case []float32:
		d.x = v
	case []float64:
		d.x = make([]float32, len(v))
		for i, f := range v {
			d.x[i] = float32(f)
		}
	default:
		return nil, fmt.Errorf("images %s: %w: element type %s, want float32 or float64", xPath, ErrDataset, xt.DType)
	}
	for i, f := range d.x {
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			return nil, fmt.Errorf("images %s: %w: element %d is %g", xPath, ErrDataset, i, f)
		}
	}
	n := xt.Shape[0]
	if !(yt.Rank() == 1 || (yt.Rank() == 2 && yt.Shape[1] == 1)) {
		return nil, fmt.Errorf("labels %s: %w: shape %v, want [N] or [N, 1]", yPath, ErrDataset, yt.Shape)
	}
	ys, err := yt.Int64s()
	if err != nil {
		return nil, fmt.Errorf("labels %s: %w: %w", yPath, ErrDataset, err)
	}
	if len(ys) != n {
		return nil, fmt.Errorf("labels %s: %w: %d labels for the %d images of %s", yPath, ErrDataset, len(ys), n, xPath)
	}
	d.labels = make([]int, n)
	for i, y := range ys {
		if y < 0 || y >= MaxClasses {
			return nil, fmt.Errorf("labels %s: %w: label %d of example %d is outside [0, %d)", yPath, ErrDataset, y, i, MaxClasses)
		}
		d.labels[i] = int(y)
		d.numClasses = max(d.numClasses, int(y)+1)
	}
	return d, nil
}

// readTensor reads a .npy or .pb tensor file; errors name the file.
func readTensor(path string) (*tensor.Tensor, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".npy":
		return npy.ReadFile(path)
	case ".pb":
		t, _, err := onnx.ReadTensorFile(path)
		return t, err
	}
	return nil, fmt.Errorf("%s: %w: unknown tensor file type (want .npy or .pb)", path, ErrDataset)
}

func (d *tensors) Len() int             { return len(d.labels) }
func (d *tensors) NumClasses() int      { return d.numClasses }
func (d *tensors) ClassNames() []string { return numberedNames(d.numClasses) }
func (d *tensors) Size() (h, w int)     { return d.h, d.w }

// Load copies image i (repeating a single channel three times); the augmentation pads with 0.
func (d *tensors) Load(i int, augment bool, rng *rand.Rand) (Example, error) {
	if err := checkIndex(i, len(d.labels)); err != nil {
		return Example{}, err
	}
	if err := checkRand(augment, rng); err != nil {
		return Example{}, err
	}
	plane := d.h * d.w
	src := d.x[i*d.c*plane : (i+1)*d.c*plane]
	img := make([]float32, 3*plane)
	for c := range 3 {
		copy(img[c*plane:(c+1)*plane], src[(c%d.c)*plane:])
	}
	if augment {
		img = padCropFlip(img, 3, d.h, d.w, smallPad(d.h, d.w), []float32{0, 0, 0}, rng)
	}
	return Example{Image: img, Label: d.labels[i]}, nil
}
