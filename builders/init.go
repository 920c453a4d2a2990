package builders

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
)

// BN constants of torchvision's DenseNet. Momentum is in ONNX's convention
// (running = momentum*running + (1-momentum)*batch), i.e. PyTorch's momentum 0.1.
const (
	bnEpsilon  = 1e-5
	bnMomentum = 0.9
)

// tensorRand returns the random stream for the initializer called name. Each tensor gets its own
// PCG stream keyed by (seed, FNV-1a(name)), so a tensor's values depend only on the seed and its
// name: changing Classes or the export form leaves every other weight unchanged.
func tensorRand(seed int64, name string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	return rand.New(rand.NewPCG(uint64(seed), h.Sum64()))
}

// kaimingNormal returns n values drawn from N(0, 2/fanIn): torch.nn.init.kaiming_normal_ with its
// defaults (mode fan_in, leaky_relu with a=0, so gain sqrt(2)), which torchvision's DenseNet applies
// to every conv. fanIn = Cin*kh*kw.
func kaimingNormal(r *rand.Rand, n, fanIn int) []float32 {
	std := math.Sqrt(2 / float64(fanIn))
	w := make([]float32, n)
	for i := range w {
		w[i] = float32(r.NormFloat64() * std)
	}
	return w
}

// linearUniform returns n values drawn from U(-1/sqrt(fanIn), 1/sqrt(fanIn)): nn.Linear's default
// kaiming_uniform_(a=sqrt(5)), whose bound gain*sqrt(3/fanIn) with gain = sqrt(2/(1+5)) reduces to
// 1/sqrt(fanIn). torchvision keeps it for the classifier weight and zeroes the bias.
func linearUniform(r *rand.Rand, n, fanIn int) []float32 {
	bound := 1 / math.Sqrt(float64(fanIn))
	w := make([]float32, n)
	for i := range w {
		w[i] = float32((2*r.Float64() - 1) * bound)
	}
	return w
}

// bnParams holds one BatchNorm's per-channel scale γ, shift β and running statistics.
type bnParams struct {
	gamma, beta, mean, variance []float32
}

// newBN returns torchvision's initial BN state for c channels: γ=1, β=0, mean 0, var 1.
func newBN(c int) bnParams {
	p := bnParams{
		gamma:    make([]float32, c),
		beta:     make([]float32, c),
		mean:     make([]float32, c),
		variance: make([]float32, c),
	}
	for i := 0; i < c; i++ {
		p.gamma[i], p.variance[i] = 1, 1
	}
	return p
}

// foldConvBN folds an inference-mode BN into the bias-free conv before it. The conv weight w has
// shape [cout, ...] with len(w)/cout values per output channel. For output channel o, with
// s = γ[o]/sqrt(var[o]+eps),
//
//	W'[o,...] = W[o,...] * s
//	b'[o]     = β[o] - mean[o] * s
//
// so that BN(conv(x, W)) = conv(x, W') + b'. The arithmetic is done in float64 and rounded once.
func foldConvBN(w []float32, cout int, bn bnParams, eps float64) (wf, bias []float32) {
	per := len(w) / cout
	wf = make([]float32, len(w))
	bias = make([]float32, cout)
	for o := 0; o < cout; o++ {
		s := float64(bn.gamma[o]) / math.Sqrt(float64(bn.variance[o])+eps)
		for i := o * per; i < (o+1)*per; i++ {
			wf[i] = float32(float64(w[i]) * s)
		}
		bias[o] = float32(float64(bn.beta[o]) - float64(bn.mean[o])*s)
	}
	return wf, bias
}
