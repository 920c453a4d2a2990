package cpudev

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/device"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu"
)

// This file implements device.TrainingKernels on the CPU: runtime/kernels/cpu's training
// kernels (train_conv.go, train_bn.go, pool2d.go) on a cpu.Workers pool. Each method converts the
// device-neutral arguments to the kernels' own types and calls them; the numbers are the
// kernels', bit for bit, and a call allocates no more than the kernel it makes.
//
// device.ConvolutionSpec, Prologue, BNGradient and Image have the fields of cpu.ConvCMSpec,
// Prologue, BNGrad and Image, in the same order, so Go converts one into the other directly; a
// change to either side that breaks that is a compile error here rather than a silent mismatch.
// (Package cpu cannot use package device's types itself: it is the lower layer.)

// trainingKernels is a cpu.Workers seen as device.TrainingKernels. It is the same memory under
// another type, so that converting a pass's Workers into the kernels allocates nothing.
type trainingKernels cpu.Workers

var _ device.TrainingKernels = (*trainingKernels)(nil)

// NewTraining returns the CPU's training kernels on a new pool of threads worker threads
// (GOMAXPROCS when threads <= 0), and the function that stops the threads; the kernels, and the
// convolutions and pools run with them, must not be used after it.
func NewTraining(threads int) (device.TrainingKernels, func() error) {
	w := cpu.NewWorkers(threads)
	return (*trainingKernels)(w), func() error { w.Close(); return nil }
}

// TrainingOn returns the CPU's training kernels on an existing pool of workers (not nil), which
// the caller keeps and closes.
func TrainingOn(w *cpu.Workers) device.TrainingKernels { return (*trainingKernels)(w) }

// trainWorkers returns the workers of the CPU's training kernels k.
func trainWorkers(k device.TrainingKernels) (*cpu.Workers, error) {
	t, ok := k.(*trainingKernels)
	if !ok {
		return nil, fmt.Errorf("cpudev: a CPU training kernel was run with %T, not the CPU's training kernels", k)
	}
	return (*cpu.Workers)(t), nil
}

// trainTask adapts a function to cpu.Task (a func value is a pointer: the conversion does not
// allocate).
type trainTask func(lo, hi int)

// Do implements cpu.Task.
func (f trainTask) Do(lo, hi int) { f(lo, hi) }

// Parallel implements device.TrainingKernels.
func (k *trainingKernels) Parallel(n, grain int, fn func(lo, hi int)) {
	var g cpu.Group
	(*cpu.Workers)(k).Run(trainTask(fn), n, grain, &g)
}

// ChannelStats implements device.TrainingKernels.
func (k *trainingKernels) ChannelStats(x []float32, channels, rowLen, stride int, mean, variance []float64) {
	cpu.ChannelStats((*cpu.Workers)(k), x, channels, rowLen, stride, mean, variance)
}

// AffineRows implements device.TrainingKernels.
func (k *trainingKernels) AffineRows(x, y []float32, channels, rowLen, stride int, scale, shift []float32, relu bool) {
	cpu.AffineRows((*cpu.Workers)(k), x, y, channels, rowLen, stride, scale, shift, relu)
}

// BatchNormBackward implements device.TrainingKernels.
func (k *trainingKernels) BatchNormBackward(g device.BNGradient, x, dy, dx []float32) {
	cg := cpu.BNGrad(g)
	cpu.BatchNormBackward((*cpu.Workers)(k), &cg, x, dy, dx)
}

// ReluBackward implements device.TrainingKernels.
func (k *trainingKernels) ReluBackward(y, dy, dx []float32, acc bool) {
	cpu.ReluBackward((*cpu.Workers)(k), y, dy, dx, acc)
}

// NewConvWorkspace implements device.TrainingKernels: a *cpu.ConvShared.
func (k *trainingKernels) NewConvWorkspace() device.ConvWorkspace { return &cpu.ConvShared{} }

// NewConvolution implements device.TrainingKernels with a cpu.ConvCM.
func (k *trainingKernels) NewConvolution(spec device.ConvolutionSpec, shared device.ConvWorkspace) (device.TrainingConv, error) {
	var sh *cpu.ConvShared
	if shared != nil {
		s, ok := shared.(*cpu.ConvShared)
		if !ok {
			return nil, fmt.Errorf("cpudev: convolution workspace %T is not the CPU's", shared)
		}
		sh = s
	}
	c, err := cpu.NewConvCM(cpu.ConvCMSpec(spec))
	if err != nil {
		return nil, err
	}
	if sh != nil {
		c.Share(sh)
	}
	return &trainConv{c: c}, nil
}

