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

// batcher runs a model's requests on its sessions (instances). A session runs one batch at a
// time; idle holds the sessions free to take one.
//
// A request that finds a session idle, no request waiting and no other request of the model
// arriving runs at once on its own goroutine (the fast path of a lone request): no hand-off to
// an executor goroutine and back, and no wait for others. Otherwise it
// goes to the shared queue, where one executor goroutine per session takes it, waits for a free
// session, gathers more requests that are in the queue or arrive within MaxQueueDelay of the
// first one's arrival (until PreferredBatch rows, never past MaxBatch) when the model is
// batchable, runs them as one batch and gives each request its own rows of the outputs. The
// gathering stops waiting when the queue is empty and no request of the model is being decoded
// (arriving): more could only come from clients that have not sent them yet, and waiting for
// those made a lone
// client's every request wait out the whole delay (2 ms at the defaults, measured 3 ms per
// request against 0.25 ms) for no batch.
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
	// idle holds the sessions not running a batch.
	idle chan *dnx.Session

	// inline is set when the model is not batched: each request then runs on its own goroutine
	// with an idle session, waiting for one if need be, and never hops to an executor goroutine
	// and back (two goroutine wake-ups, tens of microseconds each on a virtual machine: a third
	// of the server's own time for a small model). inflight counts the requests waiting for a
	// session or running, bounded by MaxQueue plus the instances as the queue and the executors
	// bound them.
	inline   bool
	inflight atomic.Int64
	// waiting counts the requests waiting to run: queued, or taken by an executor that waits
	// for a session. arriving counts the model's requests being decoded (see arrive), which a
	// lone request's fast path and batch gathering look at; gathering, the executors gathering
	// a batch, which a request then joins rather than run alone on another instance.
	waiting, arriving, gathering atomic.Int64
}

func newBatcher(m *servedModel, cfg *Config, met *metrics) *batcher {
	ctx, cancel := context.WithCancel(context.Background())
	b := &batcher{model: m, cfg: cfg, met: met, queue: make(chan *pending, cfg.MaxQueue),
		quit: make(chan struct{}), runCtx: ctx, cancelRun: cancel,
		idle: make(chan *dnx.Session, len(m.sessions))}
	for _, s := range m.sessions {
		b.idle <- s
	}
	if !m.batchable || cfg.MaxBatch <= 1 {
		b.inline = true
		return b
	}
	for range m.sessions {
		b.wg.Add(1)
		go b.execute()
	}
	return b
}

// arrive counts a request of the model as arriving until the returned function is called: the
// server calls it before decoding the request's inputs and done before submitting it, so that
// a batch being gathered waits for requests that are in the server but not queued yet.
func (b *batcher) arrive() (done func()) {
	b.arriving.Add(1)
	return func() { b.arriving.Add(-1) }
}

// queuedRequests returns the number of requests waiting to run.
func (b *batcher) queuedRequests() int {
	return int(b.waiting.Load())
}

// runInline runs one request on an idle session in the caller's goroutine (see batcher.inline).
func (b *batcher) runInline(ctx context.Context, inputs map[string]*dnx.Tensor) (result, error) {
	defer b.inflight.Add(-1)
	if n := b.inflight.Add(1); n > int64(b.cfg.MaxQueue)+int64(cap(b.idle)) {
		return result{}, fmt.Errorf("model %s: %w (%d requests waiting)", b.model.name, errQueueFull, b.cfg.MaxQueue)
	}
	enqueued := time.Now()
	var sess *dnx.Session
	select {
	case sess = <-b.idle:
	default:
		// Every session is busy: wait for one, counted as pending.
		b.met.queued(b.model, 1)
		b.waiting.Add(1)
		select {
		case sess = <-b.idle:
		case <-ctx.Done():
		case <-b.quit:
		}
		b.waiting.Add(-1)
		b.met.queued(b.model, -1)
	}
	if sess == nil {
		if ctx.Err() != nil {
			return result{}, context.Cause(ctx)
		}
		return result{}, errStopped
	}
	return b.runAlone(ctx, sess, inputs, enqueued)
}

