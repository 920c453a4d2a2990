package data

import (
	"image"
	"image/color"
	"math"
)

// This file resamples an arbitrary window of a resized image. imageio.Preprocess resamples only
// the centre window; the ImageFolder training augmentation needs a random one. The arithmetic
// mirrors imageio's exactly (same filter, same float32 accumulation order), so that the centre
// window computed here equals imageio.Preprocess's output; a test checks it. If imageio grows an
// exported window API this copy should go.

// resizedSize returns the size of a w x h image whose shorter side is resized to short, keeping
// the aspect ratio: the longer side becomes floor(short*long/shorter), as torchvision computes it.
func resizedSize(w, h, short int) (rw, rh int) {
	rw, rh = short, short
	if w < h {
		rh = int(int64(short) * int64(h) / int64(w))
	} else if h < w {
		rw = int(int64(short) * int64(w) / int64(h))
	}
	return rw, rh
}

// resampleWindow resizes img to rw x rh with imageio's bilinear (triangle) filter and returns the
// size x size window whose top-left corner is (left, top) in the resized image, mirrored
// horizontally when flip is set, as 3 normalised CHW planes (values looked up through norm's
// scale and shift: v*(1/(255*std)) - mean/std). The window must lie inside the resized image.
func resampleWindow(img image.Image, rw, rh, top, left, size int, flip bool, norm Normalization) []float32 {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	cx := filterTaps(w, rw, left, size)
	cy := filterTaps(h, rh, top, size)
	// Filter each source row horizontally as it is converted, then the columns vertically, so
	// memory stays O(h*size) whatever the source size.
	var row, tmp [3][]float32
	for c := range row {
		row[c] = make([]float32, w)
		tmp[c] = make([]float32, h*size)
	}
	for y := range h {
		rgbRow(img, b.Min.Y+y, row)
		for c := range row {
			for x, k := range cx {
				tmp[c][y*size+x] = k.apply(row[c], 1)
			}
		}
	}
	out := make([]float32, 3*size*size)
	for c := range tmp {
		dst := out[c*size*size : (c+1)*size*size]
		scale := 1 / (255 * norm.Std[c])
		shift := norm.Mean[c] / norm.Std[c]
		for y, k := range cy {
			for x := range size {
				sx := x
				if flip {
					sx = size - 1 - x
				}
				dst[y*size+sx] = k.apply(tmp[c][x:], size)*scale - shift
			}
		}
	}
	return out
}

// tap is the filter of one output sample: weights for input samples start, start+1, ...
type tap struct {
	start   int
	weights []float32
}

// apply returns sum_j weights[j] * src[(start+j)*stride], accumulated in float32 in order of j.
func (k tap) apply(src []float32, stride int) float32 {
	var s float32
	for j, wt := range k.weights {
		s += wt * src[(k.start+j)*stride]
	}
	return s
}

// filterTaps returns the filters of output samples first..first+n-1 of a resize from in to out
// samples. Output sample i is centred at input coordinate c = (i+0.5)*in/out and averages the
// input samples j (centred at j+0.5) with triangle weights
//
//	w_j = max(0, 1 - |j + 0.5 - c| / f),   f = max(1, in/out),
//
// normalised to sum to 1: bilinear interpolation with edge clamping when upscaling, a widened
// triangle covering every input sample when downscaling (PIL's BILINEAR).
func filterTaps(in, out, first, n int) []tap {
	scale := float64(in) / float64(out)
	f := max(scale, 1)
	taps := make([]tap, n)
	for i := range taps {
		c := (float64(first+i) + 0.5) * scale
		lo := max(int(math.Floor(c-f+0.5)), 0)
		hi := min(int(math.Floor(c+f+0.5)), in)
		ws := make([]float64, 0, max(hi-lo, 0))
		sum := 0.0
		for j := lo; j < hi; j++ {
			wt := max(1-math.Abs(float64(j)+0.5-c)/f, 0)
			ws = append(ws, wt)
			sum += wt
		}
		for len(ws) > 0 && ws[0] == 0 {
			ws, lo = ws[1:], lo+1
		}
		for len(ws) > 0 && ws[len(ws)-1] == 0 {
			ws = ws[:len(ws)-1]
		}
		k := tap{start: lo, weights: make([]float32, len(ws))}
		for j, wt := range ws {
			k.weights[j] = float32(wt / sum)
		}
		taps[i] = k
	}
	return taps
}

// rgbRow converts row y of img to 0..255 float32 values in dst's R, G and B rows. Colours are
// non-premultiplied (alpha is dropped, the colour kept), as imageio and PIL's convert("RGB") do.
func rgbRow(img image.Image, y int, dst [3][]float32) {
	x0 := img.Bounds().Min.X
	set := func(x int, r, g, b float32) { dst[0][x], dst[1][x], dst[2][x] = r, g, b }
	switch m := img.(type) { // fast paths for what the PNG and JPEG decoders return
	case *image.Gray:
		for x := range dst[0] {
			v := float32(m.GrayAt(x0+x, y).Y)
			set(x, v, v, v)
		}
	case *image.NRGBA:
		for x := range dst[0] {
			c := m.NRGBAAt(x0+x, y)
			set(x, float32(c.R), float32(c.G), float32(c.B))
		}
	case *image.YCbCr:
		for x := range dst[0] {
			c := m.YCbCrAt(x0+x, y)
			r, g, b := color.YCbCrToRGB(c.Y, c.Cb, c.Cr)
			set(x, float32(r), float32(g), float32(b))
		}
	default:
		const s = 255.0 / 65535.0
		for x := range dst[0] {
			c := color.NRGBA64Model.Convert(img.At(x0+x, y)).(color.NRGBA64)
			set(x, float32(float64(c.R)*s), float32(float64(c.G)*s), float32(float64(c.B)*s))
		}
	}
}
