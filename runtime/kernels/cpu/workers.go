package cpu

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Task is a parallel loop body: Do processes items [lo, hi). Kernels implement it on a struct
// prepared in advance, so handing it to Workers does not allocate.
type Task interface {
	Do(lo, hi int)
}

// Workers runs Tasks on a fixed set of goroutines, the thread pool every kernel here shares. The
// calling goroutine takes part in the work, so Workers of 1 thread runs everything inline.
// Workers is safe for concurrent use: concurrent Run calls share the goroutines.
//
// Its goroutines and callers wait by polling for a short while before they block. Waking a blocked
// goroutine takes tens of microseconds on a virtual machine (measured here: ~70 us per parallel
// loop, as much as a whole 1x1 convolution on a 7x7 image), and a network runs hundreds of loops
// back to back (DenseNet-121: ~400 per image) with only microseconds between them. ONNX
// Runtime's thread pool spins the same way. Polling is bounded (spinWorker, spinCaller), so
// idle Workers cost nothing, and it is off when there are fewer Go processors than threads, where
// a polling goroutine would hold the processor another one needs. A caller waiting for its
// chunks runs whatever chunks are still queued, its own or another caller's: with 4 goroutines
// running DenseNet-121 on one 2-thread Session, throughput matched a single caller's.
type Workers struct {
	threads int
	spin    bool
	// serial Workers (NewSerialWorkers) have no goroutines and run every loop on the caller.
	serial bool
	work   chan job
	once   sync.Once
}

type job struct {
	task   Task
	lo, hi int
	g      *Group
}

// Group is the completion state of one Run. Each goroutine that calls Run keeps its own (a field
// of the kernel's prepared state), reuses it from call to call, and never copies it; the zero
// Group is ready to use.
type Group struct {
	pending atomic.Int32 // chunks handed to workers and not finished
	wg      sync.WaitGroup
}

// How long a worker polls for the next chunk, and a caller for its workers to finish, before
// blocking. Between the loops of one network run there are microseconds; the bounds keep a
// loaded machine, where the thread waited for may not be running at all, from losing more than
// a wake-up's worth of CPU time to polling.
const (
	spinWorker = 100 * time.Microsecond
	spinCaller = 100 * time.Microsecond
)

// NewWorkers returns Workers of threads goroutines (GOMAXPROCS when threads <= 0) that poll briefly
// before blocking (see Workers). Close stops them.
func NewWorkers(threads int) *Workers { return newWorkers(threads, true) }

// NewBlockingWorkers is NewWorkers with workers and callers that block at once instead of polling:
// for machines shared with other work, which then gets the CPU time polling would take. It is
// not faster for dnx itself: DenseNet-121 on 2 threads took 44 ms polling and 46 ms blocking on
// a quiet machine, and 81 ms and 107 ms with two busy processes beside it.
func NewBlockingWorkers(threads int) *Workers { return newWorkers(threads, false) }

// NewSerialWorkers returns Workers that split work as Workers of threads threads do (kernels see
// Threads() = threads and choose their algorithms and work split from it) but run every loop on
// the calling goroutine, with no goroutines of their own. They run one lane of a batch split into
// independent lanes (runtime/exec): each lane is one thread, and its kernels must compute every
// batch item bit for bit as the whole pool would, which the kernels guarantee for a given
// Threads() whatever the order its chunks run in.
func NewSerialWorkers(threads int) *Workers {
	return &Workers{threads: max(threads, 1), serial: true}
}

func newWorkers(threads int, spin bool) *Workers {
	procs := runtime.GOMAXPROCS(0)
	if threads <= 0 {
		threads = procs
	}
	p := &Workers{threads: threads, spin: spin && procs >= threads, work: make(chan job, 4*threads)}
	for i := 1; i < threads; i++ {
		go p.worker()
	}
	return p
}

func (p *Workers) worker() {
	for {
		j, ok := p.next()
		if !ok {
			return
		}
		p.do(j)
	}
}

// next returns the next chunk, polling for up to spinWorker first; ok is false once Workers is
// closed.
func (p *Workers) next() (j job, ok bool) {
	if p.spin {
		var start time.Time
		for i := 0; ; i++ {
			select {
			case j, ok = <-p.work:
				return j, ok
			default:
			}
			if i%128 == 0 {
				if i == 0 {
					start = time.Now()
				} else if time.Since(start) > spinWorker {
					break
				}
				runtime.Gosched() // let a goroutine readied on this processor run
			}
		}
	}
	j, ok = <-p.work
	return j, ok
}

// Threads returns the number of threads work is split over.
func (p *Workers) Threads() int { return p.threads }

// Close stops the workers. Run must not be called after Close.
func (p *Workers) Close() {
	if !p.serial {
		p.once.Do(func() { close(p.work) })
	}
}

// Run splits [0, n) into at most Threads() contiguous chunks of at least grain items, runs them in
// parallel and returns when all are done. g is the caller's Group (see Group), so that Run itself
// allocates nothing.
func (p *Workers) Run(t Task, n, grain int, g *Group) {
	if n <= 0 {
		return
	}
	if grain < 1 {
		grain = 1
	}
	chunks := min(p.threads, (n+grain-1)/grain)
	if chunks <= 1 {
		t.Do(0, n)
		return
	}
	per := (n + chunks - 1) / chunks
	if p.serial {
		// The same chunks, one after the other: a task may depend on its chunks (not only on
		// its items), and a lane must compute what the pool would.
		for lo := 0; lo < n; lo += per {
			t.Do(lo, min(n, lo+per))
		}
		return
	}
	handed := 0
	for c := 1; c < chunks; c++ {
		if c*per < n {
			handed++
		}
	}
	g.pending.Store(int32(handed))
	g.wg.Add(handed)
	for c := 1; c <= handed; c++ {
		lo := c * per
		p.work <- job{task: t, lo: lo, hi: min(n, lo+per), g: g}
	}
	t.Do(0, min(n, per))
	var start time.Time
	for i := 0; g.pending.Load() > 0; i++ {
		// Chunks still queued (this Run's, whose worker has not woken up yet, or another
		// caller's) are run here rather than waited for: concurrent callers then keep the
		// threads busy instead of polling, and a late worker costs nothing.
		select {
		case j, ok := <-p.work:
			if ok {
				p.do(j)
				continue
			}
		default:
		}
		if !p.spin {
			break
		}
		if i%128 == 0 {
			if i == 0 {
				start = time.Now()
			} else if time.Since(start) > spinCaller {
				break
			}
		}
	}
	g.wg.Wait()
}

// do runs one chunk and marks it done in its Group.
func (p *Workers) do(j job) {
	j.task.Do(j.lo, j.hi)
	// pending first: a caller that sees 0 then waits on wg, which this Done releases, so the
	// Group is not reused while this goroutine still touches it.
	j.g.pending.Add(-1)
	j.g.wg.Done()
}
