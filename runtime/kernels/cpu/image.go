package cpu

import "fmt"

// Image is a float32 NCHW tensor whose batch items may be spaced apart: element (n, c, h, w) is
// Data[n*BatchStride + (c*H+h)*W + w]. A dense tensor has BatchStride == C*H*W.
type Image struct {
	Data        []float32
	N, C, H, W  int
	BatchStride int
}

// Dense returns an Image over a contiguous NCHW slice.
func Dense(data []float32, n, c, h, w int) Image {
	return Image{Data: data, N: n, C: c, H: h, W: w, BatchStride: c * h * w}
}

// Item returns batch item n as a contiguous C*H*W slice.
func (im Image) Item(n int) []float32 {
	off := n * im.BatchStride
	return im.Data[off : off+im.C*im.H*im.W]
}

// Channels returns the view of channels [c0, c0+count) of im (same batch stride).
func (im Image) Channels(c0, count int) Image {
	off := c0 * im.H * im.W
	return Image{Data: im.Data[off:], N: im.N, C: count, H: im.H, W: im.W, BatchStride: im.BatchStride}
}

// Check reports an error unless im's fields are consistent with its data.
func (im Image) Check() error {
	if im.N < 0 || im.C < 0 || im.H < 0 || im.W < 0 || im.BatchStride < im.C*im.H*im.W {
		return fmt.Errorf("cpu: bad image %dx%dx%dx%d, batch stride %d", im.N, im.C, im.H, im.W, im.BatchStride)
	}
	if im.N > 0 && (im.N-1)*im.BatchStride+im.C*im.H*im.W > len(im.Data) {
		return fmt.Errorf("cpu: image %dx%dx%dx%d (batch stride %d) needs more than the %d floats given",
			im.N, im.C, im.H, im.W, im.BatchStride, len(im.Data))
	}
	return nil
}
