// Package imageio turns PNG and JPEG images into the input tensors of image classifiers, with the
// standard ImageNet evaluation preprocessing (torchvision's Resize(round(S*256/224)),
// CenterCrop(S), ToTensor, Normalize(mean, std)):
//
//  1. decode, converting grayscale, paletted, CMYK and alpha images to RGB (alpha is dropped, as
//     PIL's convert("RGB") does);
//  2. resize so the shorter side becomes R = round(max(H, W) * 256/224), keeping the aspect ratio
//     (the longer side is floor(R * long/short), as torchvision computes it), with a bilinear
//     (triangle) filter that widens when downscaling, as PIL's BILINEAR does, so that large photos
//     are averaged rather than aliased;
//  3. crop the centre H x W window (offsets rounded half to even, as torchvision's CenterCrop);
//  4. scale to [0, 1] (x/255) and normalise each channel c: (x - mean[c]) / std[c];
//  5. lay the result out as float32 NCHW [1, 3, H, W].
//
// The arithmetic is float32 throughout: unlike PIL, the resized image is not rounded back to 8 bits,
// so results differ from a PIL pipeline by up to about 0.5/255 before normalisation.
package imageio

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // registers the JPEG decoder with image.Decode
	_ "image/png"  // registers the PNG decoder with image.Decode
	"io"
	"math"
	"os"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Limits on decoded images, which are user input: a small compressed file can declare a huge
// image, so the dimensions are checked before the pixels are decoded.
const (
	// MaxPixels is the largest width*height Decode accepts (about 100 megapixels).
	MaxPixels = 100 << 20
	// MaxDecodedBytes is the most memory the decoded pixels of one image may take (MaxPixels of
	// 8-bit RGBA): a file declaring 16-bit channels gets half the pixels.
	MaxDecodedBytes = 4 * MaxPixels
	// MaxFileBytes is the largest encoded image Decode reads.
	MaxFileBytes = 256 << 20
	// MaxSize is the largest output height or width Preprocess produces.
	MaxSize = 1 << 14
)

// ErrImage is wrapped by errors about image data: an unknown format, a corrupt file, dimensions
// over the limits.
var ErrImage = errors.New("invalid image")

// Normalization holds the per-channel (R, G, B) statistics subtracted and divided after scaling
// pixels to [0, 1].
type Normalization struct {
	Mean, Std [3]float32
}

// ImageNet returns the ImageNet statistics every torchvision classifier is trained with:
// mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225).
func ImageNet() Normalization {
	return Normalization{Mean: [3]float32{0.485, 0.456, 0.406}, Std: [3]float32{0.229, 0.224, 0.225}}
}

// Decode reads a PNG or JPEG image from r. The image's dimensions are read first and must not
// exceed MaxPixels.
func Decode(r io.Reader) (image.Image, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("%w: the file exceeds %d bytes", ErrImage, MaxFileBytes)
	}
	format, err := ReadHeader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrImage, format, err)
	}
	return img, nil
}