// runAlone runs one request on sess, which it holds, in the caller's goroutine, and gives sess
// back. enqueued is when the request started waiting for it.
func (b *batcher) runAlone(ctx context.Context, sess *dnx.Session, inputs map[string]*dnx.Tensor, enqueued time.Time) (result, error) {
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

// submit runs a request at once when it is alone (see batcher), else queues it and waits for
// its result, or for ctx to end (the client went away or its time is up: the executor then
// skips it, or finishes the batch holding it and drops its rows). A full queue is errQueueFull
// at once.
func (b *batcher) submit(ctx context.Context, inputs map[string]*dnx.Tensor, rows int) (result, error) {
	if b.inline {
		return b.runInline(ctx, inputs)
	}
	enqueued := time.Now()
	if b.waiting.Load() == 0 && b.arriving.Load() == 0 && b.gathering.Load() == 0 {
		select {
		case sess := <-b.idle:
			return b.runAlone(ctx, sess, inputs, enqueued)
		default:
		}
	}
	// The key is made only here: a request that runs alone needs none.
	p := &pending{ctx: ctx, inputs: inputs, rows: rows, key: batchKey(inputs), enqueued: enqueued, done: make(chan result, 1)}
	// Counted before it is queued, so that an executor taking it at once never counts it off
	// first.
	b.waiting.Add(1)
	b.met.queued(b.model, 1)
	select {
	case b.queue <- p:
	default:
		b.dequeued()
		return result{}, fmt.Errorf("model %s: %w (%d requests waiting)", b.model.name, errQueueFull, cap(b.queue))
	}
	select {
	case r := <-p.done:
		return r, r.err
	case <-ctx.Done():
		return result{}, context.Cause(ctx)
	}
}

// dequeued counts p off the requests waiting, as it starts running or is answered.
func (b *batcher) dequeued() {
	b.waiting.Add(-1)
	b.met.queued(b.model, -1)
}

// execute is one executor's loop: take the next request, wait for a free session, gather a
// batch around the request and run it.
func (b *batcher) execute() {
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
		var sess *dnx.Session
		select {
		case sess = <-b.idle:
		case <-b.quit:
			b.dequeued()
			first.done <- result{err: errStopped}
			b.drain()
			return
		}
		b.dequeued()
		if first.ctx.Err() != nil {
			first.done <- result{err: context.Cause(first.ctx)}
			b.idle <- sess
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
		b.idle <- sess
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

// gather adds queued requests to batch until it holds PreferredBatch rows, waiting for more up
// to MaxQueueDelay after the first request arrived while requests of the model are arriving. A
// request whose shapes differ or whose rows would pass MaxBatch is returned as carry, to start
// the next batch.
func (b *batcher) gather(batch []*pending, rows int) ([]*pending, int, *pending) {
	b.gathering.Add(1)
	var timer *time.Timer
	defer func() {
		b.gathering.Add(-1)
		if timer != nil {
			timer.Stop()
		}
	}()
	for rows < b.cfg.PreferredBatch {
		select {
		case p := <-b.queue:
			if !b.add(&batch, &rows, p) {
				return batch, rows, p
			}
			continue
		default:
		}
		// The queue is empty: wait only for requests already in the server.
		if b.arriving.Load() == 0 {
			return batch, rows, nil
		}
		if timer == nil {
			wait := time.Until(batch[0].enqueued.Add(b.cfg.MaxQueueDelay))
			if wait <= 0 {
				return batch, rows, nil
			}
			timer = time.NewTimer(wait)
		}
		select {
		case p := <-b.queue:
			if !b.add(&batch, &rows, p) {
				return batch, rows, p
			}
		case <-timer.C:
			return batch, rows, nil
		case <-b.quit:
			return batch, rows, nil
		}
	}
	return batch, rows, nil
}

// add puts p, just taken from the queue, into the batch being gathered, or answers it if its
// client has gone. It returns false, leaving p counted as waiting, when p cannot join the batch
// (other shapes, or too many rows): p then starts the next one.
func (b *batcher) add(batch *[]*pending, rows *int, p *pending) bool {
	if p.ctx.Err() != nil {
		b.dequeued()
		p.done <- result{err: context.Cause(p.ctx)}
		return true
	}
	if p.key != (*batch)[0].key || *rows+p.rows > b.cfg.MaxBatch {
		return false
	}
	b.dequeued()
	*batch = append(*batch, p)
	*rows += p.rows
	return true
}

// drain answers what is left in the queue once the batcher stops.
func (b *batcher) drain() {
	for {
		select {
		case p := <-b.queue:
			b.dequeued()
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
