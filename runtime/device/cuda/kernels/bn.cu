// dnx CUDA kernels: BatchNormalization. The inference affine map, the fused BN-ReLU prologue
// that stages a convolution's input, the training statistics and running-statistic update, and
// the backward pass.
//
// Self-contained for NVRTC (and nvcc -ptx): no #include, only CUDA builtins.
//
// Addressing. A tensor of N items, C channels and S = H*W pixels per channel plane stores
// element (n, c, s) at n*nStride + c*cStride + s (in floats). Both of dnx's layouts fit this:
//   NCHW with a batch stride (the inference executor; nStride = the operand's BatchStride,
//     larger than C*S for a channel slice of a dense block's buffer, and cStride = S);
//   the trainer's channel-major CNHW (nStride = S, cStride = the channel row stride >= N*S).
// Every kernel requires N*C*S < 2^31 (the host splits larger calls). Offsets are computed in
// 64 bits.
//
// Block size: a 1-D block of a multiple of 32 threads, at most 1024 (256 recommended). The
// reductions use warp shuffles with a full mask and one shared double per warp.
//
// Numerics follow runtime/kernels/cpu and runtime/train: the affine map is one fmaf, as the
// CPU's AVX2 kernels compute it; per-channel sums are in float64; the per-channel finalization
// uses the _rn intrinsics so that nvcc does not contract it into FMAs that the Go code does not
// do. ReLU keeps NaN (v < 0 ? 0 : v), and its gradient passes where the float bits of z, as an
// int32, are > 0 (cpu.reluGrad: not for -0 or a NaN with the sign bit).

// dnx_bn_sum returns the sum of v over the block to every thread. All threads must call it.
static __device__ double dnx_bn_sum(double v)
{
	__shared__ double part[32];
	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_down_sync(0xffffffffu, v, o);
	int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
	if (lane == 0)
		part[warp] = v;
	__syncthreads();
	if (warp == 0) {
		int warps = (blockDim.x + 31) >> 5;
		v = lane < warps ? part[lane] : 0.0;
		for (int o = 16; o > 0; o >>= 1)
			v += __shfl_down_sync(0xffffffffu, v, o);
		if (lane == 0)
			part[0] = v;
	}
	__syncthreads();
	double r = part[0];
	__syncthreads(); // part is reused by the next call
	return r;
}

// dnx_bn_relu keeps NaN: max(v, 0) except that NaN stays NaN (cpu's pre1 with floor 0).
static __device__ __forceinline__ float dnx_bn_relu(float v)
{
	return v < 0.0f ? 0.0f : v;
}

// dnx_bn_keep reports whether the ReLU gradient passes at z: the bits of z as an int32 are > 0.
static __device__ __forceinline__ bool dnx_bn_keep(float z)
{
	return __float_as_int(z) > 0;
}

// BatchNormalization in inference, and the trainer's AffineRows:
//   y(n,c,s) = fmaf(x(n,c,s), scale[c], shift[c]), then max(., 0) when relu != 0.
// For inference the host folds the constants once, in float64 (cpudev's bnAffine):
//   scale[c] = gamma[c]/sqrt(var[c] + eps), shift[c] = beta[c] - mean[c]*scale[c].
// y may be x (with the same strides).
// Launch: block (256, 1, 1); grid (min(ceil(N*C*S/256), 32*SMs), 1, 1); grid-stride over the
// N*C*S elements in (n, c, s) order.
extern "C" __global__ void dnx_bn_affine(const float* x, float* y, const float* scale, const float* shift, int relu,
	int N, int C, int S, int xNStride, int xCStride, int yNStride, int yCStride)
{
	long long total = (long long)N * C * S;
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
		int k = (int)i;
		int s = k % S, t = k / S;
		int c = t % C, n = t / C;
		float v = fmaf(x[(long long)n * xNStride + (long long)c * xCStride + s], scale[c], shift[c]);
		if (relu)
			v = dnx_bn_relu(v);
		y[(long long)n * yNStride + (long long)c * yCStride + s] = v;
	}
}

// The fused BN-ReLU prologue of a convolution (device.Prologue, ops.FusedConv's PreScale,
// PreShift, PreRelu): it reads the convolution's input x in any layout and writes pre(x) as a
// dense NCHW staging buffer that cuDNN convolves, so the BatchNormalization's output is never
// stored in the plan's memory:
//   stage[(n*C + c)*S + s] = pre_c(x(n,c,s)),
//   pre_c(v) = fmaf(v, scale[c], shift[c]) (v when scale is NULL), then max(., 0) when relu.
// The convolution's zero padding then pads pre(x), not x, as device.Prologue requires. scale and
// shift are both NULL or both set.
// Launch: block (256, 1, 1); grid (min(ceil(N*C*S/256), 32*SMs), 1, 1); grid-stride over the
// staging buffer in order.
extern "C" __global__ void dnx_bn_relu_prologue(const float* x, float* stage, const float* scale, const float* shift,
	int relu, int N, int C, int S, int xNStride, int xCStride)
{
	long long total = (long long)N * C * S;
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
		int k = (int)i;
		int s = k % S, t = k / S;
		int c = t % C, n = t / C;
		float v = x[(long long)n * xNStride + (long long)c * xCStride + s];
		if (scale != 0)
			v = fmaf(v, scale[c], shift[c]);
		if (relu)
			v = dnx_bn_relu(v);
		stage[i] = v;
	}
}

