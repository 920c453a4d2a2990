// dnx CUDA kernels: DenseNet's pools. Global average pool (the classifier's input) and the 2x2
// stride-2 average pool of the transitions, forward (with an optional BN-ReLU prologue) and
// backward. Max pooling (the stem's 3x3 stride-2) and other windows go to cuDNN.
//
// Self-contained for NVRTC (and nvcc -ptx): no #include, only CUDA builtins.
//
// Addressing as in bn.cu: element (n, c, s) of a tensor of N items, C channels and S pixels per
// plane is at n*nStride + c*cStride + s, a plane being H rows of W floats (s = h*W + w). NCHW
// with batch strides: nStride = BatchStride, cStride = S; the trainer's channel-major layout:
// nStride = S, cStride = the channel row stride. Requires N*C*S < 2^31.

// Global average pool, forward:
//   y(n,c) = float( (sum_s x(n,c,s)) / S )     summed in float64 (runtime/train's gapUnit)
// y(n,c) is at y[n*yNStride + c*yCStride]: NCHW output [N, C, 1, 1] with a batch stride:
// yNStride = BatchStride, yCStride = 1; channel-major: yNStride = 1, yCStride = the row stride.
// Launch: block (256, 1, 1) (a multiple of 32); grid (min(ceil(N*C/8), 32*SMs), 1, 1); one warp
// per (n, c) plane, warp-stride over the N*C planes.
extern "C" __global__ void dnx_global_avgpool_forward(const float* x, float* y, int N, int C, int S,
	int xNStride, int xCStride, int yNStride, int yCStride)
{
	int lane = threadIdx.x & 31;
	long long warp = (blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5;
	long long warps = ((long long)gridDim.x * blockDim.x) >> 5;
	long long planes = (long long)N * C;
	for (long long p = warp; p < planes; p += warps) {
		int n = (int)(p / C), c = (int)(p % C);
		const float* xp = x + (long long)n * xNStride + (long long)c * xCStride;
		double sum = 0.0;
		for (int s = lane; s < S; s += 32)
			sum += (double)xp[s];
		for (int o = 16; o > 0; o >>= 1)
			sum += __shfl_down_sync(0xffffffffu, sum, o);
		if (lane == 0)
			y[(long long)n * yNStride + (long long)c * yCStride] = (float)(sum / (double)S);
	}
}

// Global average pool, backward (gapUnit.backward):
//   g = dy(n,c) * (1.0f/S)       (float32, the reciprocal rounded once)
//   dx(n,c,s) = g, or dx(n,c,s) + g when acc != 0
// dy(n,c) is at dy[n*dyNStride + c*dyCStride] (as y in the forward kernel).
// Launch: block (256, 1, 1); grid (min(ceil(N*C*S/256), 32*SMs), 1, 1); grid-stride over the
// N*C*S elements of dx.
extern "C" __global__ void dnx_global_avgpool_backward(const float* dy, float* dx, int N, int C, int S,
	int dyNStride, int dyCStride, int dxNStride, int dxCStride, int acc)
{
	float inv = 1.0f / (float)S;
	long long total = (long long)N * C * S;
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
		int k = (int)i;
		int s = k % S, t = k / S;
		int c = t % C, n = t / C;
		float g = dy[(long long)n * dyNStride + (long long)c * dyCStride] * inv;
		float* o = dx + (long long)n * dxNStride + (long long)c * dxCStride + s;
		if (acc)
			g += *o;
		*o = g;
	}
}

// Average pool 2x2, stride 2, no padding, floor mode (DenseNet's transitions), forward, with the
// FusedAveragePool prologue (cpu's avg2x2RowGo): OH = H/2, OW = W/2, and for oy < OH, ox < OW
//   f(v) = fmaf(v, scale[c], shift[c]) (v when scale is NULL), then max(., 0) when relu
//          (NaN stays NaN)
//   a = f(x[2oy][2ox]), b = f(x[2oy+1][2ox]), c = f(x[2oy][2ox+1]), d = f(x[2oy+1][2ox+1])
//   y[oy][ox] = ((a + b) + (c + d)) * 0.25f
// x(n,c,h,w) is at n*xNStride + c*xCStride + h*W + w and y(n,c,oy,ox) at
// n*yNStride + c*yCStride + oy*OW + ox. An odd last row or column is not read.
// Launch: block (256, 1, 1); grid (min(ceil(N*C*OH*OW/256), 32*SMs), 1, 1); grid-stride over
// the outputs.
extern "C" __global__ void dnx_avgpool2x2_forward(const float* x, float* y, const float* scale, const float* shift, int relu,
	int N, int C, int H, int W, int xNStride, int xCStride, int yNStride, int yCStride)
{
	int OH = H / 2, OW = W / 2;
	int So = OH * OW;
	long long total = (long long)N * C * So;
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
		int k = (int)i;
		int s = k % So, t = k / So;
		int ch = t % C, n = t / C;
		int oy = s / OW, ox = s % OW;
		const float* r0 = x + (long long)n * xNStride + (long long)ch * xCStride + (long long)(2 * oy) * W + 2 * ox;
		const float* r1 = r0 + W;
		float v[4] = {r0[0], r1[0], r0[1], r1[1]};
		for (int j = 0; j < 4; j++) {
			if (scale != 0)
				v[j] = fmaf(v[j], scale[ch], shift[ch]);
			if (relu && v[j] < 0.0f)
				v[j] = 0.0f;
		}
		y[(long long)n * yNStride + (long long)ch * yCStride + s] = ((v[0] + v[1]) + (v[2] + v[3])) * 0.25f;
	}
}

// Average pool 2x2, stride 2, no padding, backward (runtime/train's avgBackward2x2), one thread
// per input element, so no atomics: OH = H/2, OW = W/2 and
//   g = dy[h/2][w/2] / 4 when h/2 < OH and w/2 < OW, else 0 (an odd last row or column)
//   dx[h][w] = g, or dx[h][w] + g when acc != 0
// Strides as in dnx_avgpool2x2_forward (dy like y, dx like x).
// Launch: block (256, 1, 1); grid (min(ceil(N*C*H*W/256), 32*SMs), 1, 1); grid-stride over the
// N*C*H*W elements of dx.
extern "C" __global__ void dnx_avgpool2x2_backward(const float* dy, float* dx, int N, int C, int H, int W,
	int dyNStride, int dyCStride, int dxNStride, int dxCStride, int acc)
{
	int OH = H / 2, OW = W / 2;
	int S = H * W;
	long long total = (long long)N * C * S;
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
		int k = (int)i;
		int s = k % S, t = k / S;
		int c = t % C, n = t / C;
		int h = s / W, w = s % W;
		int oy = h >> 1, ox = w >> 1;
		float g = 0.0f;
		if (oy < OH && ox < OW)
			g = dy[(long long)n * dyNStride + (long long)c * dyCStride + oy * OW + ox] / 4.0f;
		float* o = dx + (long long)n * dxNStride + (long long)c * dxCStride + s;
		if (acc)
			g += *o;
		*o = g;
	}
}
