package data

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/dnx-ml/dnx/runtime/imageio"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Batch is a batch of examples, in the epoch's order.
type Batch struct {
	// X holds the images, float32 [B, 3, H, W]. Each Batch has its own memory, which the
	// caller owns: it stays valid after later calls to Next.
	X *tensor.Tensor
	// Y holds the labels.
	Y []int64
	// Indices holds the dataset index of each example.
	Indices []int
	// Skipped lists the examples left out of the batch because their image could not be decoded
	// (LoaderOptions.SkipUnreadable), in epoch order; nil when none was. A batch whose examples
	// were all skipped has no rows.
	Skipped []Unreadable
}

// LoaderOptions configure a Loader.
type LoaderOptions struct {
	// Batch is the number of examples per batch (> 0).
	Batch int
	// Shuffle visits the examples in a random order that depends on (Seed, epoch) only.
	Shuffle bool
	// Augment applies the dataset's training augmentation, with a generator seeded from
	// (Seed, epoch, index) for every example.
	Augment bool
	// DropLast drops the last batch of an epoch when it is smaller than Batch.
	DropLast bool
	// Seed seeds the shuffling and the augmentation.
	Seed int64
	// Workers is the number of goroutines that load examples; 0 means runtime.GOMAXPROCS(0).
	Workers int
	// Prefetch is the number of batches loaded ahead of the consumer; 0 means 2.
	Prefetch int
	// SkipUnreadable leaves out of its batch an example whose Load fails with an error wrapping
	// imageio.ErrImage (a corrupt, truncated or unsupported image file) instead of ending the
	// epoch: the batch comes out smaller and lists the example in Batch.Skipped. Other errors
	// still end the epoch. The same files fail in every epoch, so the batches still depend only
	// on (Seed, epoch).
	SkipUnreadable bool
}

// Loader turns a Dataset into batches, one epoch at a time.
type Loader struct {
	d    Dataset
	opts LoaderOptions
	h, w int
}

// NewLoader returns a Loader over d. It checks the options (Batch > 0, Workers and Prefetch not
// negative) and fills in the defaults.
func NewLoader(d Dataset, opts LoaderOptions) (*Loader, error) {
	if opts.Batch <= 0 {
		return nil, fmt.Errorf("data loader: batch size %d, want > 0", opts.Batch)
	}
	if opts.Workers < 0 || opts.Prefetch < 0 {
		return nil, fmt.Errorf("data loader: %d workers, prefetch %d; neither may be negative", opts.Workers, opts.Prefetch)
	}
	if opts.Workers == 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.Prefetch == 0 {
		opts.Prefetch = 2
	}
	h, w := d.Size()
	if h <= 0 || w <= 0 {
		return nil, fmt.Errorf("data loader: %w: image size %dx%d", ErrDataset, h, w)
	}
	return &Loader{d: d, opts: opts, h: h, w: w}, nil
}

// Batches returns the number of batches per epoch: ceil(N/Batch), or floor(N/Batch) with DropLast.
func (l *Loader) Batches() int {
	n, b := l.d.Len(), l.opts.Batch
	if l.opts.DropLast {
		return n / b
	}
	return (n + b - 1) / b
}

