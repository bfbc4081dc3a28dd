// Row reductions over the last dimension (one block per row) and argmax.
#include "common.cuh"

// op: 0 sum, 1 max, 2 mean, 3 sum of squares. out is f32 [rows].
template <int DT> __device__ void reduce_rows(const void* x, float* out, int n, int op) {
    __shared__ float sh[33];
    i64 base = (i64)blockIdx.x * n;
    bool is_max = op == 1;
    float acc = is_max ? NEG_INF : 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float v = ldf<DT>(x, base + i);
        acc = is_max ? fmaxf(acc, v) : acc + (op == 3 ? v * v : v);
    }
    acc = block_reduce(acc, sh, is_max);
    if (threadIdx.x == 0) out[blockIdx.x] = op == 2 ? acc / (float)n : acc;
}
#define REDUCE(name, DT) extern "C" __global__ void reduce_##name(const void* x, float* out, int n, int op) { reduce_rows<DT>(x, out, n, op); }
FOR_FLOAT_TYPES(REDUCE)

// Index of the largest value per row (ties: lowest index).
template <int DT> __device__ void argmax_rows(const void* x, int* out, int n) {
    __shared__ float sv[32];
    __shared__ int si[32];
    i64 base = (i64)blockIdx.x * n;
    float best = NEG_INF;
    int bi = 0x7fffffff;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float v = ldf<DT>(x, base + i);
        if (v > best || bi == 0x7fffffff) { best = v; bi = i; }
    }
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(0xffffffffu, best, o);
        int oi = __shfl_xor_sync(0xffffffffu, bi, o);
        if (ov > best || (ov == best && oi < bi)) { best = ov; bi = oi; }
    }
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    if (lane == 0) { sv[w] = best; si[w] = bi; }
    __syncthreads();
    if (w == 0) {
        best = lane < nw ? sv[lane] : NEG_INF;
        bi = lane < nw ? si[lane] : 0x7fffffff;
        for (int o = 16; o > 0; o >>= 1) {
            float ov = __shfl_xor_sync(0xffffffffu, best, o);
            int oi = __shfl_xor_sync(0xffffffffu, bi, o);
            if (ov > best || (ov == best && oi < bi)) { best = ov; bi = oi; }
        }
        if (lane == 0) out[blockIdx.x] = bi == 0x7fffffff ? 0 : bi;
    }
}
#define ARGMAX(name, DT) extern "C" __global__ void argmax_##name(const void* x, int* out, int n) { argmax_rows<DT>(x, out, n); }
FOR_FLOAT_TYPES(ARGMAX)
