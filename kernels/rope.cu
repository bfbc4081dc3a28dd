// Rotary position embedding of x [tokens, heads, d]; layout 0 = Hugging Face rotate-half (i pairs with i+half),
// 1 = interleaved (2i pairs with 2i+1). The first 2*half dimensions rotate; the rest are copied.
#include "common.cuh"

template <int DT> __device__ void rope_impl(const void* x, const int* pos, const float* invf, void* out,
                                            int heads, int d, int half, int layout, i64 n) {
    for (i64 i = global_index(); i < n; i += global_stride()) {
        int e = (int)(i % d);
        i64 row = i / d;
        i64 base = row * d;
        int p = pos[row / heads];
        float v;
        if (e >= 2 * half) v = ldf<DT>(x, i);
        else {
            int k, i1, i2;
            bool first;
            if (layout == 0) { k = e < half ? e : e - half; i1 = k; i2 = k + half; first = e < half; }
            else { k = e >> 1; i1 = 2 * k; i2 = 2 * k + 1; first = (e & 1) == 0; }
            // angle in double, reduced to [-pi, pi] in double, then the float sine and cosine (accurate to ~1e-7)
            double ang = (double)p * (double)invf[k];
            ang -= rint(ang * 0.15915494309189535) * 6.283185307179586;
            float sf, cf;
            sincosf((float)ang, &sf, &cf);
            float x1 = ldf<DT>(x, base + i1), x2 = ldf<DT>(x, base + i2);
            v = first ? x1 * cf - x2 * sf : x2 * cf + x1 * sf;
        }
        stf<DT>(out, i, v);
    }
}
#define ROPE(name, DT) extern "C" __global__ void rope_##name(const void* x, const int* pos, const float* invf, void* out, int heads, int d, int half, int layout, i64 n) { rope_impl<DT>(x, pos, invf, out, heads, d, half, layout, n); }
FOR_FLOAT_TYPES(ROPE)
