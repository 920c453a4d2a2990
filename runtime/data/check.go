package data

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"

	"github.com/dnx-ml/dnx/runtime/imageio"
)

// Unreadable is an example whose image file cannot be decoded.
type Unreadable struct {
	// Index is the example's index in the dataset it was found in.
	Index int
	// Path is the image file ("" for sources without files).
	Path string
	// Err says what is wrong; it names the file.
	Err error
}

// CheckImages reads the header (format and dimensions, not the pixels) of every image of an
// ImageFolder dataset on workers goroutines (twice GOMAXPROCS when <= 0: opening files waits on
// the disk more than on the CPU) and returns the examples that cannot be decoded, in index order:
// a file that cannot be opened, is not a PNG or JPEG, or declares an empty image or one over
// imageio.MaxFileBytes, imageio.MaxPixels or imageio.MaxDecodedBytes (the checks imageio.Decode
// makes before decoding). Other sources hold no image files and return nil.
// The error is ctx's when it is cancelled.
//
// Checking headers is affordable where decoding every image is not: on 2,000 500x375 JPEGs (two
// cores, files in the page cache) the check took 50 ms and a full decode 2.4 s, as long as an
// epoch's data loading; a decode costs 2 ms for such a JPEG, 6 ms as PNG, 9 to 30 ms at 1024x768.
// A file whose header is sound but whose pixel data is cut short is found only by Load;
// LoaderOptions.SkipUnreadable covers it.
func CheckImages(ctx context.Context, d Dataset, workers int) ([]Unreadable, error) {
	f, ok := d.(*folder)
	if !ok {
		return nil, nil
	}
	if workers <= 0 {
		workers = 2 * runtime.GOMAXPROCS(0)
	}
	errs := make([]error, len(f.paths))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, len(f.paths)) {
		wg.Go(func() {
			for i := range next {
				errs[i] = checkImageHeader(f.paths[i])
			}
		})
	}
	for i := range f.paths {
		select {
		case next <- i:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var bad []Unreadable
	for i, err := range errs {
		if err != nil {
			bad = append(bad, Unreadable{Index: i, Path: f.paths[i], Err: err})
		}
	}
	return bad, nil
}

// checkImageHeader checks what imageio.Decode checks before decoding the pixels of path: the
// file's size, and its header (imageio.ReadHeader). Errors name the file.
func checkImageHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err // *fs.PathError: names the file
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() > imageio.MaxFileBytes {
		return fmt.Errorf("%s: %w: the file exceeds %d bytes", path, imageio.ErrImage, imageio.MaxFileBytes)
	}
	if _, err := imageio.ReadHeader(bufio.NewReader(f)); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// examplePath returns the image file of example i of d, or "" when d has no files.
func examplePath(d Dataset, i int) string {
	switch d := d.(type) {
	case *folder:
		if i >= 0 && i < len(d.paths) {
			return d.paths[i]
		}
	case *subset:
		if i >= 0 && i < len(d.idx) {
			return examplePath(d.parent, d.idx[i])
		}
	}
	return ""
}

// Without returns a view of d without the examples whose indices are in drop; the others keep
// their order, and the view keeps d's classes and image size.
func Without(d Dataset, drop []int) Dataset {
	if len(drop) == 0 {
		return d
	}
	gone := make(map[int]bool, len(drop))
	for _, i := range drop {
		gone[i] = true
	}
	keep := make([]int, 0, d.Len())
	for i := range d.Len() {
		if !gone[i] {
			keep = append(keep, i)
		}
	}
	return &subset{parent: d, idx: keep}
}

// BadLabel is an example whose label is outside the classes a model predicts.
type BadLabel struct {
	// File is the label file (TensorFiles' yPath).
	File string
	// Index is the example's index in the file, and Label its label.
	Index, Label int
}

// FirstLabelOutside returns the example of d with the lowest index in its label file whose label
// is not in [0, classes), for datasets whose labels come from a file: TensorFiles, and the views
// Split and Without make of it. ok is false when every label fits, and for the other sources,
// whose class count (NumClasses) follows from their layout.
func FirstLabelOutside(d Dataset, classes int) (bad BadLabel, ok bool) {
	var t *tensors
	var idx []int // indices into t.labels; nil for all of them
	for t == nil {
		switch v := d.(type) {
		case *tensors:
			t = v
		case *subset:
			if idx != nil {
				mapped := make([]int, len(idx))
				for j, i := range idx {
					mapped[j] = v.idx[i]
				}
				idx = mapped
			} else {
				idx = slices.Clone(v.idx)
			}
			d = v.parent
		default:
			return BadLabel{}, false
		}
	}
	if idx == nil {
		idx = make([]int, len(t.labels))
		for i := range idx {
			idx[i] = i
		}
	}
	slices.Sort(idx)
	for _, i := range idx {
		if y := t.labels[i]; y < 0 || y >= classes {
			return BadLabel{File: t.yPath, Index: i, Label: y}, true
		}
	}
	return BadLabel{}, false
}
