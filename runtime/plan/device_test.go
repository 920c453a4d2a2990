package plan

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/dnx-ml/dnx/internal/testenv"
	"github.com/dnx-ml/dnx/runtime/device"
	"github.com/dnx-ml/dnx/runtime/device/cpudev"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/membudget"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/passes"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// remoteDevice is a device whose memory the host cannot address, as a GPU's: it runs the CPU
// device's kernels on memory it keeps to itself, and Host always refuses, so the plan must move
// every graph input, output and reference kernel operand through Read and Write. With noKernels
// it also declines every node, so the whole graph runs on reference kernels through copies.
type remoteDevice struct {
	inner     *cpudev.Device
	noKernels bool
}

type remoteMemory struct{ inner device.Memory }

func (m remoteMemory) Write(o device.Operand, src []float32) error { return m.inner.Write(o, src) }
func (m remoteMemory) Read(o device.Operand, dst []float32) error  { return m.inner.Read(o, dst) }
func (remoteMemory) Host(device.Operand) ([]float32, bool)         { return nil, false }

type remoteKernel struct{ inner device.Kernel }

func (k remoteKernel) Run(mem device.Memory) error { return k.inner.Run(mem.(remoteMemory).inner) }
func (k remoteKernel) Scratch() int                { return k.inner.Scratch() }
func (k remoteKernel) Info() device.KernelInfo {
	info := k.inner.Info()
	info.Code = "remote-" + info.Code
	return info
}

func (d *remoteDevice) Name() string { return "remote" }
func (d *remoteDevice) Threads() int { return d.inner.Threads() }
func (d *remoteDevice) Lower(n *graph.Node, in, out []device.Operand) (device.Kernel, string) {
	if d.noKernels {
		return nil, "the remote device has no kernels"
	}
	k, why := d.inner.Lower(n, in, out)
	if k == nil {
		return nil, why
	}
	return remoteKernel{k}, ""
}
func (d *remoteDevice) NewMemory(floats, scratch int) (device.Memory, error) {
	m, err := d.inner.NewMemory(floats, scratch)
	return remoteMemory{m}, err
}
func (d *remoteDevice) Training() device.TrainingKernels { return d.inner.Training() }
func (d *remoteDevice) Close() error                     { return nil }

// TestDeviceSeam runs real models on devices other than the CPU device as the planner sees it —
// one whose memory is not host memory, and one without kernels — and checks that each gives the
// CPU device's outputs exactly (the same kernels in the same order, or reference kernels within
// 1e-4), and that the steps name the device's kernels. A second device (CUDA) plugs in here.
func TestDeviceSeam(t *testing.T) {
	dir := testenv.Shared(t, filepath.Join("models", "densenet_tiny"))
	g, err := graph.Load(filepath.Join(dir, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	g, err = g.Clone(ops.Default())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := passes.Inference().Run(g); err != nil {
		t.Fatal(err)
	}
	in := g.Inputs[0].Type
	shape := tensor.Shape{2, int(in.Shape[1].Value), int(in.Shape[2].Value), int(in.Shape[3].Value)}
	x := tensor.New(tensor.Float32, shape)
	for i, v := range tensor.Data[float32](x) {
		v = float32((i*7919)%255)/127.5 - 1
		tensor.Data[float32](x)[i] = v
	}
	cpu := cpudev.New(cpudev.Config{Threads: 2})
	defer cpu.Close()
	run := func(dev device.Device) ([]*tensor.Tensor, *Plan) {
		t.Helper()
		p, err := Compile(g, []tensor.Shape{shape}, dev, membudget.Budget{})
		if err != nil {
			t.Fatal(err)
		}
		out, err := p.Run(context.Background(), []*tensor.Tensor{x})
		if err != nil {
			t.Fatal(err)
		}
		return out, p
	}
	want, _ := run(cpu)
	for _, tc := range []struct {
		name string
		dev  *remoteDevice
		tol  float64
	}{
		{"device memory", &remoteDevice{inner: cpu}, 0},
		{"no kernels", &remoteDevice{inner: cpu, noKernels: true}, 1e-4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, p := run(tc.dev)
			for i := range want {
				a, b := tensor.Data[float32](want[i]), tensor.Data[float32](got[i])
				worst := 0.0
				for k := range a {
					worst = max(worst, float64(abs32(a[k]-b[k])))
				}
				if worst > tc.tol {
					t.Errorf("output %d differs from the CPU device's by %g (tolerance %g)", i, worst, tc.tol)
				}
			}
			kernels, reference := 0, 0
			for _, s := range p.Steps() {
				switch {
				case s.Kernel == KernelReference:
					reference++
				case s.ISA != "":
					kernels++
					if tc.dev.noKernels || s.ISA[:len("remote-")] != "remote-" {
						t.Errorf("step %s runs %s at %q, not on the remote device", s.Node, s.Kernel, s.ISA)
					}
				}
			}
			if tc.dev.noKernels && (kernels != 0 || reference == 0) {
				t.Errorf("%d device kernels and %d reference steps, want none and some", kernels, reference)
			}
			if !tc.dev.noKernels && kernels == 0 {
				t.Error("no step runs a device kernel")
			}
			t.Logf("%d steps on device kernels, %d on reference kernels", kernels, reference)
		})
	}
}

func abs32(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}
