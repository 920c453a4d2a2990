package cpu

import (
	"runtime"
	"sync"
)

// Task is a parallel loop body: Do processes items [lo, hi). Kernels implement it on a struct
// prepared in advance, so handing it to a Pool does not allocate.
type Task interface {
	Do(lo, hi int)
}

// Pool runs Tasks on a fixed set of goroutines. The calling goroutine takes part in the work, so
// a Pool of 1 thread runs everything inline. A Pool is safe for concurrent use: concurrent Run
// calls share the workers.
type Pool struct {
	threads int
	work    chan job
	once    sync.Once
}

type job struct {
	task   Task
	lo, hi int
	wg     *sync.WaitGroup
}

// NewPool returns a pool of threads workers (GOMAXPROCS when threads <= 0). Close stops them.
func NewPool(threads int) *Pool {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	p := &Pool{threads: threads, work: make(chan job, 4*threads)}
	for i := 1; i < threads; i++ {
		go p.worker()
	}
	return p
}

func (p *Pool) worker() {
	for j := range p.work {
		j.task.Do(j.lo, j.hi)
		j.wg.Done()
	}
}

// Threads returns the number of threads work is split over.
func (p *Pool) Threads() int { return p.threads }

// Close stops the workers. Run must not be called after Close.
func (p *Pool) Close() { p.once.Do(func() { close(p.work) }) }

// Run splits [0, n) into at most Threads() contiguous chunks of at least grain items, runs them in
// parallel and returns when all are done. wg is caller-provided scratch (a zero WaitGroup reused
// across calls) so that Run itself allocates nothing.
func (p *Pool) Run(t Task, n, grain int, wg *sync.WaitGroup) {
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
	wg.Add(chunks - 1)
	for c := 1; c < chunks; c++ {
		lo := c * per
		hi := min(n, lo+per)
		if lo >= hi {
			wg.Done()
			continue
		}
		p.work <- job{task: t, lo: lo, hi: hi, wg: wg}
	}
	t.Do(0, min(n, per))
	wg.Wait()
}