// Training forward, step 1: the batch statistics of each channel over its L = N*S values, in
// float64 and in two passes (cpu.ChannelStats):
//   mean[c] = (1/L) sum_{n,s} x(n,c,s)
//   var[c]  = (1/L) sum_{n,s} (x(n,c,s) - mean[c])^2        (biased: what normalizes)
// L = 0 gives NaN. The summation order differs from the CPU's, so the results agree to
// rounding, not bit for bit.
// Launch: block (256, 1, 1) (a multiple of 32); grid (min(C, 65535), 1, 1); block b computes
// channels b, b + gridDim.x, ...
extern "C" __global__ void dnx_bn_stats(const float* x, int N, int C, int S, int xNStride, int xCStride,
	double* mean, double* var)
{
	long long L = (long long)N * S;
	for (int c = blockIdx.x; c < C; c += gridDim.x) {
		const float* xc = x + (long long)c * xCStride;
		double s1 = 0.0;
		for (long long j = threadIdx.x; j < L; j += blockDim.x) {
			int n = (int)(j / S), s = (int)(j % S);
			s1 += (double)xc[(long long)n * xNStride + s];
		}
		double m = dnx_bn_sum(s1) / (double)L;
		double s2 = 0.0;
		for (long long j = threadIdx.x; j < L; j += blockDim.x) {
			int n = (int)(j / S), s = (int)(j % S);
			double d = (double)xc[(long long)n * xNStride + s] - m;
			s2 += d * d;
		}
		double v = dnx_bn_sum(s2) / (double)L;
		if (threadIdx.x == 0) {
			mean[c] = m;
			var[c] = v;
		}
	}
}

// Training forward, step 2 (and evaluation): the statistics to normalize with, the affine map
// the forward pass applies (with dnx_bn_affine, or as a convolution's prologue), and the new
// running statistics, per channel, in float64 as runtime/train's bnUnit.forward computes them:
//   train != 0:  mean[c] = bmean[c], invstd[c] = 1/sqrt(bvar[c] + eps)
//                and, when update != 0 (ONNX momentum m: m weighs the running value, so
//                PyTorch's momentum 0.1 is m = 0.9; the variance is made unbiased, L = N*S):
//                  newMean[c] = float(m*rmean[c] + (1-m)*bmean[c])
//                  newVar[c]  = float(m*rvar[c]  + (1-m)*bvar[c]*L/(L-1))
//   train == 0:  mean[c] = rmean[c], invstd[c] = 1/sqrt(rvar[c] + eps)    (frozen or eval)
//   a = gamma[c]*invstd[c], scale[c] = float(a), shift[c] = float(beta[c] - mean[c]*a)
// The running statistics are committed (newMean/newVar copied over rmean/rvar, a device-to-device
// copy) only when the whole step completes. bmean, bvar, newMean and newVar may be NULL when
// unused. L must be >= 2 when training (the host checks, as bnUnit does).
// Launch: block (256, 1, 1); grid (ceil(C/256), 1, 1); one thread per channel, grid-stride.
extern "C" __global__ void dnx_bn_finalize(int C, int L, int train, int update, double eps, double momentum,
	const double* bmean, const double* bvar, const float* gamma, const float* beta, const float* rmean, const float* rvar,
	double* mean, double* invstd, float* scale, float* shift, float* newMean, float* newVar)
{
	for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < C; c += gridDim.x * blockDim.x) {
		double m, inv;
		if (train) {
			m = bmean[c];
			inv = __ddiv_rn(1.0, __dsqrt_rn(__dadd_rn(bvar[c], eps)));
			if (update) {
				double unbias = __ddiv_rn((double)L, (double)(L - 1));
				double keep = 1.0 - momentum;
				newMean[c] = (float)__dadd_rn(__dmul_rn(momentum, (double)rmean[c]), __dmul_rn(keep, bmean[c]));
				newVar[c] = (float)__dadd_rn(__dmul_rn(momentum, (double)rvar[c]), __dmul_rn(__dmul_rn(keep, bvar[c]), unbias));
			}
		} else {
			m = (double)rmean[c];
			inv = __ddiv_rn(1.0, __dsqrt_rn(__dadd_rn((double)rvar[c], eps)));
		}
		double a = __dmul_rn((double)gamma[c], inv);
		mean[c] = m;
		invstd[c] = inv;
		scale[c] = (float)a;
		shift[c] = (float)__dsub_rn((double)beta[c], __dmul_rn(m, a));
	}
}

