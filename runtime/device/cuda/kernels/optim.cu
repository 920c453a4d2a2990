// dnx CUDA kernels: the optimizers (SGD with momentum, dampening, Nesterov and weight decay;
// Adam; AdamW) and global gradient-norm clipping, as runtime/train's optim.go computes them,
// which follows torch.optim (1.13) in float32 operation for operation.
//
// Self-contained for NVRTC (and nvcc -ptx): no #include, only CUDA builtins.
//
// The updates use the _rn intrinsics (__fmul_rn, __fadd_rn, __fdiv_rn, __fsqrt_rn), which the
// compiler never contracts into FMAs: each float32 operation rounds on its own, as in the Go
// code where Go does not fuse x*y + z (amd64 below GOAMD64=v3), so an update can match the
// CPU's bit for bit given the same gradient (unverified until a GPU runs it). Scalars that runtime/train
// computes in float64 per step (the learning-rate terms, bias corrections) are computed by the
// host the same way and passed as floats.
//
// Every array is n < 2^31 contiguous floats (a parameter, its gradient and its state; or all
// parameters of one arena at once, since the update is element-wise).

// SGD (sgdUpdate), per element, with g the gradient (not modified) and p the parameter:
//   g = g + wd*p                          when wd != 0
//   when momentum != 0:
//     b = g on the first step (first != 0), else b = buf*momentum + damp*g;  buf = b
//     g = g + momentum*b (nesterov != 0), else g = b
//   p = p + neglr*g
// Host-side scalars: neglr = float32(-lr), wd = float32(weight_decay),
// momentum = float32(momentum), damp = float32(1 - dampening). buf may be NULL when
// momentum == 0.
// Launch: block (256, 1, 1); grid (min(ceil(n/256), 32*SMs), 1, 1); grid-stride over n.
extern "C" __global__ void dnx_sgd_update(float* p, const float* g, float* buf, int n, float neglr, float wd, float momentum,
	float damp, int nesterov, int first)
{
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
		float pv = p[i];
		float gv = g[i];
		if (wd != 0.0f)
			gv = __fadd_rn(gv, __fmul_rn(wd, pv));
		if (momentum != 0.0f) {
			float b = gv;
			if (!first)
				b = __fadd_rn(__fmul_rn(buf[i], momentum), __fmul_rn(damp, gv));
			buf[i] = b;
			if (nesterov)
				gv = __fadd_rn(gv, __fmul_rn(momentum, b));
			else
				gv = b;
		}
		p[i] = __fadd_rn(pv, __fmul_rn(neglr, gv));
	}
}

// Adam and AdamW (adamUpdate), per element, t = step + 1 the update's number:
//   decoupled (AdamW), wd != 0:  p = p*decay
//   Adam, wd != 0:               g = g + wd*p
//   m = m*b1 + (1-b1)*g
//   v = v*b2 + ((1-b2)*g)*g
//   p = p + negStep*(m / (sqrt(v)/bc2sqrt + eps))
// with 1-b1 and 1-b2 rounded in float32 and the host-side scalars (float64, then rounded):
//   negStep = float32(-lr/(1 - beta1^t)), bc2sqrt = float32(sqrt(1 - beta2^t)),
//   decay = float32(1 - lr*weight_decay), b1, b2, eps, wd = float32 of beta1, beta2, eps,
//   weight_decay.
// m and v start at zero (the host clears them before the first update).
// Launch: block (256, 1, 1); grid (min(ceil(n/256), 32*SMs), 1, 1); grid-stride over n.
extern "C" __global__ void dnx_adam_update(float* p, const float* g, float* m, float* v, int n, float negStep, float b1,
	float b2, float bc2sqrt, float eps, float wd, float decay, int decoupled)
{
	float ob1 = __fsub_rn(1.0f, b1), ob2 = __fsub_rn(1.0f, b2);
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
		float pv = p[i];
		float gv = g[i];
		if (wd != 0.0f) {
			if (decoupled)
				pv = __fmul_rn(pv, decay);
			else
				gv = __fadd_rn(gv, __fmul_rn(wd, pv));
		}
		float mv = __fadd_rn(__fmul_rn(m[i], b1), __fmul_rn(ob1, gv));
		float vv = __fadd_rn(__fmul_rn(v[i], b2), __fmul_rn(__fmul_rn(ob2, gv), gv));
		m[i] = mv;
		v[i] = vv;
		float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vv), bc2sqrt), eps);
		p[i] = __fadd_rn(pv, __fmul_rn(negStep, __fdiv_rn(mv, denom)));
	}
}

// dnx_optim_sum returns the block's sum of v to every thread. All threads must call it; the
// block has a multiple of 32 threads.
static __device__ double dnx_optim_sum(double v)
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

// Gradient norm (gradNorm), stage 1: each block's share of the sum of squares, in float64,
//   partial[b] = sum over i = b*blockDim + t + k*gridDim*blockDim of double(x[i])^2
// Launch: block (256, 1, 1) (a multiple of 32); grid (G, 1, 1) with G fixed by the host (e.g.
// 4*SMs, at most the partial buffer's length) so that the result does not depend on timing.
extern "C" __global__ void dnx_sum_squares(const float* x, int n, double* partial)
{
	double s = 0.0;
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
		double v = (double)x[i];
		s += v * v;
	}
	s = dnx_optim_sum(s);
	if (threadIdx.x == 0)
		partial[blockIdx.x] = s;
}

// Gradient norm, stage 2: out[0] = sum_b partial[b] (acc == 0) or out[0] + sum_b partial[b]
// (acc != 0: the parameters' gradients one array after another). The norm is sqrt(out[0]),
// taken by the host when it reads the value back.
// Launch: block (256, 1, 1) (a multiple of 32); grid (1, 1, 1).
extern "C" __global__ void dnx_sum_partials(const double* partial, int count, double* out, int acc)
{
	double s = 0.0;
	for (int i = threadIdx.x; i < count; i += blockDim.x)
		s += partial[i];
	s = dnx_optim_sum(s);
	if (threadIdx.x == 0)
		out[0] = acc ? out[0] + s : s;
}

// Gradient clipping (clipGrads): x[i] = x[i]*coef, coef = float32(min(1, maxNorm/(norm+1e-6)))
// computed by the host from the norm.
// Launch: block (256, 1, 1); grid (min(ceil(n/256), 32*SMs), 1, 1); grid-stride over n.
extern "C" __global__ void dnx_scale(float* x, int n, float coef)
{
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
		x[i] = __fmul_rn(x[i], coef);
}
