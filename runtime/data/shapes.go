package data

import (
	"math/rand/v2"

	"github.com/dnx-ml/dnx/runtime/imageio"
)

// Shapes size limits: below 8 pixels the shapes are not recognisable.
const (
	shapesMinSize = 8
	shapesMaxSize = 1024
)

// shapeClasses names the Shapes classes, by label.
func shapeClasses() []string {
	return []string{"red circle", "green square", "blue triangle", "yellow cross"}
}

// shapes is the Dataset of Shapes.
type shapes struct {
	n, size int
	seed    int64
	table   *[3][256]float32
}

// Shapes returns n synthetic size x size images in 4 balanced classes (label i mod 4): a red
// circle, a green square, a blue triangle and a yellow cross, each of random position and size
// (radius 15-30% of the side, fully inside the image) and slightly jittered colour, on a grey
// background of random brightness with per-pixel noise. The noise never makes a background pixel
// saturated, so the class is visible in every image. Images are rendered on demand from
// (seed, i), normalised with imageio.ImageNet(); the training augmentation pads round(size/8)
// black pixels, crops and flips (every shape is symmetric under the flip, so labels stay valid).
// n < 0 counts as 0; size is clamped to [8, 1024].
func Shapes(n, size int, seed int64) Dataset {
	return &shapes{n: max(n, 0), size: min(max(size, shapesMinSize), shapesMaxSize), seed: seed, table: byteTable(imageio.ImageNet())}
}

func (d *shapes) Len() int             { return d.n }
func (d *shapes) NumClasses() int      { return 4 }
func (d *shapes) ClassNames() []string { return shapeClasses() }
func (d *shapes) Size() (h, w int)     { return d.size, d.size }

// Load renders image i.
func (d *shapes) Load(i int, augment bool, rng *rand.Rand) (Example, error) {
	if err := checkIndex(i, d.n); err != nil {
		return Example{}, err
	}
	if err := checkRand(augment, rng); err != nil {
		return Example{}, err
	}
	label := i % 4
	img := decodeBytes(renderShape(d.size, label, newRand(d.seed, domainShapes, uint64(i), 0)), d.table)
	if augment {
		fill := []float32{d.table[0][0], d.table[1][0], d.table[2][0]}
		img = padCropFlip(img, 3, d.size, d.size, smallPad(d.size, d.size), fill, rng)
	}
	return Example{Image: img, Label: label}, nil
}

// renderShape draws the shape of class label on a noisy grey background and returns 8-bit CHW
// pixels. Pixel (x, y) is inside the shape when its centre (x+0.5, y+0.5), relative to the shape's
// centre as (dx, dy) in units of the radius r, satisfies
//
//	circle:   dx² + dy² <= 1
//	square:   |dx| <= 0.85 and |dy| <= 0.85
//	triangle: -1 <= dy <= 0.8 and |dx| <= (dy + 1) / 1.8   (apex up)
//	cross:    (|dx| <= 1 and |dy| <= 0.3) or (|dy| <= 1 and |dx| <= 0.3)
func renderShape(size, label int, rng *rand.Rand) []byte {
	// Background: grey level g in [40, 200] plus noise in [-30, 30] per pixel and channel, so
	// that channels differ by at most 60 there, while shape colours differ by at least 120.
	g := 40 + rng.IntN(161)
	r := (0.15 + 0.15*rng.Float64()) * float64(size)
	cx := r + rng.Float64()*(float64(size)-2*r)
	cy := r + rng.Float64()*(float64(size)-2*r)
	hi := func() int { return 200 + rng.IntN(56) } // 200..255
	lo := func() int { return rng.IntN(61) }       // 0..60
	var col [3]int
	switch label {
	case 0:
		col = [3]int{hi(), lo(), lo()}
	case 1:
		col = [3]int{lo(), hi(), lo()}
	case 2:
		col = [3]int{lo(), lo(), hi()}
	default:
		col = [3]int{hi(), hi(), lo()}
	}
	plane := size * size
	px := make([]byte, 3*plane)
	for y := range size {
		for x := range size {
			dx := (float64(x) + 0.5 - cx) / r
			dy := (float64(y) + 0.5 - cy) / r
			in := false
			switch label {
			case 0:
				in = dx*dx+dy*dy <= 1
			case 1:
				in = abs(dx) <= 0.85 && abs(dy) <= 0.85
			case 2:
				in = dy >= -1 && dy <= 0.8 && abs(dx) <= (dy+1)/1.8
			default:
				in = (abs(dx) <= 1 && abs(dy) <= 0.3) || (abs(dy) <= 1 && abs(dx) <= 0.3)
			}
			for c := range 3 {
				var v int
				if in {
					v = col[c] + rng.IntN(21) - 10
				} else {
					v = g + rng.IntN(61) - 30
				}
				px[c*plane+y*size+x] = byte(min(max(v, 0), 255))
			}
		}
	}
	return px
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
