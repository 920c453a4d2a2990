package data

import (
	"math"
	"math/rand/v2"
)

// smallPad returns the padding of the pad-and-crop augmentation for h x w images,
// round(min(h, w)/8): 4 for CIFAR's 32 x 32, as in the standard CIFAR training recipe.
func smallPad(h, w int) int {
	return int(math.Round(float64(min(h, w)) / 8))
}

// padCropFlip returns the training augmentation of the CHW image src (c channels of h x w):
// src is padded with pad pixels of value fill[ch] on every side, an h x w window at a random
// offset (dy, dx) in [0, 2*pad]^2 is cropped, and the window is mirrored horizontally with
// probability 1/2. Output pixel (y, x) is therefore
//
//	src(y + dy - pad, x' + dx - pad),   x' = w-1-x if flipped, else x,
//
// or fill[ch] where that falls outside src. The random draws are dy, dx, then the flip.
func padCropFlip(src []float32, c, h, w, pad int, fill []float32, rng *rand.Rand) []float32 {
	dy := rng.IntN(2*pad+1) - pad
	dx := rng.IntN(2*pad+1) - pad
	flip := rng.IntN(2) == 1
	out := make([]float32, c*h*w)
	for ch := range c {
		plane, dst := src[ch*h*w:(ch+1)*h*w], out[ch*h*w:(ch+1)*h*w]
		for y := range h {
			sy := y + dy
			row := dst[y*w : (y+1)*w]
			if sy < 0 || sy >= h {
				for x := range row {
					row[x] = fill[ch]
				}
				continue
			}
			for x := range row {
				xx := x
				if flip {
					xx = w - 1 - x
				}
				if sx := xx + dx; sx >= 0 && sx < w {
					row[x] = plane[sy*w+sx]
				} else {
					row[x] = fill[ch]
				}
			}
		}
	}
	return out
}
