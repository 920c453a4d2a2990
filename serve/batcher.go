package serve

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dnx-ml/dnx"
)

// pending is one request waiting in a batcher's queue.
type pending struct {
	ctx    context.Context
	inputs map[string]*dnx.Tensor
	// rows is the request's own batch size (its inputs' first dim) when the model is batchable,
	// else 1; key identifies the input shapes without that dim: only requests with equal keys
	// can be stacked.
	rows     int
	key      string
	enqueued time.Time
	done     chan result // buffered: the batcher never waits for a requester that gave up
}

type result struct {
	outputs map[string]*dnx.Tensor
	timing  timing
	err     error
}

// batcher runs a model's requests on its sessions. Each session (instance) has one executor
// goroutine that takes a request from the shared queue, gathers more that arrive within
// MaxQueueDelay (until PreferredBatch rows, never past MaxBatch) when the model is batchable,
// runs them as one batch and gives each request its own rows of the outputs.
//
// The queue is a buffered channel of MaxQueue requests: submit never blocks on it, so a full
// queue is refused at once (503) and memory stays bounded whatever the load.
type batcher struct {
	model *servedModel
	cfg   *Config
	met   *metrics
	queue chan *pending
	// quit is closed by stop; the executors then drain the queue, answering with errStopped.
	quit chan struct{}
	wg   sync.WaitGroup
	// runCtx is the context of runs that serve several requests: no single requester's
	// cancellation may stop them. It is cancelled by stop.
	runCtx    context.Context
	cancelRun context.CancelFunc

	// inline is set when the model is not batched: each request then runs on its own goroutine
	// with an idle session, and never hops to an executor goroutine and back (two goroutine
	// wake-ups, tens of microseconds each on a virtual machine: a third of the server's own
	// time for a small model). inflight counts the requests waiting for a session or running,
	// bounded by MaxQueue plus the instances as the queue and the executors bound them;
	// waiting, the ones waiting.
	inline            bool
	idle              chan *dnx.Session
	inflight, waiting atomic.Int64
}

func newBatcher(m *servedModel, cfg *Config, met *metrics) *batcher {
	ctx, cancel := context.WithCancel(context.Background())
	b := &batcher{model: m, cfg: cfg, met: met, queue: make(chan *pending, cfg.MaxQueue),
		quit: make(chan struct{}), runCtx: ctx, cancelRun: cancel}
	if !m.batchable || cfg.MaxBatch <= 1 {
		b.inline = true
		b.idle = make(chan *dnx.Session, len(m.sessions))
		for _, s := range m.sessions {
			b.idle <- s
		}
		return b
	}
	for _, s := range m.sessions {
		b.wg.Add(1)
		go b.execute(s)
	}
	return b
}

// queuedRequests returns the number of requests waiting to run.
func (b *batcher) queuedRequests() int {
	if b.inline {
		return int(b.waiting.Load())
	}
	return len(b.queue)
}

// runInline runs one request on an idle session in the caller's goroutine (see batcher.inline).
func (b *batcher) runInline(ctx context.Context, inputs map[string]*dnx.Tensor) (result, error) {
	defer b.inflight.Add(-1)
	if n := b.inflight.Add(1); n > int64(b.cfg.MaxQueue)+int64(cap(b.idle)) {
		return result{}, fmt.Errorf("model %s: %w (%d requests waiting)", b.model.name, errQueueFull, b.cfg.MaxQueue)
	}
	enqueued := time.Now()
	b.met.queued(b.model, 1)
	b.waiting.Add(1)
	var sess *dnx.Session
	select {
	case sess = <-b.idle:
	case <-ctx.Done():
	case <-b.quit:
	}
	b.waiting.Add(-1)
	b.met.queued(b.model, -1)
	if sess == nil {
		if ctx.Err() != nil {
			return result{}, context.Cause(ctx)
		}
		return result{}, errStopped
	}
	defer func() { b.idle <- sess }()
	if b.cfg.beforeRun != nil {
		b.cfg.beforeRun()
	}
	start := time.Now()
	outputs, err := sess.Run(ctx, inputs)
	end := time.Now()
	b.met.execution(b.model)
	if err != nil {
		return result{}, fmt.Errorf("model %s: %w", b.model.name, err)
	}
	return result{outputs: outputs, timing: timing{queue: start.Sub(enqueued), infer: end.Sub(start)}}, nil
}

// stop ends the executors once the requests already queued are answered. The server calls it
// after the listeners have finished their requests, so in practice the queue is empty. Inline
// requests still waiting for a session are answered with errStopped.
func (b *batcher) stop() {
	close(b.quit)
	b.wg.Wait()
	b.cancelRun()
}

