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
