// RMSNorm and softmax over the last dimension, one block per row, f32 arithmetic.
#include "common.cuh"

template <int DT> __device__ void rmsnorm_row(const void* x, const void* w, int wdt, void* out, int n, float eps) {
    __shared__ float sh[33];
    i64 base = (i64)blockIdx.x * n;
    float ss = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) { float v = ldf<DT>(x, base + i); ss += v * v; }
    ss = block_reduce(ss, sh, false);
    float inv = 1.f / sqrtf(ss / (float)n + eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        stf<DT>(out, base + i, ldf<DT>(x, base + i) * inv * ld_any(w, i, wdt));
}
// 16-byte loads: x, weight (same dtype) and out rows are vectors (n a multiple of the lanes, aligned: the host checks).
template <int DT> __device__ void rmsnorm_vec_row(const uint4* x, const uint4* w, uint4* out, int n, float eps) {
    __shared__ float sh[33];
    int nv = n / Vec<DT>::N;
    const uint4* xr = x + (i64)blockIdx.x * nv;
    uint4* orow = out + (i64)blockIdx.x * nv;
    float ss = 0.f;
    for (int i = threadIdx.x; i < nv; i += blockDim.x) {
        uint4 v = xr[i];
#pragma unroll
        for (int j = 0; j < Vec<DT>::N; j++) { float f = vget<DT>(v, j); ss += f * f; }
    }
    ss = block_reduce(ss, sh, false);
    float inv = 1.f / sqrtf(ss / (float)n + eps);
    for (int i = threadIdx.x; i < nv; i += blockDim.x) {
        uint4 v = xr[i], wv = w[i], r;
#pragma unroll
        for (int j = 0; j < Vec<DT>::N; j++) vset<DT>(r, j, vget<DT>(v, j) * inv * vget<DT>(wv, j));
        orow[i] = r;
    }
}
#define RMSNORM_VEC(name, DT) extern "C" __global__ void rmsnorm_vec_##name(const uint4* x, const uint4* w, uint4* out, int n, float eps) { rmsnorm_vec_row<DT>(x, w, out, n, eps); }
FOR_FLOAT_TYPES(RMSNORM_VEC)

#define RMSNORM(name, DT) extern "C" __global__ void rmsnorm_##name(const void* x, const void* w, int wdt, void* out, int n, float eps) { rmsnorm_row<DT>(x, w, wdt, out, n, eps); }
FOR_FLOAT_TYPES(RMSNORM)

template <int DT> __device__ void softmax_row(const void* x, void* out, int n, float scale) {
    __shared__ float sh[33];
    i64 base = (i64)blockIdx.x * n;
    float m = NEG_INF;
    for (int i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, ldf<DT>(x, base + i) * scale);
    m = block_reduce(m, sh, true);
    float s = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += expf(ldf<DT>(x, base + i) * scale - m);
    s = block_reduce(s, sh, false);
    float inv = 1.f / s;
    for (int i = threadIdx.x; i < n; i += blockDim.x) stf<DT>(out, base + i, expf(ldf<DT>(x, base + i) * scale - m) * inv);
}
#define SOFTMAX(name, DT) extern "C" __global__ void softmax_##name(const void* x, void* out, int n, float scale) { softmax_row<DT>(x, out, n, scale); }
FOR_FLOAT_TYPES(SOFTMAX)
