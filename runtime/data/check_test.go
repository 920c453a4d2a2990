package data

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/runtime/imageio"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

func TestCheckImages(t *testing.T) {
	dir := t.TempDir()
	img := pattern8()
	writeImage(t, filepath.Join(dir, "a", "1.png"), img)
	writeImage(t, filepath.Join(dir, "a", "2.jpg"), img)
	writeFile(t, filepath.Join(dir, "a", "3.png"), []byte("\x89PNG\r\n\x1a\nnot really")) // bad header
	writeFile(t, filepath.Join(dir, "b", "4.jpg"), nil)                                   // empty
	writeImage(t, filepath.Join(dir, "b", "5.png"), img)
	var full bytes.Buffer
	if err := png.Encode(&full, img); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "b", "6.png"), full.Bytes()[:full.Len()-20]) // sound header, truncated data
	d, err := ImageFolder(dir, 8, imageNet())
	if err != nil {
		t.Fatal(err)
	}
	for _, workers := range []int{0, 1, 3} {
		bad, err := CheckImages(context.Background(), d, workers)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, u := range bad {
			if !errors.Is(u.Err, imageio.ErrImage) || !strings.Contains(u.Err.Error(), u.Path) || d.(*folder).paths[u.Index] != u.Path {
				t.Errorf("workers %d: %+v", workers, u)
			}
			got = append(got, filepath.Base(u.Path))
		}
		if want := []string{"3.png", "4.jpg"}; !slices.Equal(got, want) {
			t.Errorf("workers %d: unreadable %q, want %q (6.png's header is sound)", workers, got, want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := CheckImages(ctx, d, 2); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if bad, err := CheckImages(context.Background(), indexDS{n: 3, classes: 2}, 0); bad != nil || err != nil {
		t.Errorf("a source without files: %v, %v", bad, err)
	}

	// Without leaves them out and keeps the rest in order.
	w := Without(d, []int{2, 3})
	if w.Len() != 4 || w.NumClasses() != 2 || examplePath(w, 2) != filepath.Join(dir, "b", "5.png") {
		t.Errorf("Without: %d examples, %d classes, example 2 %s", w.Len(), w.NumClasses(), examplePath(w, 2))
	}
}

func TestFirstLabelOutside(t *testing.T) {
	dir := t.TempDir()
	xPath, yPath := filepath.Join(dir, "x.npy"), filepath.Join(dir, "y.npy")
	saveTensor(t, xPath, tensor.FromSlice(tensor.Shape{6, 3, 1, 1}, ramp(18)))
	saveTensor(t, yPath, tensor.FromSlice(tensor.Shape{6}, []int64{0, 1, 4, 2, 7, 1}))
	d, err := TensorFiles(xPath, yPath)
	if err != nil {
		t.Fatal(err)
	}
	train, val := Split(d, 0.5, 3)
	for _, tc := range []struct {
		name    string
		d       Dataset
		classes int
		want    BadLabel
		ok      bool
	}{
		{"all fit", d, 8, BadLabel{}, false},
		{"first of two", d, 3, BadLabel{yPath, 2, 4}, true},
		{"last", d, 5, BadLabel{yPath, 4, 7}, true},
		{"view", Without(d, []int{2}), 3, BadLabel{yPath, 4, 7}, true},
		{"other source", indexDS{n: 4, classes: 4}, 2, BadLabel{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := FirstLabelOutside(tc.d, tc.classes)
			if ok != tc.ok || got != tc.want {
				t.Errorf("FirstLabelOutside = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
	// The two halves of a split report indices in the file, and between them find both labels.
	var found []int
	for _, s := range []Dataset{train, val} {
		if bad, ok := FirstLabelOutside(s, 3); ok {
			found = append(found, bad.Index)
		}
	}
	if len(found) == 0 || !slices.ContainsFunc(found, func(i int) bool { return i == 2 || i == 4 }) {
		t.Errorf("split halves report %v", found)
	}
}

// unreadableDS fails to decode the examples in bad, as a truncated image file does.
type unreadableDS struct {
	indexDS
	bad []int
}

func (d unreadableDS) Load(i int, augment bool, rng *rand.Rand) (Example, error) {
	if slices.Contains(d.bad, i) {
		return Example{}, fmt.Errorf("img%d.png: %w: png: unexpected EOF", i, imageio.ErrImage)
	}
	return d.indexDS.Load(i, augment, rng)
}

func TestLoaderSkipUnreadable(t *testing.T) {
	d := unreadableDS{indexDS{n: 7, classes: 3}, []int{1, 4, 5}}
	l := mustLoader(t, d, LoaderOptions{Batch: 3, SkipUnreadable: true, Workers: 2})
	var got [][]int
	var skipped []int
	for _, b := range collect(t, l, 0) {
		if b.X.Shape[0] != len(b.Y) || len(b.Indices) != len(b.Y) {
			t.Fatalf("batch of %v for %d labels", b.X.Shape, len(b.Y))
		}
		for r, i := range b.Indices {
			if v := tensor.Data[float32](b.X)[3*r]; v != float32(i) || b.Y[r] != int64(i%3) {
				t.Errorf("row %d holds example %g label %d, want %d", r, v, b.Y[r], i)
			}
		}
		got = append(got, b.Indices)
		for _, u := range b.Skipped {
			if !errors.Is(u.Err, imageio.ErrImage) {
				t.Errorf("skipped %+v", u)
			}
			skipped = append(skipped, u.Index)
		}
	}
	// Batches [0 1 2] [3 4 5] [6]: example 1 leaves the first, 4 and 5 the second.
	if want := [][]int{{0, 2}, {3}, {6}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("batches %v, want %v", got, want)
	}
	if !slices.Equal(skipped, []int{1, 4, 5}) {
		t.Errorf("skipped %v, want [1 4 5]", skipped)
	}

	// Without the option the first unreadable example ends the epoch; other errors always do.
	it := mustLoader(t, d, LoaderOptions{Batch: 3}).Epoch(context.Background(), 0)
	for _, ok := it.Next(); ok; _, ok = it.Next() {
	}
	if err := it.Err(); !errors.Is(err, imageio.ErrImage) {
		t.Errorf("without SkipUnreadable: %v", err)
	}
	other := hookDS{indexDS{n: 4, classes: 2}, func(i int) error {
		if i == 2 {
			return errors.New("disk on fire")
		}
		return nil
	}}
	it = mustLoader(t, other, LoaderOptions{Batch: 2, SkipUnreadable: true}).Epoch(context.Background(), 0)
	for _, ok := it.Next(); ok; _, ok = it.Next() {
	}
	if err := it.Err(); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("other error with SkipUnreadable: %v", err)
	}

	// A batch whose examples all fail comes out empty.
	all := unreadableDS{indexDS{n: 2, classes: 2}, []int{0, 1}}
	bs := collect(t, mustLoader(t, all, LoaderOptions{Batch: 2, SkipUnreadable: true}), 0)
	if len(bs) != 1 || len(bs[0].Y) != 0 || bs[0].X.Shape[0] != 0 || len(bs[0].Skipped) != 2 {
		t.Errorf("all skipped: %+v", bs)
	}
}