// submit queues a request and waits for its result, or for ctx to end (the client went away or
// its time is up: the executor then skips it, or finishes the batch holding it and drops its
// rows). A full queue is errQueueFull at once.
func (b *batcher) submit(ctx context.Context, inputs map[string]*dnx.Tensor, rows int, key string) (result, error) {
	if b.inline {
		return b.runInline(ctx, inputs)
	}
	p := &pending{ctx: ctx, inputs: inputs, rows: rows, key: key, enqueued: time.Now(), done: make(chan result, 1)}
	select {
	case b.queue <- p:
	default:
		return result{}, fmt.Errorf("model %s: %w (%d requests waiting)", b.model.name, errQueueFull, cap(b.queue))
	}
	b.met.queued(b.model, 1)
	select {
	case r := <-p.done:
		return r, r.err
	case <-ctx.Done():
		return result{}, context.Cause(ctx)
	}
}

// execute is one instance's executor loop.
func (b *batcher) execute(sess *dnx.Session) {
	defer b.wg.Done()
	var carry *pending // a request taken from the queue that did not fit the last batch
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-b.queue:
			case <-b.quit:
				b.drain()
				return
			}
		}
		b.met.queued(b.model, -1)
		if first.ctx.Err() != nil {
			first.done <- result{err: context.Cause(first.ctx)}
			continue
		}
		batch, rows := []*pending{first}, first.rows
		if b.model.batchable && rows < b.cfg.PreferredBatch && rows < b.cfg.MaxBatch {
			batch, _, carry = b.gather(batch, rows)
		}
		for len(batch) > 0 {
			n, nrows := nextGroup(batch, b.cfg.MaxBatch)
			b.run(sess, batch[:n], nrows)
			batch = batch[n:]
		}
	}
}

// nextGroup returns how many requests from the front of a gathered batch run together, and
// their rows. A session compiles one plan per batch size, so batches run at the sizes of
// batchSizes (powers of two, and maxBatch) to bound the plans kept; rather than padding a batch
// up to the next such size, the batch is cut into groups of those sizes, run one after the
// other: 7 single-row requests run as 4, 2 and 1, not as 8 with a row of zeros. Padding
// measured up to 37% of the work at an average batch of 4.6 (DenseNet-121, two instances), and
// the results are the same either way (an image's result does not depend on its batch:
// TestBatchInvariance). The front requests are taken while their rows fit the largest size
// that the batch's rows reach; requests of several rows may still need padding (paddedRows).
func nextGroup(batch []*pending, maxBatch int) (n, rows int) {
	total := 0
	for _, p := range batch {
		total += p.rows
	}
	size := 1
	for size*2 <= total && size*2 < maxBatch {
		size *= 2
	}
	if total >= maxBatch {
		size = maxBatch
	}
	for n < len(batch) && (n == 0 || rows+batch[n].rows <= size) {
		rows += batch[n].rows
		n++
	}
	return n, rows
}

// gather adds queued requests to batch for up to MaxQueueDelay, until it holds PreferredBatch
// rows. A request whose shapes differ or whose rows would pass MaxBatch is returned as carry, to
// start the next batch.
func (b *batcher) gather(batch []*pending, rows int) ([]*pending, int, *pending) {
	timer := time.NewTimer(b.cfg.MaxQueueDelay)
	defer timer.Stop()
	for rows < b.cfg.PreferredBatch {
		select {
		case p := <-b.queue:
			if p.ctx.Err() != nil {
				b.met.queued(b.model, -1)
				p.done <- result{err: context.Cause(p.ctx)}
				continue
			}
			if p.key != batch[0].key || rows+p.rows > b.cfg.MaxBatch {
				// Still counted as pending: execute counts it off when it starts the next batch.
				return batch, rows, p
			}
			b.met.queued(b.model, -1)
			batch = append(batch, p)
			rows += p.rows
		case <-timer.C:
			return batch, rows, nil
		case <-b.quit:
			return batch, rows, nil
		}
	}
	return batch, rows, nil
}

// drain answers what is left in the queue once the batcher stops.
func (b *batcher) drain() {
	for {
		select {
		case p := <-b.queue:
			b.met.queued(b.model, -1)
			p.done <- result{err: errStopped}
		default:
			return
		}
	}
}

