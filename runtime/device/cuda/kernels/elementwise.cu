// dnx CUDA kernels: element-wise ops on dense values. ReLU forward and backward, binary
// arithmetic with a broadcast operand, and gradient accumulation.
//
// Self-contained for NVRTC (and nvcc -ptx): no #include, only CUDA builtins.
//
// Every value here is dense (device.Operand.Dense): n < 2^31 contiguous floats. A strided
// operand (a channel slice of a dense block's buffer with batch > 1) is not lowered onto these
// kernels, as on the CPU. Indices are 64-bit in the grid-stride loops.

// ReLU forward (the trainer's reluUnit and the executor's Relu):
//   y[i] = x[i] < 0 ? 0 : x[i]      (NaN and -0 pass through, as the Go code does)
// y may be x.
// Launch: block (256, 1, 1); grid (min(ceil(n/256), 32*SMs), 1, 1); grid-stride over n.
extern "C" __global__ void dnx_relu_forward(const float* x, float* y, int n)
{
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
		float v = x[i];
		y[i] = v < 0.0f ? 0.0f : v;
	}
}

// ReLU backward from the forward output y (cpu.ReluBackward):
//   g = dy[i] where the bits of y[i] as an int32 are > 0 (y > 0; not -0, not a negative NaN),
//       else 0
//   dx[i] = g, or dx[i] + g when acc != 0
// dx may be dy when acc == 0.
// Launch: block (256, 1, 1); grid (min(ceil(n/256), 32*SMs), 1, 1); grid-stride over n.
extern "C" __global__ void dnx_relu_backward(const float* y, const float* dy, float* dx, int n, int acc)
{
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
		float g = __float_as_int(y[i]) > 0 ? dy[i] : 0.0f;
		if (acc)
			g += dx[i];
		dx[i] = g;
	}
}

// Add, Sub, Mul, Div of a value a of the output's shape and a broadcast operand b
// (cpu.Binary, extended by bLen to a per-channel operand):
//   j    = (i / per) % bLen
//   y[i] = a[i] OP b[j]        (bFirst == 0)
//   y[i] = b[j] OP a[i]        (bFirst != 0: b is the op's first input)
//   OP   = + (op 0), - (op 1), * (op 2), / (op 3)
// Shapes: the same shape: per = 1, bLen = n; a scalar: per = n (or bLen = 1); b of shape
// [N, C, 1, 1] against [N, C, H, W] (leading dims then 1s): per = H*W, bLen = N*C; a
// per-channel b of shape [1, C, 1, 1] or [C, 1, 1]: per = H*W, bLen = C. y may be a.
// Launch: block (256, 1, 1); grid (min(ceil(n/256), 32*SMs), 1, 1); grid-stride over n.
extern "C" __global__ void dnx_binary_broadcast(const float* a, const float* b, float* y, int n, int per, int bLen,
	int op, int bFirst)
{
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
		float u = a[i];
		float v = b[(int)((i / per) % bLen)];
		if (bFirst) {
			float t = u;
			u = v;
			v = t;
		}
		float r;
		switch (op) {
		case 0:
			r = u + v;
			break;
		case 1:
			r = u - v;
			break;
		case 2:
			r = u * v;
			break;
		default:
			r = u / v;
			break;
		}
		y[i] = r;
	}
}

// Gradient accumulation (a value read by several nodes, a parameter's gradient):
//   y[i] = y[i] + x[i]
// Launch: block (256, 1, 1); grid (min(ceil(n/256), 32*SMs), 1, 1); grid-stride over n.
extern "C" __global__ void dnx_accumulate(const float* x, float* y, int n)
{
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
		y[i] += x[i];
}
