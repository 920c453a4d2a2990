package ref

import (
	"fmt"
	"testing"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// denseNet121Convs lists the convolutions of DenseNet-121 at 224x224 (growth 32, bottleneck 4,
// blocks 6-12-24-16, compression 0.5): input channels, output channels, kernel, stride, pad,
// input size.
func denseNet121Convs() [][6]int {
	convs := [][6]int{{3, 64, 7, 2, 3, 224}}
	c, hw := 64, 56
	for b, layers := range []int{6, 12, 24, 16} {
		for l := 0; l < layers; l++ {
			convs = append(convs, [6]int{c, 128, 1, 1, 0, hw}, [6]int{128, 32, 3, 1, 1, hw})
			c += 32
		}
		if b < 3 {
			convs = append(convs, [6]int{c, c / 2, 1, 1, 0, hw})
			c, hw = c/2, hw/2
		}
	}
	return convs
}

// BenchmarkDenseNet121Convs runs every DenseNet-121 convolution once at batch 2 per iteration;
// it is the budget the reference Conv must meet (a few seconds).
func BenchmarkDenseNet121Convs(b *testing.B) {
	const batch = 2
	type job struct {
		op    *ops.Conv
		in    []*tensor.Tensor
		flops float64
	}
	var jobs []job
	for _, cv := range denseNet121Convs() {
		ci, co, k, s, p, hw := cv[0], cv[1], cv[2], cv[3], cv[4], cv[5]
		x := tensor.New(tensor.Float32, tensor.Shape{batch, ci, hw, hw})
		w := tensor.New(tensor.Float32, tensor.Shape{co, ci, k, k})
		fillRamp(tensor.Data[float32](x))
		fillRamp(tensor.Data[float32](w))
		op := &ops.Conv{Window: ops.Window{Kernel: []int{k, k}, Strides: []int{s, s}, Pads: []int{p, p, p, p}, AutoPad: ops.AutoPadNotSet}, Group: 1}
		out := (hw+2*p-k)/s + 1
		jobs = append(jobs, job{op, []*tensor.Tensor{x, w}, 2 * float64(batch*co*out*out*ci*k*k)})
	}
	var total float64
	for _, j := range jobs {
		total += j.flops
	}
	b.ResetTimer()
	for range b.N {
		for _, j := range jobs {
			if _, err := convKernel(j.op, j.in, 1); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(total*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func fillRamp(v []float32) {
	for i := range v {
		v[i] = float32(i%17)/17 - 0.5
	}
}

// BenchmarkConvShapes runs single DenseNet-121 convolutions at batch 2: the bottleneck 1x1 and the
// 3x3 of the first and third blocks, and the 7x7 stem.
func BenchmarkConvShapes(b *testing.B) {
	for _, cv := range [][6]int{{256, 128, 1, 1, 0, 56}, {128, 32, 3, 1, 1, 56}, {512, 128, 1, 1, 0, 14}, {128, 32, 3, 1, 1, 7}, {3, 64, 7, 2, 3, 224}} {
		ci, co, k, s, p, hw := cv[0], cv[1], cv[2], cv[3], cv[4], cv[5]
		b.Run(fmt.Sprintf("c=%d,k=%d,kernel=%d,hw=%d", ci, co, k, hw), func(b *testing.B) {
			x := tensor.New(tensor.Float32, tensor.Shape{2, ci, hw, hw})
			w := tensor.New(tensor.Float32, tensor.Shape{co, ci, k, k})
			fillRamp(tensor.Data[float32](x))
			fillRamp(tensor.Data[float32](w))
			op := &ops.Conv{Window: ops.Window{Kernel: []int{k, k}, Strides: []int{s, s}, Pads: []int{p, p, p, p}, AutoPad: ops.AutoPadNotSet}, Group: 1}
			out := (hw+2*p-k)/s + 1
			fl := 2 * float64(2*co*out*out*ci*k*k)
			for range b.N {
				if _, err := convKernel(op, []*tensor.Tensor{x, w}, 1); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(fl*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