// run executes one batch and answers each of its requests.
func (b *batcher) run(sess *dnx.Session, batch []*pending, rows int) {
	if b.cfg.beforeRun != nil {
		b.cfg.beforeRun()
	}
	start := time.Now()
	ctx := b.runCtx
	inputs := batch[0].inputs
	if len(batch) == 1 {
		// One requester: its disconnection or timeout can stop the run.
		ctx = batch[0].ctx
	} else {
		var err error
		if inputs, err = stack(batch, rows, paddedRows(rows, b.cfg.MaxBatch)); err != nil {
			fail(batch, err)
			return
		}
	}
	inferStart := time.Now()
	outputs, err := sess.Run(ctx, inputs)
	inferEnd := time.Now()
	b.met.execution(b.model)
	if err != nil {
		fail(batch, fmt.Errorf("model %s: %w", b.model.name, err))
		return
	}
	if len(batch) == 1 {
		batch[0].done <- result{outputs: outputs, timing: timing{queue: start.Sub(batch[0].enqueued), infer: inferEnd.Sub(inferStart)}}
		return
	}
	parts, err := split(outputs, batch, paddedRows(rows, b.cfg.MaxBatch))
	outEnd := time.Now()
	if err != nil {
		fail(batch, fmt.Errorf("model %s: %w", b.model.name, err))
		return
	}
	for i, p := range batch {
		p.done <- result{outputs: parts[i], timing: timing{
			queue: start.Sub(p.enqueued), input: inferStart.Sub(start),
			infer: inferEnd.Sub(inferStart), output: outEnd.Sub(inferEnd)}}
	}
}

func fail(batch []*pending, err error) {
	for _, p := range batch {
		p.done <- result{err: err}
	}
}

// paddedRows returns the batch size a gathered batch of rows rows runs at: the next power of two,
// at most maxBatch. A session compiles (and keeps the memory of) one plan per batch size, so
// running every size from 2 to MaxBatch would grow the server by MaxBatch activation arenas
// (DenseNet-121 at --max-batch 16: 0.9 GiB more RSS, measured); powers of two bound that at
// log2(MaxBatch)+1 plans. nextGroup cuts batches of single-row requests to those sizes, so
// padding is left for groups of multi-row requests whose rows do not add up to one.
func paddedRows(rows, maxBatch int) int {
	p := 1
	for p < rows {
		p *= 2
	}
	return max(rows, min(p, maxBatch))
}

// stack concatenates the batch's inputs (rows rows in all) along their first dim, then zero rows
// up to total: padding whose outputs split drops. The models served are batch-independent per
// row (inference), so padding changes no request's result.
func stack(batch []*pending, rows, total int) (map[string]*dnx.Tensor, error) {
	out := make(map[string]*dnx.Tensor, len(batch[0].inputs))
	parts := make([]*dnx.Tensor, len(batch), len(batch)+1)
	for name, first := range batch[0].inputs {
		parts = parts[:len(batch)]
		for i, p := range batch {
			parts[i] = p.inputs[name]
		}
		if total > rows {
			shape := first.Shape()
			shape[0] = total - rows
			n := first.DType().ByteSize()
			for _, d := range shape {
				n *= d
			}
			pad, err := dnx.TensorFromBytes(first.DType(), shape, make([]byte, n))
			if err != nil {
				return nil, fmt.Errorf("padding input %q: %w", name, err)
			}
			parts = append(parts, pad)
		}
		t, err := dnx.Batch(parts...)
		if err != nil {
			return nil, fmt.Errorf("batching input %q: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// split gives each request of the batch its rows of every output.
func split(outputs map[string]*dnx.Tensor, batch []*pending, rows int) ([]map[string]*dnx.Tensor, error) {
	parts := make([]map[string]*dnx.Tensor, len(batch))
	for i := range parts {
		parts[i] = make(map[string]*dnx.Tensor, len(outputs))
	}
	for name, t := range outputs {
		if s := t.Shape(); len(s) == 0 || s[0] != rows {
			return nil, fmt.Errorf("output %q of a batch of %d has shape %v: its first dim is not the batch, so it cannot be split", name, rows, s)
		}
		off := 0
		for i, p := range batch {
			r, err := t.Rows(off, off+p.rows)
			if err != nil {
				return nil, fmt.Errorf("splitting output %q: %w", name, err)
			}
			parts[i][name] = r
			off += p.rows
		}
	}
	return parts, nil
}

// batchKey describes a request's input shapes without their first dim, in name order: requests
// with equal keys can be stacked.
func batchKey(inputs map[string]*dnx.Tensor) string {
	var sb strings.Builder
	for _, name := range sortedNames(inputs) {
		s := inputs[name].Shape()
		fmt.Fprintf(&sb, "%s:%v;", name, s[1:])
	}
	return sb.String()
}

func sortedNames(m map[string]*dnx.Tensor) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}