// trainConv is a cpu.ConvCM as a device.TrainingConv. Its packed gradients are *cpu.GradA.
type trainConv struct {
	c *cpu.ConvCM
}

// prologue returns the kernels' prologue for p: nil for none, as the kernels take it.
func prologue(p device.Prologue) *cpu.Prologue {
	if p.None() {
		return nil
	}
	cp := cpu.Prologue(p)
	return &cp
}

// Spec implements device.TrainingConv.
func (c *trainConv) Spec() device.ConvolutionSpec { return device.ConvolutionSpec(c.c.Spec()) }

// OutSize implements device.TrainingConv.
func (c *trainConv) OutSize() (oh, ow int) { return c.c.OH, c.c.OW }

// StagingSize implements device.TrainingConv.
func (c *trainConv) StagingSize() int { return c.c.StagingSize() }

// ScratchSize implements device.TrainingConv.
func (c *trainConv) ScratchSize(threads int) int { return c.c.ScratchSize(threads) }

// SplitsInputGrad implements device.TrainingConv.
func (c *trainConv) SplitsInputGrad() bool { return c.c.SplitsInputGrad() }

// Forward implements device.TrainingConv.
func (c *trainConv) Forward(k device.TrainingKernels, x []float32, pre device.Prologue, w, bias, y []float32, acc bool, scratch []float32) error {
	wk, err := trainWorkers(k)
	if err != nil {
		return err
	}
	return c.c.Forward(wk, x, prologue(pre), w, bias, y, acc, scratch)
}

// InputGrad implements device.TrainingConv.
func (c *trainConv) InputGrad(k device.TrainingKernels, dy, w, dx []float32, acc bool, scratch []float32) error {
	wk, err := trainWorkers(k)
	if err != nil {
		return err
	}
	return c.c.InputGrad(wk, dy, w, dx, acc, scratch)
}

// InputGradChannels implements device.TrainingConv.
func (c *trainConv) InputGradChannels(k device.TrainingKernels, dy, w, dx []float32, c0, c1 int, acc bool, scratch []float32) error {
	wk, err := trainWorkers(k)
	if err != nil {
		return err
	}
	return c.c.InputGradChannels(wk, dy, w, dx, c0, c1, acc, scratch)
}

// gradA returns the *cpu.GradA in ga (nil for nil).
func gradA(ga device.PackedGrad) (*cpu.GradA, error) {
	if ga == nil {
		return nil, nil
	}
	g, ok := ga.(*cpu.GradA)
	if !ok {
		return nil, fmt.Errorf("cpudev: packed gradient %T is not the CPU's", ga)
	}
	return g, nil
}

// PackGradInto implements device.TrainingConv. A *cpu.GradA goes into the interface as it is,
// without allocating.
func (c *trainConv) PackGradInto(reuse device.PackedGrad, dy []float32) (device.PackedGrad, error) {
	prev, err := gradA(reuse)
	if err != nil {
		return nil, err
	}
	g, err := c.c.PackGradInto(prev, dy)
	if err != nil {
		return nil, err
	}
	return g, nil
}

// WeightGrad implements device.TrainingConv.
func (c *trainConv) WeightGrad(k device.TrainingKernels, x []float32, pre device.Prologue, dy []float32, ga device.PackedGrad, dw []float32, acc bool, stage, scratch []float32) error {
	wk, err := trainWorkers(k)
	if err != nil {
		return err
	}
	g, err := gradA(ga)
	if err != nil {
		return err
	}
	return c.c.WeightGrad(wk, x, prologue(pre), dy, g, dw, acc, stage, scratch)
}

// NewPool implements device.TrainingKernels with a cpu.Pool2D.
func (k *trainingKernels) NewPool(s device.PoolSpec) (device.TrainingPool, error) {
	return &trainPool{p: cpu.Pool2D{
		Win: cpu.Window2D{KH: s.KH, KW: s.KW, StrideH: s.StrideH, StrideW: s.StrideW, DilationH: s.DilationH, DilationW: s.DilationW,
			PadT: s.PadT, PadL: s.PadL, OutH: s.OutH, OutW: s.OutW},
		Max: s.Max, CountIncludePad: s.CountIncludePad, PadB: s.PadB, PadR: s.PadR,
	}}, nil
}

// trainPool is a cpu.Pool2D as a device.TrainingPool.
type trainPool struct {
	p cpu.Pool2D
}

// Forward implements device.TrainingPool.
func (p *trainPool) Forward(k device.TrainingKernels, in, out device.Image) error {
	wk, err := trainWorkers(k)
	if err != nil {
		return err
	}
	return p.p.Run(wk, cpu.Image(in), cpu.Image(out))
}