// order returns the dataset indices of an epoch, in visiting order: a permutation drawn from
// (Seed, epoch) when shuffling, 0..N-1 otherwise.
func (l *Loader) order(epoch int) []int {
	n := l.d.Len()
	if l.opts.Shuffle {
		return newRand(l.opts.Seed, domainShuffle, uint64(epoch), 0).Perm(n)
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// pending is a batch being loaded: workers fill it and the last one closes done.
type pending struct {
	batch     Batch
	remaining atomic.Int32
	done      chan struct{}
	errOnce   sync.Once
	err       error
	mu        sync.Mutex
	skipped   map[int]Unreadable // by position in the batch
}

// fail records the first error of the batch.
func (p *pending) fail(err error) { p.errOnce.Do(func() { p.err = err }) }

// skip records that the example at position pos is left out of the batch.
func (p *pending) skip(pos int, u Unreadable) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.skipped == nil {
		p.skipped = map[int]Unreadable{}
	}
	p.skipped[pos] = u
}

// result returns the batch without its skipped examples. It is called once every example is
// done (after done is closed).
func (p *pending) result() Batch {
	if len(p.skipped) == 0 {
		return p.batch
	}
	b := p.batch
	n := len(b.Y) - len(p.skipped)
	shape := b.X.Shape.Clone()
	shape[0] = n
	src := tensor.Data[float32](b.X)
	size := len(src) / len(b.Y) // 3*H*W
	out := Batch{X: tensor.New(tensor.Float32, shape), Y: make([]int64, 0, n), Indices: make([]int, 0, n)}
	dst := tensor.Data[float32](out.X)
	for pos, i := range b.Indices {
		if u, ok := p.skipped[pos]; ok {
			out.Skipped = append(out.Skipped, u)
			continue
		}
		copy(dst[len(out.Y)*size:], src[pos*size:(pos+1)*size])
		out.Y = append(out.Y, b.Y[pos])
		out.Indices = append(out.Indices, i)
	}
	return out
}

// job asks a worker to load example pos of a pending batch.
type job struct {
	p   *pending
	pos int
}

// Iter yields the batches of one epoch. Next, Err and Close must be called from one goroutine.
type Iter struct {
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	batches chan *pending
	err     error
	done    bool
}

// Epoch starts loading epoch epoch and returns its iterator. Workers load examples into at most
// Prefetch batches ahead of the consumer, so loading overlaps whatever the caller does between
// calls to Next. The batches depend only on the dataset, the options and epoch: not on the number of
// workers nor on timing. Cancelling ctx stops the loading; Close must be called to release the
// workers when the iterator is abandoned before its end (it is harmless after).
func (l *Loader) Epoch(ctx context.Context, epoch int) *Iter {
	ctx, cancel := context.WithCancel(ctx)
	it := &Iter{ctx: ctx, cancel: cancel, batches: make(chan *pending, l.opts.Prefetch)}
	jobs := make(chan job, l.opts.Workers)
	for range l.opts.Workers {
		it.wg.Go(func() { l.work(ctx, epoch, jobs) })
	}
	it.wg.Go(func() { l.dispatch(ctx, epoch, it.batches, jobs) })
	return it
}

// dispatch creates the epoch's batches in order and hands their examples to the workers. A batch
// enters the batches channel (capacity Prefetch) before its examples are dispatched, so the
// channel's capacity bounds the number of batches loaded ahead.
func (l *Loader) dispatch(ctx context.Context, epoch int, batches chan<- *pending, jobs chan<- job) {
	defer close(jobs)
	defer close(batches)
	order := l.order(epoch)
	b := l.opts.Batch
	for j := range l.Batches() {
		// A copy, so that the caller may keep or modify Batch.Indices freely.
		idx := slices.Clone(order[j*b : min((j+1)*b, len(order))])
		p := &pending{done: make(chan struct{})}
		p.batch = Batch{
			X:       tensor.New(tensor.Float32, tensor.Shape{len(idx), 3, l.h, l.w}),
			Y:       make([]int64, len(idx)),
			Indices: idx,
		}
		p.remaining.Store(int32(len(idx)))
		select {
		case batches <- p:
		case <-ctx.Done():
			return
		}
		for pos := range idx {
			select {
			case jobs <- job{p, pos}:
			case <-ctx.Done():
				return
			}
		}
	}
}

// work loads examples until the jobs run out or ctx is cancelled.
func (l *Loader) work(ctx context.Context, epoch int, jobs <-chan job) {
	size := 3 * l.h * l.w
	for {
		var jb job
		select {
		case <-ctx.Done():
			return
		case j, ok := <-jobs:
			if !ok {
				return
			}
			jb = j
		}
		p, i := jb.p, jb.p.batch.Indices[jb.pos]
		rng := newRand(l.opts.Seed, domainAugment, uint64(epoch), uint64(i))
		ex, err := l.d.Load(i, l.opts.Augment, rng)
		switch {
		case err != nil && l.opts.SkipUnreadable && errors.Is(err, imageio.ErrImage):
			p.skip(jb.pos, Unreadable{Index: i, Path: examplePath(l.d, i), Err: err})
		case err != nil:
			p.fail(fmt.Errorf("example %d: %w", i, err))
		case len(ex.Image) != size:
			p.fail(fmt.Errorf("example %d: %w: %d values, want 3*%d*%d", i, ErrDataset, len(ex.Image), l.h, l.w))
		case ex.Label < 0 || ex.Label >= l.d.NumClasses():
			p.fail(fmt.Errorf("example %d: %w: label %d is outside [0, %d)", i, ErrDataset, ex.Label, l.d.NumClasses()))
		default:
			copy(tensor.Data[float32](p.batch.X)[jb.pos*size:], ex.Image)
			p.batch.Y[jb.pos] = int64(ex.Label)
		}
		if p.remaining.Add(-1) == 0 {
			close(p.done)
		}
	}
}

// Next returns the next batch, or false at the end of the epoch, on a load error, after ctx is
// cancelled or after Close; Err tells which.
func (it *Iter) Next() (Batch, bool) {
	if it.done {
		return Batch{}, false
	}
	if it.ctx.Err() == nil {
		select {
		case p, ok := <-it.batches:
			if !ok { // the epoch is over
				it.stop(nil)
				return Batch{}, false
			}
			select {
			case <-p.done:
				if p.err != nil {
					it.stop(p.err)
					return Batch{}, false
				}
				return p.result(), true
			case <-it.ctx.Done():
			}
		case <-it.ctx.Done():
		}
	}
	it.stop(it.ctx.Err())
	return Batch{}, false
}

// stop ends the iteration with err (nil at the end of the epoch) and waits for the goroutines.
func (it *Iter) stop(err error) {
	it.err = err
	it.done = true
	it.cancel()
	it.wg.Wait()
}

// Err returns the error that ended the iteration: a load error (naming the example and, for file
// sources, the file), or the context's error if it was cancelled; nil at the end of the epoch or
// after Close.
func (it *Iter) Err() error { return it.err }

// Close stops the workers and waits for them to exit. It is safe to call more than once and after
// the end of the epoch; Next returns false afterwards.
func (it *Iter) Close() {
	if !it.done {
		it.err = nil
		it.done = true
		it.cancel()
	}
	it.wg.Wait()
}