// Backward, step 1: per-channel sums and the coefficients of dx (device.BNGradient,
// cpu.BatchNormBackward). The forward pass computed z = fmaf(x, a, b) with a = scale[c],
// b = shift[c] and y = relu ? max(z, 0) : z. With dz = dy where z > 0 (everywhere without relu),
// xhat = (x - mean)*invstd and L = N*S, in float64:
//   dbeta[c]  = sum1 = sum dz
//   dgamma[c] = sum2 = (sum dz*x - mean*sum1) * invstd     (= sum dz*xhat)
//   train != 0: k1 = sum1/L, k2 = sum2/L, cxd = -a*k2*invstd,
//               cx[c] = float(cxd), c0[c] = float(-a*k1 + cxd*(double(float(mean)) - mean))
//   train == 0: cx[c] = c0[c] = 0
// so that dnx_bn_backward_dx computes dx = a*dz + cx*(x - float(mean)) + c0, which is
//   a*(dz - dbeta/L - xhat*dgamma/L)   (train: the statistics depend on x), or a*dz.
// gammaGrad and betaGrad, when not NULL, are the parameters' gradients, to which the kernel adds
// float(sum2) and float(sum1) (runtime/train's addParamGrads).
// Launch: block (256, 1, 1) (a multiple of 32); grid (min(C, 65535), 1, 1); block b handles
// channels b, b + gridDim.x, ...
extern "C" __global__ void dnx_bn_backward_reduce(const float* x, const float* dy, const float* scale, const float* shift,
	const double* mean, const double* invstd, int relu, int train, int N, int C, int S,
	int xNStride, int xCStride, int dyNStride, int dyCStride,
	double* dgamma, double* dbeta, float* cx, float* c0, float* gammaGrad, float* betaGrad)
{
	long long L = (long long)N * S;
	for (int c = blockIdx.x; c < C; c += gridDim.x) {
		const float* xc = x + (long long)c * xCStride;
		const float* dyc = dy + (long long)c * dyCStride;
		float a = scale[c], b = shift[c];
		double s1 = 0.0, sxd = 0.0;
		for (long long j = threadIdx.x; j < L; j += blockDim.x) {
			int n = (int)(j / S), s = (int)(j % S);
			float xv = xc[(long long)n * xNStride + s];
			float d = dyc[(long long)n * dyNStride + s];
			if (relu && !dnx_bn_keep(fmaf(xv, a, b)))
				d = 0.0f;
			s1 += (double)d;
			sxd += (double)d * (double)xv;
		}
		s1 = dnx_bn_sum(s1);
		sxd = dnx_bn_sum(sxd);
		if (threadIdx.x == 0) {
			double m = mean[c], inv = invstd[c];
			double sum2 = (sxd - m * s1) * inv;
			dbeta[c] = s1;
			dgamma[c] = sum2;
			float fx = 0.0f, f0 = 0.0f;
			if (train) {
				double k1 = s1 / (double)L, k2 = sum2 / (double)L;
				double af = (double)a;
				double cxd = __dmul_rn(__dmul_rn(-af, k2), inv);
				fx = (float)cxd;
				f0 = (float)__dadd_rn(__dmul_rn(-af, k1), __dmul_rn(cxd, __dsub_rn((double)(float)m, m)));
			}
			cx[c] = fx;
			c0[c] = f0;
			if (gammaGrad != 0)
				gammaGrad[c] += (float)sum2;
			if (betaGrad != 0)
				betaGrad[c] += (float)s1;
		}
	}
}

// Backward, step 2: the input gradient from the coefficients of dnx_bn_backward_reduce:
//   dz = dy where fmaf(x, scale[c], shift[c]) > 0 (everywhere when relu == 0)
//   v  = scale[c]*dz + cx[c]*(x - float(mean[c])) + c0[c]
//   dx = v, or dx + v when acc != 0
// dx may be dy (same strides) when acc == 0.
// Launch: block (256, 1, 1); grid (min(ceil(N*C*S/256), 32*SMs), 1, 1); grid-stride over the
// N*C*S elements.
extern "C" __global__ void dnx_bn_backward_dx(const float* x, const float* dy, float* dx, const float* scale, const float* shift,
	const double* mean, const float* cx, const float* c0, int relu, int acc, int N, int C, int S,
	int xNStride, int xCStride, int dyNStride, int dyCStride, int dxNStride, int dxCStride)
{
	long long total = (long long)N * C * S;
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
		int k = (int)i;
		int s = k % S, t = k / S;
		int c = t % C, n = t / C;
		float a = scale[c];
		float xv = x[(long long)n * xNStride + (long long)c * xCStride + s];
		float d = dy[(long long)n * dyNStride + (long long)c * dyCStride + s];
		if (relu && !dnx_bn_keep(fmaf(xv, a, shift[c])))
			d = 0.0f;
		float v = a * d + cx[c] * (xv - (float)mean[c]) + c0[c];
		float* o = dx + (long long)n * dxNStride + (long long)c * dxCStride + s;
		if (acc)
			v += *o;
		*o = v;
	}
}
