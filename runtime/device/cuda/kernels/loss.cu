// dnx CUDA kernels: softmax cross-entropy, PyTorch's CrossEntropyLoss(reduction='mean',
// label_smoothing=eps) as runtime/train's crossEntropy computes it, in float64:
//   q[i,c]  = (1-eps)*[c == y_i] + eps/K
//   lse_i   = max_i + log(sum_c exp(z[i,c] - max_i))
//   loss    = (1/N) sum_i sum_c q[i,c] * (lse_i - z[i,c])
//   dz[i,c] = float( (exp(z[i,c] - lse_i) - q[i,c]) / N )
// and the count of samples whose largest logit (the first on ties; NaN never wins) is the label.
// eps = 0 is plain cross-entropy.
//
// Self-contained for NVRTC (and nvcc -ptx): no #include, only CUDA builtins.
//
// z is [N, K] row-major and dense; labels are int32 (the host converts the int64 labels and
// rejects any outside [0, K) before the launch, as crossEntropy does; a kernel given one anyway
// writes a NaN loss for its row and counts it wrong). Requires N*K < 2^31.
//
// The mean is taken by a separate one-block kernel so that the loss does not depend on the
// order in which blocks finish (no atomics).

// dnx_xent_sum returns the block's sum of v to every thread. All threads must call it; the block
// has a multiple of 32 threads.
static __device__ double dnx_xent_sum(double v)
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
	__syncthreads();
	return r;
}

// dnx_xent_better reports whether (v, i) beats (bv, bi) for the arg-max: a larger value, or an
// equal one at a smaller index. NaN never beats anything (v > bv is false), as in the Go loop.
static __device__ __forceinline__ bool dnx_xent_better(float v, int i, float bv, int bi)
{
	return v > bv || (v == bv && i < bi);
}

// dnx_xent_argmax returns the block's largest value and its first index to every thread. Threads
// that saw no value pass (-inf, K); a row whose values are all -inf or NaN returns index 0 when
// some value is -inf (the Go loop's initial arg), and K when all are NaN (the kernel maps it to
// 0 too).
static __device__ void dnx_xent_argmax(float* v, int* i)
{
	__shared__ float pv[32];
	__shared__ int pi[32];
	for (int o = 16; o > 0; o >>= 1) {
		float ov = __shfl_down_sync(0xffffffffu, *v, o);
		int oi = __shfl_down_sync(0xffffffffu, *i, o);
		if (dnx_xent_better(ov, oi, *v, *i)) {
			*v = ov;
			*i = oi;
		}
	}
	int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
	if (lane == 0) {
		pv[warp] = *v;
		pi[warp] = *i;
	}
	__syncthreads();
	if (warp == 0) {
		int warps = (blockDim.x + 31) >> 5;
		float bv = lane < warps ? pv[lane] : -__int_as_float(0x7f800000);
		int bi = lane < warps ? pi[lane] : 0x7fffffff;
		for (int o = 16; o > 0; o >>= 1) {
			float ov = __shfl_down_sync(0xffffffffu, bv, o);
			int oi = __shfl_down_sync(0xffffffffu, bi, o);
			if (dnx_xent_better(ov, oi, bv, bi)) {
				bv = ov;
				bi = oi;
			}
		}
		if (lane == 0) {
			pv[0] = bv;
			pi[0] = bi;
		}
	}
	__syncthreads();
	*v = pv[0];
	*i = pi[0];
	__syncthreads();
}

// Forward, per sample: rowLoss[i] = sum_c q[i,c]*(lse_i - z[i,c]), rowLSE[i] = lse_i (for the
// backward kernel), correct[i] = 1 when the first largest logit is the label, else 0.
// max_i is the largest logit (-inf when there is none but NaN), in float64 thereafter.
// Launch: block (256, 1, 1) (a multiple of 32); grid (min(N, 65535), 1, 1); block b handles
// rows b, b + gridDim.x, ...
extern "C" __global__ void dnx_softmax_xent_forward(const float* z, const int* labels, int N, int K, double eps,
	double* rowLoss, double* rowLSE, int* correct)
{
	for (int r = blockIdx.x; r < N; r += gridDim.x) {
		const float* zr = z + (long long)r * K;
		float bv = -__int_as_float(0x7f800000);
		int bi = K;
		for (int c = threadIdx.x; c < K; c += blockDim.x)
			if (dnx_xent_better(zr[c], c, bv, bi)) {
				bv = zr[c];
				bi = c;
			}
		dnx_xent_argmax(&bv, &bi);
		if (bi >= K)
			bi = 0;
		double mx = (double)bv;
		double s = 0.0;
		for (int c = threadIdx.x; c < K; c += blockDim.x)
			s += exp((double)zr[c] - mx);
		s = dnx_xent_sum(s);
		double lse = mx + log(s);
		int y = labels[r];
		double base = eps / (double)K;
		double l = 0.0;
		for (int c = threadIdx.x; c < K; c += blockDim.x) {
			double q = base;
			if (c == y)
				q += 1.0 - eps;
			l += q * (lse - (double)zr[c]);
		}
		l = dnx_xent_sum(l);
		if (threadIdx.x == 0) {
			bool valid = y >= 0 && y < K;
			rowLoss[r] = valid ? l : __longlong_as_double(0x7ff8000000000000LL);
			rowLSE[r] = lse;
			correct[r] = valid && bi == y ? 1 : 0;
		}
	}
}

// The mean loss and the number correct, in a fixed order:
//   loss[0] = (sum_i rowLoss[i]) / N,   ncorrect[0] = sum_i correct[i]
// Launch: block (256, 1, 1) (a multiple of 32); grid (1, 1, 1).
extern "C" __global__ void dnx_softmax_xent_mean(const double* rowLoss, const int* correct, int N, double* loss, int* ncorrect)
{
	double s = 0.0, k = 0.0;
	for (int i = threadIdx.x; i < N; i += blockDim.x) {
		s += rowLoss[i];
		k += (double)correct[i];
	}
	s = dnx_xent_sum(s);
	k = dnx_xent_sum(k);
	if (threadIdx.x == 0) {
		loss[0] = s / (double)N;
		ncorrect[0] = (int)k;
	}
}

// Backward, from the forward kernel's rowLSE:
//   dz[i,c] = float( (exp(z[i,c] - lse_i) - q[i,c]) / N )
// Launch: block (256, 1, 1); grid (min(ceil(N*K/256), 32*SMs), 1, 1); grid-stride over N*K.
extern "C" __global__ void dnx_softmax_xent_backward(const float* z, const int* labels, const double* rowLSE, int N, int K,
	double eps, float* dz)
{
	long long total = (long long)N * K;
	double base = eps / (double)K;
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
		int k = (int)i;
		int r = k / K, c = k % K;
		double q = base;
		if (c == labels[r])
			q += 1.0 - eps;
		dz[i] = (float)((exp((double)z[i] - rowLSE[r]) - q) / (double)N);
	}
}
