package tensor

import (
	"fmt"
	"math"
)

// Tolerances used across dnx's numerical tests, in one place.
const (
	// ONNXRtol and ONNXAtol are the ONNX backend test runner's defaults.
	ONNXRtol = 1e-3
	ONNXAtol = 1e-7
	// PyTorchAtol is the absolute tolerance for parity with PyTorch's float32 outputs.
	PyTorchAtol = 1e-4
)

// AllClose compares got with want as numpy.testing.assert_allclose does: same dtype and shape, and
// |got-want| <= atol + rtol*|want| elementwise, NaN matching NaN and infinities matching exactly.
// It returns nil or an error naming the first offending index and the largest difference.
func AllClose(got, want *Tensor, rtol, atol float64) error {
	if got.DType != want.DType {
		return fmt.Errorf("dtype %s, want %s", got.DType, want.DType)
	}
	if !got.Shape.Equal(want.Shape) {
		return fmt.Errorf("shape %v, want %v", got.Shape, want.Shape)
	}
	if got.DType == String {
		g, w := Data[string](got), Data[string](want)
		for i := range g {
			if g[i] != w[i] {
				return fmt.Errorf("element %d is %q, want %q", i, g[i], w[i])
			}
		}
		return nil
	}
	g, w := got.Float64s(), want.Float64s()
	bad, first := 0, -1
	for i := range g {
		if !closeTo(g[i], w[i], rtol, atol) {
			if first < 0 {
				first = i
			}
			bad++
		}
	}
	if bad == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d elements differ (rtol %g, atol %g); first at %d: got %g, want %g; max abs diff %g",
		bad, len(g), rtol, atol, first, g[first], w[first], MaxAbsDiff(got, want))
}

func closeTo(g, w, rtol, atol float64) bool {
	if nan(g) || nan(w) {
		return nan(g) && nan(w)
	}
	if math.IsInf(g, 0) || math.IsInf(w, 0) {
		return g == w
	}
	return math.Abs(g-w) <= atol+rtol*math.Abs(w)
}

// MaxAbsDiff returns max |a-b| over all elements of two tensors of the same size (NaN if any
// element is NaN in one and not the other).
func MaxAbsDiff(a, b *Tensor) float64 {
	x, y := a.Float64s(), b.Float64s()
	m := 0.0
	for i := range x {
		if nan(x[i]) != nan(y[i]) {
			return math.NaN()
		}
		if d := math.Abs(x[i] - y[i]); d > m {
			m = d
		}
	}
	return m
}
