// dnx CUDA kernels: channel concatenation into a dense block's buffer.
//
// Self-contained for NVRTC (and nvcc -ptx): no #include, only CUDA builtins.
//
// The planner places each layer of a dense block at its channel offset inside the block's
// buffer, so a concatenation normally copies nothing (the producing kernel writes the slice in
// place, through an operand whose batch stride is the buffer's). This kernel moves the parts
// that cannot be placed (a graph input, a value also read elsewhere: cpudev's concatCopy), and,
// with acc, adds a slice's gradient into a separate gradient buffer.
//
// Addressing as in bn.cu: element (n, c, s) of a tensor of N items, C channels and S pixels per
// plane is at n*nStride + c*cStride + s. Requires N*C*S < 2^31.

// Copy (or add) src into channels [c0, c0 + C) of dst:
//   d = dst[n*dstNStride + (c0 + c)*dstCStride + s]
//   d = src[n*srcNStride + c*srcCStride + s]          (acc == 0)
//   d = d + src[n*srcNStride + c*srcCStride + s]      (acc != 0)
// for n < N, c < C, s < S. NCHW with batch strides: nStride = BatchStride, cStride = S; the
// trainer's channel-major layout: nStride = S, cStride = the channel row stride. src and dst
// must not overlap.
// Launch: block (256, 1, 1); grid (min(ceil(N*C*S/256), 32*SMs), 1, 1); grid-stride over the
// N*C*S elements in (n, c, s) order, so consecutive threads move consecutive pixels.
extern "C" __global__ void dnx_copy_channels(const float* src, float* dst, int N, int C, int S,
	int srcNStride, int srcCStride, int dstNStride, int dstCStride, int c0, int acc)
{
	long long total = (long long)N * C * S;
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
		int k = (int)i;
		int s = k % S, t = k / S;
		int c = t % C, n = t / C;
		float v = src[(long long)n * srcNStride + (long long)c * srcCStride + s];
		float* d = dst + (long long)n * dstNStride + (long long)(c0 + c) * dstCStride + s;
		if (acc)
			v += *d;
		*d = v;
	}
}
