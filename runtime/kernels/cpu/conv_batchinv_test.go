package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/dnx-ml/dnx/runtime/ops"
)

// TestConvBatchInvariant checks that a convolution's result for one image is bit-identical
// whatever batch it runs in: alone, or as any item of a batch of 2 to 9, on the same threads
// (one or several), at every level. dnx serve's dynamic batching stacks requests and promises each the
// result of running it alone. Winograd puts the tiles of all a batch's images in the same GEMMs,
// so an image's tiles land in different column panels (full, padded, partial edge) at different
// batch sizes; the cases cover forms chosen by size, forced forms, depths past one K block
// (Cin > gemm.KC, where edge panels must sum K block by K block like full ones) and image tile
// counts that leave one-column edges (25 and 49 tiles, where the matrix-vector kernel must not
// be used for a tile).
func TestConvBatchInvariant(t *testing.T) {
	type tc struct {
		cin, cout, h, w, k, force int
		clip                      bool // ReLU6 (a clamp in the GEMM kernels) instead of ReLU
	}
	cases := []tc{
		{16, 4, 16, 16, 3, 0, false},   // densenet_tiny's 3x3 convs
		{16, 4, 8, 8, 3, 0, false},     //
		{128, 32, 14, 14, 3, 0, false}, // DenseNet-121's blocks 3 and 4
		{128, 32, 7, 7, 3, 0, false},   //
		{40, 8, 10, 10, 3, 2, false},   // 25 tiles per image
		{40, 8, 14, 14, 3, 2, false},   // 49 tiles per image
		{300, 8, 10, 10, 3, 2, false},  // two K blocks
		{300, 8, 13, 13, 3, 4, false},  //
		{300, 8, 14, 14, 3, 0, false},  //
		{520, 16, 7, 7, 1, 0, false},   // a 1x1 conv past one K block, 49 columns
		{64, 1000, 1, 1, 1, 0, false},  // a Linear layer (1x1 pixels)
		{160, 20, 7, 7, 1, 0, true},    // ReLU6 1x1 convs at 7x7 (MobileNetV2): 49n columns, a
		{300, 20, 14, 14, 1, 0, true},  // partial row panel at MR = 8 and, at 14x14, two K blocks
	}
	workerSets := testWorkerSets(t)
	r := rand.New(rand.NewPCG(3, 4))
	for _, level := range testLevels(t) {
		code := tableFor(level)
		for _, c := range cases {
			pad := c.k / 2
			spec := ConvSpec{Cin: c.cin, Cout: c.cout, KH: c.k, KW: c.k, PadT: pad, PadL: pad, PadB: pad, PadR: pad,
				Weights: randFloats(r, c.cout*c.cin*c.k*c.k), Bias: randFloats(r, c.cout), PostRelu: !c.clip}
			if c.clip {
				spec.Post = ops.Activation{Kind: ops.ActClip, Alpha: 0, Beta: 6}
			}
			conv, err := newConv2D(spec, -1, code)
			if err != nil {
				t.Fatal(err)
			}
			if c.force != 0 {
				conv = newWinogradConv(t, spec, c.force, code)
			}
			const maxN = 9
			item := c.cin * c.h * c.w
			x := randFloats(r, maxN*item)
			oh, ow := conv.OutputSize(c.h, c.w)
			outItem := c.cout * oh * ow
			run := func(workers *Workers, n int, x []float32) []float32 {
				threads := 1
				if workers != nil {
					threads = workers.Threads()
				}
				out := make([]float32, n*outItem)
				scratch := make([]float32, conv.ScratchSize(n, c.h, c.w, threads))
				if err := conv.Run(workers, Dense(x, n, c.cin, c.h, c.w), Dense(out, n, c.cout, oh, ow), scratch); err != nil {
					t.Fatal(err)
				}
				return out
			}
			for wi, workers := range workerSets {
				// The algorithm may depend on the threads (winograd.pick), so an image alone runs
				// on the same workers as the batches.
				alone := make([][]float32, maxN)
				for i := range alone {
					alone[i] = run(workers, 1, x[i*item:(i+1)*item])
				}
				for n := 1; n <= maxN; n++ {
					name := fmt.Sprintf("%s/%d->%d,%dx%d,k%d,force%d/workers%d/n%d (%s)", level, c.cin, c.cout, c.h, c.w, c.k, c.force, wi, n, conv.Algorithm(n, c.h, c.w, max(1, wi+1)))
					out := run(workers, n, x[:n*item])
					for i := 0; i < n; i++ {
						got := out[i*outItem : (i+1)*outItem]
						for j, v := range got {
							if v != alone[i][j] {
								t.Errorf("%s: item %d element %d = %g, alone %g", name, i, j, v, alone[i][j])
								break
							}
						}
					}
				}
			}
		}
	}
}
