package cpu

import (
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