// ReadHeader reads an image's header from r and checks what Decode checks before decoding the
// pixels: a format dnx reads (PNG, JPEG), at most MaxPixels pixels and MaxDecodedBytes of decoded
// pixels. It returns the format.
func ReadHeader(r io.Reader) (string, error) {
	cfg, format, err := image.DecodeConfig(r)
	if err != nil {
		return "", fmt.Errorf("%w: %w (dnx reads PNG and JPEG)", ErrImage, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > MaxPixels {
		return "", fmt.Errorf("%w: %s of %dx%d pixels (the limit is %d pixels)", ErrImage, format, cfg.Width, cfg.Height, MaxPixels)
	}
	if n := DecodedBytes(cfg); n > MaxDecodedBytes {
		return "", fmt.Errorf("%w: %s of %dx%d pixels at %d bytes per pixel would take %d MiB decoded (the limit is %d MiB)",
			ErrImage, format, cfg.Width, cfg.Height, n/(int64(cfg.Width)*int64(cfg.Height)), n>>20, MaxDecodedBytes>>20)
	}
	return format, nil
}

// DecodedBytes returns the memory Go's decoders take for the pixels of an image of cfg: the
// bytes per pixel of its colour model (16-bit RGBA 8, 8-bit RGBA 4, YCbCr up to 3, 16-bit gray
// 2, gray and paletted 1) times the pixels.
func DecodedBytes(cfg image.Config) int64 {
	bpp := int64(4)
	switch cfg.ColorModel {
	case color.RGBA64Model, color.NRGBA64Model:
		bpp = 8
	case color.RGBAModel, color.NRGBAModel, color.CMYKModel:
		bpp = 4
	case color.YCbCrModel:
		bpp = 3
	case color.Gray16Model:
		bpp = 2
	case color.GrayModel, color.AlphaModel:
		bpp = 1
	default:
		if _, ok := cfg.ColorModel.(color.Palette); ok {
			bpp = 1
		}
	}
	return bpp * int64(cfg.Width) * int64(cfg.Height)
}

// ReadFile decodes the PNG or JPEG file at path. Errors name the file.
func ReadFile(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}

// LoadFile reads the image at path and preprocesses it for a height x width input.
func LoadFile(path string, height, width int, norm Normalization) (*tensor.Tensor, error) {
	img, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := Preprocess(img, height, width, norm)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// ResizeShort returns the shorter-side length images are resized to before a height x width
// centre crop: round(max(height, width) * 256/224), 256 for 224.
func ResizeShort(height, width int) int {
	return int(math.Round(float64(max(height, width)) * 256 / 224))
}

// Preprocess applies the package's pipeline (resize, centre crop, scale, normalise) to img and
// returns a float32 tensor of shape [1, 3, height, width].
func Preprocess(img image.Image, height, width int, norm Normalization) (*tensor.Tensor, error) {
	if height <= 0 || width <= 0 || height > MaxSize || width > MaxSize {
		return nil, fmt.Errorf("%w: output size %dx%d is outside 1..%d", ErrImage, height, width, MaxSize)
	}
	for c, s := range norm.Std {
		if !(s > 0) || math.IsInf(float64(s), 0) || math.IsNaN(float64(norm.Mean[c])) {
			return nil, fmt.Errorf("normalisation of channel %d: mean %g, std %g (std must be positive and finite)", c, norm.Mean[c], s)
		}
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("%w: empty image", ErrImage)
	}
	if int64(w)*int64(h) > MaxPixels {
		return nil, fmt.Errorf("%w: %dx%d pixels (the limit is %d)", ErrImage, w, h, MaxPixels)
	}

	rw, rh := ResizedSize(w, h, ResizeShort(height, width))
	// Centre crop offsets in the resized image; r >= max(height, width), so both fit.
	left := int(math.RoundToEven(float64(rw-width) / 2))
	top := int(math.RoundToEven(float64(rh-height) / 2))
	out := ResampleWindow(img, rw, rh, top, left, height, width, false, norm)
	return tensor.FromSlice(tensor.Shape{1, 3, height, width}, out), nil
}

// ResizedSize returns the size of a w x h image whose shorter side is resized to short, keeping
// the aspect ratio: the longer side becomes floor(short*long/shorter), as torchvision computes it.
func ResizedSize(w, h, short int) (rw, rh int) {
	rw, rh = short, short
	if w < h {
		rh = int(int64(short) * int64(h) / int64(w))
	} else if h < w {
		rw = int(int64(short) * int64(w) / int64(h))
	}
	return rw, rh
}

// ResampleWindow resizes img to rw x rh with the package's bilinear (triangle) filter and returns
// the height x width window whose top-left corner is (left, top) in the resized image, mirrored
// horizontally when flip is set, as 3 normalised CHW planes: v*(1/(255*std)) - mean/std. The
// window must lie inside the resized image. Preprocess uses it for the centre window; training
// augmentation (runtime/data) for random ones.
func ResampleWindow(img image.Image, rw, rh, top, left, height, width int, flip bool, norm Normalization) []float32 {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	// Resample only the crop window: each source row is converted to RGB and filtered
	// horizontally (w -> width samples) as it is read, so memory stays O(h*width), then the
	// columns are filtered vertically (h -> height samples).
	cx := coefficients(w, rw, left, width)
	cy := coefficients(h, rh, top, height)
	var row, tmp [3][]float32
	for c := range row {
		row[c] = make([]float32, w)
		tmp[c] = make([]float32, h*width)
	}
	for y := 0; y < h; y++ {
		rgbRow(img, b.Min.Y+y, row)
		for c := range row {
			for x, k := range cx {
				tmp[c][y*width+x] = k.apply(row[c], 1)
			}
		}
	}
	out := make([]float32, 3*height*width)
	for c := range tmp {
		dst := out[c*height*width : (c+1)*height*width]
		scale := 1 / (255 * norm.Std[c])
		shift := norm.Mean[c] / norm.Std[c]
		for y, k := range cy {
			for x := 0; x < width; x++ {
				sx := x
				if flip {
					sx = width - 1 - x
				}
				dst[y*width+sx] = k.apply(tmp[c][x:], width)*scale - shift
			}
		}
	}
	return out
}

// kernel is the filter of one output sample: weights for the input samples start, start+1, ...
type kernel struct {
	start   int
	weights []float32
}

// apply returns sum_j weights[j] * src[(start+j)*stride].
func (k kernel) apply(src []float32, stride int) float32 {
	var s float32
	for j, wt := range k.weights {
		s += wt * src[(k.start+j)*stride]
	}
	return s
}

// coefficients returns the filters for output samples first..first+n-1 of a resize from in to
// out samples. Output sample i is centred at input coordinate c = (i+0.5)*in/out; it averages
// the input samples j (centred at j+0.5) within the filter's support with triangle weights
//
//	w_j = max(0, 1 - |j + 0.5 - c| / f),   f = max(1, in/out),
//
// normalised to sum to 1. For upscaling (f = 1) this is plain bilinear interpolation with
// half-pixel centres and edge clamping; for downscaling the triangle widens to cover every input
// sample, which is what PIL's BILINEAR resize does.
func coefficients(in, out, first, n int) []kernel {
	scale := float64(in) / float64(out)
	f := max(scale, 1)
	ks := make([]kernel, n)
	for i := range ks {
		c := (float64(first+i) + 0.5) * scale
		lo := max(int(math.Floor(c-f+0.5)), 0)
		hi := min(int(math.Floor(c+f+0.5)), in)
		var ws []float64
		sum := 0.0
		for j := lo; j < hi; j++ {
			wt := 1 - math.Abs(float64(j)+0.5-c)/f
			if wt < 0 {
				wt = 0
			}
			ws = append(ws, wt)
			sum += wt
		}
		// Trim zero weights at both ends so apply does no useless work.
		for len(ws) > 0 && ws[0] == 0 {
			ws, lo = ws[1:], lo+1
		}
		for len(ws) > 0 && ws[len(ws)-1] == 0 {
			ws = ws[:len(ws)-1]
		}
		k := kernel{start: lo, weights: make([]float32, len(ws))}
		for j, wt := range ws {
			k.weights[j] = float32(wt / sum)
		}
		ks[i] = k
	}
	return ks
}

// rgbRow converts row y of img to 8-bit-scale float32 values (0..255) in dst's R, G and B rows.
// Colours are non-premultiplied: a transparent pixel keeps its colour, as PIL's convert("RGB")
// keeps it, and images with more than 8 bits per channel keep their precision.
func rgbRow(img image.Image, y int, dst [3][]float32) {
	x0 := img.Bounds().Min.X
	set := func(x int, r, g, b float32) { dst[0][x], dst[1][x], dst[2][x] = r, g, b }
	switch m := img.(type) { // fast paths for what the decoders commonly return
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
