package data

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// hookDS wraps indexDS with a per-Load hook (delays, counting, failures).
type hookDS struct {
	indexDS
	hook func(i int) error
}

func (d hookDS) Load(i int, augment bool, rng *rand.Rand) (Example, error) {
	if err := d.hook(i); err != nil {
		return Example{}, err
	}
	return d.indexDS.Load(i, augment, rng)
}

// collect runs one epoch to its end and returns the batches.
func collect(t *testing.T, l *Loader, epoch int) []Batch {
	t.Helper()
	it := l.Epoch(context.Background(), epoch)
	defer it.Close()
	var out []Batch
	for b, ok := it.Next(); ok; b, ok = it.Next() {
		out = append(out, b)
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func mustLoader(t *testing.T, d Dataset, opts LoaderOptions) *Loader {
	t.Helper()
	l, err := NewLoader(d, opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLoaderBatches(t *testing.T) {
	d := indexDS{n: 10, classes: 3}
	for _, tc := range []struct {
		name     string
		opts     LoaderOptions
		wantSize []int
	}{
		{"ragged", LoaderOptions{Batch: 3}, []int{3, 3, 3, 1}},
		{"drop last", LoaderOptions{Batch: 3, DropLast: true}, []int{3, 3, 3}},
		{"exact", LoaderOptions{Batch: 5, DropLast: true}, []int{5, 5}},
		{"one batch", LoaderOptions{Batch: 64}, []int{10}},
		{"drop everything", LoaderOptions{Batch: 64, DropLast: true}, nil},
		{"shuffled drop last", LoaderOptions{Batch: 4, DropLast: true, Shuffle: true, Workers: 3, Prefetch: 1}, []int{4, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := mustLoader(t, d, tc.opts)
			if l.Batches() != len(tc.wantSize) {
				t.Errorf("Batches() = %d, want %d", l.Batches(), len(tc.wantSize))
			}
			var sizes, seen []int
			for _, b := range collect(t, l, 0) {
				sizes = append(sizes, len(b.Indices))
				if !b.X.Shape.Equal(tensor.Shape{len(b.Indices), 3, 1, 1}) || len(b.Y) != len(b.Indices) {
					t.Fatalf("X %v, %d labels for %d indices", b.X.Shape, len(b.Y), len(b.Indices))
				}
				x := tensor.Data[float32](b.X)
				for k, i := range b.Indices { // image k holds value i, label i mod 3
					if x[3*k] != float32(i) || x[3*k+2] != float32(i) || b.Y[k] != int64(i%3) {
						t.Fatalf("slot %d (index %d): image %v, label %d", k, i, x[3*k:3*k+3], b.Y[k])
					}
				}
				seen = append(seen, b.Indices...)
			}
			if !slices.Equal(sizes, tc.wantSize) {
				t.Errorf("batch sizes %v, want %v", sizes, tc.wantSize)
			}
			if !tc.opts.Shuffle && !slices.IsSorted(seen) {
				t.Errorf("unshuffled order %v", seen)
			}
			if len(slices.Compact(slices.Sorted(slices.Values(seen)))) != len(seen) {
				t.Errorf("an index repeats: %v", seen)
			}
		})
	}
}

// order returns the concatenated indices of an epoch.
func order(t *testing.T, l *Loader, epoch int) []int {
	var out []int
	for _, b := range collect(t, l, epoch) {
		out = append(out, b.Indices...)
	}
	return out
}

func TestLoaderShuffle(t *testing.T) {
	d := indexDS{n: 37, classes: 2}
	base := LoaderOptions{Batch: 5, Shuffle: true, Seed: 9}
	a := order(t, mustLoader(t, d, LoaderOptions{Batch: 5, Shuffle: true, Seed: 9, Workers: 1, Prefetch: 1}), 3)
	b := order(t, mustLoader(t, d, LoaderOptions{Batch: 5, Shuffle: true, Seed: 9, Workers: 8, Prefetch: 4}), 3)
	if !slices.Equal(a, b) {
		t.Errorf("epoch 3 differs between 1 and 8 workers:\n%v\n%v", a, b)
	}
	if got := slices.Sorted(slices.Values(a)); !slices.Equal(got, indicesOf(t, d)) {
		t.Errorf("epoch order is not a permutation of 0..36: %v", a)
	}
	if slices.IsSorted(a) {
		t.Error("shuffled order is sorted")
	}
	l := mustLoader(t, d, base)
	if slices.Equal(order(t, l, 3), order(t, l, 4)) {
		t.Error("epochs 3 and 4 have the same order")
	}
	base.Seed = 10
	if slices.Equal(order(t, mustLoader(t, d, base), 3), a) {
		t.Error("seeds 9 and 10 give the same order")
	}
}

// TestLoaderAugmentDeterministic checks that augmented batches depend on (Seed, epoch, index)
// only: not on the number of workers, the prefetch depth, nor the batch size.
func TestLoaderAugmentDeterministic(t *testing.T) {
	d := Shapes(24, 16, 5)
	byIndex := func(opts LoaderOptions, epoch int) map[int][]float32 {
		m := map[int][]float32{}
		plane := 3 * 16 * 16
		for _, b := range collect(t, mustLoader(t, d, opts), epoch) {
			x := tensor.Data[float32](b.X)
			for k, i := range b.Indices {
				m[i] = x[k*plane : (k+1)*plane]
				if b.Y[k] != int64(i%4) {
					t.Fatalf("index %d: label %d", i, b.Y[k])
				}
			}
		}
		return m
	}
	a := byIndex(LoaderOptions{Batch: 4, Shuffle: true, Augment: true, Seed: 1, Workers: 1}, 2)
	b := byIndex(LoaderOptions{Batch: 7, Shuffle: true, Augment: true, Seed: 1, Workers: 6, Prefetch: 5}, 2)
	c := byIndex(LoaderOptions{Batch: 4, Shuffle: true, Augment: true, Seed: 1, Workers: 1}, 3)
	same := 0
	for i := range 24 {
		if !slices.Equal(a[i], b[i]) {
			t.Errorf("index %d: augmentation depends on workers or batch size", i)
		}
		if slices.Equal(a[i], c[i]) {
			same++
		}
	}
	if same > 6 { // each image has 81*2 augmentations (size 16: pad 2 -> 25*2); a few repeats are expected
		t.Errorf("%d of 24 images augmented identically in epochs 2 and 3", same)
	}
}

func TestLoaderErrors(t *testing.T) {
	for _, opts := range []LoaderOptions{{Batch: 0}, {Batch: -1}, {Batch: 2, Workers: -1}, {Batch: 2, Prefetch: -2}} {
		if _, err := NewLoader(indexDS{n: 4, classes: 2}, opts); err == nil {
			t.Errorf("NewLoader(%+v) succeeded", opts)
		}
	}
	bad := errors.New("disk on fire")
	d := hookDS{indexDS{n: 20, classes: 2}, func(i int) error {
		if i == 13 {
			return bad
		}
		return nil
	}}
	it := mustLoader(t, d, LoaderOptions{Batch: 4, Workers: 3}).Epoch(context.Background(), 0)
	defer it.Close()
	n := 0
	for _, ok := it.Next(); ok; _, ok = it.Next() {
		n++
	}
	if n != 3 {
		t.Errorf("%d batches before the failing one, want 3", n)
	}
	wantErr(t, it.Err(), bad, "example 13")
	if _, ok := it.Next(); ok {
		t.Error("Next succeeded after an error")
	}
	// A dataset that returns images of the wrong size or labels out of range.
	for _, wrong := range []Dataset{wrongSize{indexDS{4, 2}}, wrongLabel{indexDS{4, 2}}} {
		it := mustLoader(t, wrong, LoaderOptions{Batch: 2}).Epoch(context.Background(), 0)
		if _, ok := it.Next(); ok {
			t.Errorf("%T: Next succeeded", wrong)
		}
		wantErr(t, it.Err(), ErrDataset, "example ")
		it.Close()
	}
}

type wrongSize struct{ indexDS }

func (wrongSize) Load(int, bool, *rand.Rand) (Example, error) {
	return Example{Image: []float32{1}}, nil
}

type wrongLabel struct{ indexDS }

func (wrongLabel) Load(int, bool, *rand.Rand) (Example, error) {
	return Example{Image: []float32{1, 2, 3}, Label: 2}, nil
}

// TestLoaderCloseAndCancel checks that Close and cancelling the context stop every goroutine,
// whether the workers are busy, blocked on a full prefetch queue, or done.
func TestLoaderCloseAndCancel(t *testing.T) {
	slow := hookDS{indexDS{n: 200, classes: 2}, func(int) error { time.Sleep(time.Millisecond); return nil }}
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, l *Loader)
	}{
		{"close after one batch", func(t *testing.T, l *Loader) {
			it := l.Epoch(context.Background(), 0)
			if _, ok := it.Next(); !ok {
				t.Fatal(it.Err())
			}
			it.Close()
			it.Close() // idempotent
			if _, ok := it.Next(); ok || it.Err() != nil {
				t.Errorf("after Close: Next ok %v, Err %v", ok, it.Err())
			}
		}},
		{"close before any batch", func(t *testing.T, l *Loader) {
			l.Epoch(context.Background(), 0).Close()
		}},
		{"close at the end", func(t *testing.T, l *Loader) {
			it := l.Epoch(context.Background(), 0)
			for _, ok := it.Next(); ok; _, ok = it.Next() {
			}
			it.Close()
			if it.Err() != nil {
				t.Error(it.Err())
			}
		}},
		{"cancel while consuming", func(t *testing.T, l *Loader) {
			ctx, cancel := context.WithCancel(context.Background())
			it := l.Epoch(ctx, 0)
			defer it.Close()
			if _, ok := it.Next(); !ok {
				t.Fatal(it.Err())
			}
			cancel()
			if _, ok := it.Next(); ok {
				t.Error("Next succeeded after cancel")
			}
			if !errors.Is(it.Err(), context.Canceled) {
				t.Errorf("Err = %v, want context.Canceled", it.Err())
			}
		}},
		{"cancel without Next or Close", func(t *testing.T, l *Loader) {
			ctx, cancel := context.WithCancel(context.Background())
			l.Epoch(ctx, 0)
			time.Sleep(5 * time.Millisecond)
			cancel() // the goroutines exit on their own
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := runtime.NumGoroutine()
			tc.run(t, mustLoader(t, slow, LoaderOptions{Batch: 8, Workers: 4, Prefetch: 2, Shuffle: true, Augment: true}))
			waitGoroutines(t, base)
		})
	}
}

// TestLoaderPrefetch checks, without timing, that loading runs ahead of the consumer and is
// bounded: before the first Next exactly Prefetch batches are loaded, and taking one batch lets
// exactly one more load.
func TestLoaderPrefetch(t *testing.T) {
	var loads atomic.Int32
	d := hookDS{indexDS{n: 40, classes: 2}, func(int) error { loads.Add(1); return nil }}
	const batch, prefetch = 2, 3
	it := mustLoader(t, d, LoaderOptions{Batch: batch, Workers: 2, Prefetch: prefetch}).Epoch(context.Background(), 0)
	defer it.Close()
	waitLoads := func(want int32) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for loads.Load() < want && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond) // give an unbounded loader the chance to overshoot
		if got := loads.Load(); got != want {
			t.Fatalf("%d examples loaded, want %d", got, want)
		}
	}
	waitLoads(prefetch * batch) // loaded ahead, before any Next
	for k := 1; k <= 3; k++ {
		if _, ok := it.Next(); !ok {
			t.Fatal(it.Err())
		}
		waitLoads(int32((prefetch + k) * batch))
	}
}

// TestLoaderOverlap times a slow dataset and a slow consumer: with loading overlapped, an epoch
// takes about max(load, compute), not their sum. The bound is loose (85% of the sum); the
// structural check is TestLoaderPrefetch.
func TestLoaderOverlap(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test")
	}
	const step = 10 * time.Millisecond
	const batches = 12
	d := hookDS{indexDS{n: 2 * batches, classes: 2}, func(int) error { time.Sleep(step / 2); return nil }}
	it := mustLoader(t, d, LoaderOptions{Batch: 2, Workers: 1, Prefetch: 2}).Epoch(context.Background(), 0)
	defer it.Close()
	start := time.Now()
	for _, ok := it.Next(); ok; _, ok = it.Next() {
		time.Sleep(step) // compute
	}
	elapsed := time.Since(start)
	sum := 2 * batches * step
	if elapsed > sum*85/100 {
		t.Errorf("epoch took %v; loading (%v) and compute (%v) did not overlap", elapsed, sum/2, sum/2)
	}
}
