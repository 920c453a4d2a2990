package cpudev

import (
	"fmt"
	"sync"

	"github.com/dnx-ml/dnx/runtime/device"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu"
)

// Config configures the CPU device. The zero value uses GOMAXPROCS threads that poll briefly for
// work between kernels.
type Config struct {
	// Threads is the number of threads kernels split work over; 0 means GOMAXPROCS.
	Threads int
	// NoSpin makes idle threads block at once instead of polling for the next kernel
	// (cpu.NewBlockingWorkers): a little slower, but the CPU time polling would take goes to the
	// other processes of a shared machine.
	NoSpin bool
}

// Device is the CPU. Safe for concurrent use.
type Device struct {
	workers *cpu.Workers
	// convs is shared with the device's lane (Lane).
	convs *convCache
	// lane is the device's lane, made on first use; isLane is set on a lane itself.
	laneOnce sync.Once
	lane     *Device
	isLane   bool
}

// convCache holds the packed convolutions, per node.
type convCache struct {
	mu    sync.Mutex
	convs map[*graph.Node]*cpu.Conv2D
}

var (
	_ device.Device = (*Device)(nil)
	_ device.Lanes  = (*Device)(nil)
)

// New starts the CPU device's threads; Close stops them.
func New(cfg Config) *Device {
	d := &Device{convs: &convCache{convs: map[*graph.Node]*cpu.Conv2D{}}}
	if cfg.NoSpin {
		d.workers = cpu.NewBlockingWorkers(cfg.Threads)
	} else {
		d.workers = cpu.NewWorkers(cfg.Threads)
	}
	return d
}

// Lane implements device.Lanes: a device whose kernels run on the calling goroutine
// (cpu.NewSerialWorkers) but see this device's Threads(), so that they choose their algorithms
// and split their work, and therefore round, as this device's kernels do. It shares the packed
// weights and needs no Close. A lane's own Lane is itself.
func (d *Device) Lane() device.Device {
	if d.isLane {
		return d
	}
	d.laneOnce.Do(func() {
		d.lane = &Device{workers: cpu.NewSerialWorkers(d.workers.Threads()), convs: d.convs, isLane: true}
	})
	return d.lane
}

// RunLanes implements device.Lanes: f(0) on the calling goroutine, the others on the device's
// threads (n at most Threads(); a lane device runs them one after the other).
func (d *Device) RunLanes(n int, f func(lane int)) {
	t := laneFuncs(f)
	var g cpu.Group
	d.workers.Run(t, n, 1, &g)
}

// laneFuncs runs lanes as a parallel loop of one item per lane.
type laneFuncs func(lane int)

// Do implements cpu.Task.
func (f laneFuncs) Do(lo, hi int) {
	for i := lo; i < hi; i++ {
		f(i)
	}
}

// Name implements device.Device.
func (d *Device) Name() string { return "cpu" }

// Threads implements device.Device.
func (d *Device) Threads() int { return d.workers.Threads() }

// Close implements device.Device.
func (d *Device) Close() error {
	d.workers.Close()
	return nil
}

// NewMemory implements device.Device: one host arena and the kernels' scratch.
func (d *Device) NewMemory(floats, scratch int) (device.Memory, error) {
	if floats < 0 || scratch < 0 {
		return nil, fmt.Errorf("cpudev: memory of %d + %d floats", floats, scratch)
	}
	return &memory{arena: make([]float32, floats), scratch: make([]float32, scratch)}, nil
}

// conv returns the packed convolution of node n, building it with make on first use: the plans
// of one graph for several input shapes share it.
func (d *Device) conv(n *graph.Node, make func() (*cpu.Conv2D, error)) (*cpu.Conv2D, error) {
	c := d.convs
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.convs[n]; ok {
		return k, nil
	}
	k, err := make()
	if err != nil {
		return nil, err
	}
	c.convs[n] = k
	return k, nil
}

// memory is one run's host memory.
type memory struct {
	arena, scratch []float32
}

// of returns mem as the CPU's memory; a kernel of this device only ever runs on it.
func of(mem device.Memory) *memory { return mem.(*memory) }

// image returns operand o (InMemory, rank >= 1) as a strided image over the arena: rank-4
// values keep H and W, others are (N, C, everything else), rank 1 one image of C channels.
func (m *memory) image(o device.Operand) cpu.Image {
	return imageOf(m.arena, o)
}

func imageOf(arena []float32, o device.Operand) cpu.Image {
	n, c, h, w := 1, 1, 1, 1
	s := o.Shape
	switch len(s) {
	case 0:
	case 1:
		c = s[0]
	case 4:
		n, c, h, w = s[0], s[1], s[2], s[3]
	default:
		n, c = s[0], s[1]
		for _, d := range s[2:] {
			h *= d
		}
	}
	bs := o.BatchStride
	if bs == 0 || n <= 1 {
		bs = c * h * w
	}
	end := o.Offset + (n-1)*bs + c*h*w
	if n == 0 {
		end = o.Offset
	}
	return cpu.Image{Data: arena[o.Offset:end:end], N: n, C: c, H: h, W: w, BatchStride: bs}
}

// Host implements device.Memory: a dense operand's elements in the arena.
func (m *memory) Host(o device.Operand) ([]float32, bool) {
	if o.Placement != device.InMemory || !o.Dense() {
		return nil, false
	}
	end := o.Offset + o.Size()
	return m.arena[o.Offset:end:end], true
}

// Write implements device.Memory.
func (m *memory) Write(o device.Operand, src []float32) error {
	return m.items(o, src, func(dev, host []float32) { copy(dev, host) })
}

// Read implements device.Memory.
func (m *memory) Read(o device.Operand, dst []float32) error {
	return m.items(o, dst, func(dev, host []float32) { copy(host, dev) })
}

// items checks operand o against a dense host buffer and calls move on matching pieces of the
// arena and the buffer: the whole value when it is dense, else one batch item at a time.
func (m *memory) items(o device.Operand, host []float32, move func(dev, host []float32)) error {
	if err := check(o, len(host), len(m.arena)); err != nil {
		return err
	}
	if dev, ok := m.Host(o); ok {
		move(dev, host)
		return nil
	}
	im := m.image(o)
	per := im.C * im.H * im.W
	for n := 0; n < im.N; n++ {
		move(im.Item(n), host[n*per:(n+1)*per])
	}
	return nil
}

// check reports an operand that is not in memory, does not fit the arena or does not match a
// host buffer of n elements.
func check(o device.Operand, n, arena int) error {
	switch {
	case o.Placement != device.InMemory:
		return fmt.Errorf("cpudev: operand is not in device memory")
	case o.Size() != n:
		return fmt.Errorf("cpudev: operand of %d elements, host buffer of %d", o.Size(), n)
	case o.Offset < 0 || o.End() > arena:
		return fmt.Errorf("cpudev: operand [%d, %d) outside the %d-float arena", o.Offset, o.End(), arena)
	}
	return nil
}
