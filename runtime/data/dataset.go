package data

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/dnx-ml/dnx/runtime/imageio"
)

// ErrDataset is wrapped by errors about dataset files or folders that cannot be used: no classes,
// an empty class, truncated records, labels out of range, tensors of the wrong shape or type.
var ErrDataset = errors.New("invalid dataset")

// Normalization holds the per-channel (R, G, B) mean and standard deviation images are normalised
// with after scaling to [0, 1]: x' = (x/255 - Mean[c]) / Std[c].
type Normalization = imageio.Normalization

// Example is one labelled image.
type Example struct {
	// Image holds 3*H*W normalised values in CHW order (all of channel 0, row by row, then 1, 2).
	Image []float32
	// Label is the class id, in [0, NumClasses).
	Label int
}

// Dataset is a finite, indexable collection of labelled images of one size. Implementations are
// safe for concurrent Load calls: the Loader calls Load from several goroutines.
type Dataset interface {
	// Len returns the number of examples.
	Len() int
	// NumClasses returns the number of classes; labels are in [0, NumClasses).
	NumClasses() int
	// ClassNames returns NumClasses names, indexed by label.
	ClassNames() []string
	// Size returns the height and width of every image Load returns.
	Size() (h, w int)
	// Load returns example i, 0 <= i < Len(). When augment is true it applies the training
	// augmentation, drawing every random choice from rng; otherwise it applies the deterministic
	// evaluation transform and rng is not used (it may be nil). See the package documentation for
	// the transforms of each source.
	Load(i int, augment bool, rng *rand.Rand) (Example, error)
}

// checkNorm rejects normalisations that would produce infinities or NaNs.
func checkNorm(norm Normalization) error {
	for c, s := range norm.Std {
		m := float64(norm.Mean[c])
		if !(s > 0) || math.IsInf(float64(s), 0) || math.IsNaN(m) || math.IsInf(m, 0) {
			return fmt.Errorf("normalisation of channel %d: mean %g, std %g (std must be positive and finite)", c, norm.Mean[c], s)
		}
	}
	return nil
}

// byteTable returns the normalised value of every 8-bit pixel value v of every channel c,
// (v/255 - mean[c]) / std[c], computed as imageio.Preprocess computes it, v*(1/(255*std)) - mean/std,
// so that 8-bit sources and decoded images agree bit for bit.
func byteTable(norm Normalization) *[3][256]float32 {
	var t [3][256]float32
	for c := range t {
		scale := 1 / (255 * norm.Std[c])
		shift := norm.Mean[c] / norm.Std[c]
		for v := range t[c] {
			t[c][v] = float32(v)*scale - shift
		}
	}
	return &t
}

// numberedNames returns "0", "1", ..., the class names of sources that carry none.
func numberedNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = strconv.Itoa(i)
	}
	return names
}

// checkRand reports a missing generator for the augmentation, a programming error that would
// otherwise panic deep inside a worker.
func checkRand(augment bool, rng *rand.Rand) error {
	if augment && rng == nil {
		return errors.New("data: Load with augment needs a random generator")
	}
	return nil
}

// checkIndex reports an index outside [0, n).
func checkIndex(i, n int) error {
	if i < 0 || i >= n {
		return fmt.Errorf("example index %d is outside [0, %d)", i, n)
	}
	return nil
}
