// SwiGLU: out = silu(gate) * up (f32 arithmetic).
#include "common.cuh"

template <int DT> __device__ void silu_mul_impl(const void* g, const void* u, void* out, i64 n) {
    for (i64 i = global_index(); i < n; i += global_stride()) {
        float a = ldf<DT>(g, i);
        stf<DT>(out, i, a / (1.f + expf(-a)) * ldf<DT>(u, i));
    }
}
#define SILU_MUL(name, DT) extern "C" __global__ void silu_mul_##name(const void* g, const void* u, void* out, i64 n) { silu_mul_impl<DT>(g, u, out, n); }
FOR_FLOAT_TYPES(SILU_MUL)

// 16-byte loads and stores (n a multiple of the lanes, pointers 16-byte aligned: the host checks).
template <int DT> __device__ void silu_mul_vec_impl(const uint4* g, const uint4* u, uint4* out, i64 nvec) {
    for (i64 i = global_index(); i < nvec; i += global_stride()) {
        uint4 a = g[i], b = u[i], r;
#pragma unroll
        for (int j = 0; j < Vec<DT>::N; j++) {
            float x = vget<DT>(a, j);
            vset<DT>(r, j, x / (1.f + expf(-x)) * vget<DT>(b, j));
        }
        out[i] = r;
    }
}
#define SILU_MUL_VEC(name, DT) extern "C" __global__ void silu_mul_vec_##name(const uint4* g, const uint4* u, uint4* out, i64 nvec) { silu_mul_vec_impl<DT>(g, u, out, nvec); }
FOR_FLOAT_TYPES(SILU_MUL_VEC)
