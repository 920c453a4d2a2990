package cpu

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

type countTask struct{ hits []int32 }

func (c *countTask) Do(lo, hi int) {
	for i := lo; i < hi; i++ {
		atomic.AddInt32(&c.hits[i], 1)
	}
}

func TestWorkersCoverEveryItemOnce(t *testing.T) {
	for _, c := range []struct {
		threads    int
		newWorkers func(int) *Workers
	}{{1, NewWorkers}, {2, NewWorkers}, {3, NewWorkers}, {8, NewWorkers}, {2, NewBlockingWorkers}, {3, NewBlockingWorkers}} {
		threads := c.threads
		p := c.newWorkers(threads)
		for _, n := range []int{0, 1, 2, 7, 100, 1001} {
			for _, grain := range []int{0, 1, 16, 5000} {
				task := &countTask{hits: make([]int32, n)}
				var wg Group
				p.Run(task, n, grain, &wg)
				for i, h := range task.hits {
					if h != 1 {
						t.Fatalf("threads %d n %d grain %d: item %d ran %d times", threads, n, grain, i, h)
					}
				}
			}
		}
		p.Close()
	}
}

func TestWorkersRunDoesNotAllocate(t *testing.T) {
	p := NewWorkers(2)
	defer p.Close()
	task := &countTask{hits: make([]int32, 1000)}
	var wg Group
	if a := testing.AllocsPerRun(100, func() { p.Run(task, 1000, 10, &wg) }); a != 0 {
		t.Errorf("Run allocates %.1f times per call", a)
	}
}

func TestWorkersConcurrentCallers(t *testing.T) {
	p := NewWorkers(2)
	defer p.Close()
	var outer sync.WaitGroup
	for g := 0; g < 8; g++ {
		outer.Add(1)
		go func() {
			defer outer.Done()
			task := &countTask{hits: make([]int32, 500)}
			var wg Group
			for r := 0; r < 50; r++ {
				p.Run(task, 500, 7, &wg)
			}
			for i, h := range task.hits {
				if h != 50 {
					t.Errorf("item %d ran %d times, want 50", i, h)
					return
				}
			}
		}()
	}
	outer.Wait()
}

// testWorkerSets returns the worker sets the kernel tests run each case on: none (the calling
// goroutine), 2 threads and 3 (an odd split); the pools close when the test ends.
func testWorkerSets(t testing.TB) []*Workers {
	sets := []*Workers{nil, NewWorkers(2), NewWorkers(3)}
	t.Cleanup(func() {
		for _, p := range sets[1:] {
			p.Close()
		}
	})
	return sets
}

// chunkLog records the chunks a Task is given.
type chunkLog struct {
	mu     sync.Mutex
	chunks [][2]int
}

func (c *chunkLog) Do(lo, hi int) {
	c.mu.Lock()
	c.chunks = append(c.chunks, [2]int{lo, hi})
	c.mu.Unlock()
}

// TestSerialWorkersSameChunks checks that serial Workers (a lane's) give a task exactly the
// chunks Workers of as many threads give it, one after the other on the caller: a task that
// depends on its chunks computes the same in a lane.
func TestSerialWorkersSameChunks(t *testing.T) {
	for _, threads := range []int{1, 2, 3, 8} {
		pool, serial := NewWorkers(threads), NewSerialWorkers(threads)
		for _, n := range []int{1, 2, 5, 7, 64, 1000} {
			for _, grain := range []int{1, 3, 100} {
				var a, b chunkLog
				var g1, g2 Group
				pool.Run(&a, n, grain, &g1)
				serial.Run(&b, n, grain, &g2)
				slices.SortFunc(a.chunks, func(x, y [2]int) int { return x[0] - y[0] })
				if !slices.Equal(a.chunks, b.chunks) {
					t.Errorf("threads %d, n %d, grain %d: serial chunks %v, pool %v", threads, n, grain, b.chunks, a.chunks)
				}
			}
		}
		if serial.Threads() != threads {
			t.Errorf("serial Workers of %d threads report %d", threads, serial.Threads())
		}
		pool.Close()
		serial.Close()
	}
}
