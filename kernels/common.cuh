// Shared device helpers for GpuOps kernels. Compiled with NVRTC (no CUDA headers needed): the C# side
// inlines this file where a kernel says #include "common.cuh" and adds #line markers for error messages.
// dtype codes: keep in sync with GpuOps.Core.Compute.DType.
#pragma once
#define DT_F32 0
#define DT_F16 1
#define DT_BF16 2
#define DT_I8 3
#define DT_U8 4
#define DT_I32 5
#define DT_F8E4M3 6
#define DT_F8E5M2 7
#define DT_I4 8

typedef unsigned short u16;
typedef unsigned char u8;
typedef long long i64;
typedef unsigned long long u64;

#define NEG_INF __int_as_float(0xff800000)

__device__ __forceinline__ float h2f(u16 h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
__device__ __forceinline__ u16 f2h(float f) { u16 h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
__device__ __forceinline__ float bf2f(u16 b) { return __uint_as_float(((unsigned)b) << 16); }
__device__ __forceinline__ u16 f2bf(float f) {
    unsigned u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u16)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (u16)(u >> 16);
}

__device__ __forceinline__ float f8e4m3_to_f(u8 b) {
    int s = b >> 7, e = (b >> 3) & 0xF, m = b & 7;
    if (e == 15 && m == 7) return __int_as_float(0x7fc00000);
    float v = e == 0 ? ldexpf((float)m / 8.f, -6) : ldexpf(1.f + (float)m / 8.f, e - 7);
    return s ? -v : v;
}
__device__ __forceinline__ float f8e5m2_to_f(u8 b) {
    int s = b >> 7, e = (b >> 2) & 0x1F, m = b & 3;
    float v;
    if (e == 31) v = m == 0 ? __int_as_float(0x7f800000) : __int_as_float(0x7fc00000);
    else v = e == 0 ? ldexpf((float)m / 4.f, -14) : ldexpf(1.f + (float)m / 4.f, e - 15);
    return s ? -v : v;
}
// Round to nearest even, saturate to the largest finite value; the same arithmetic as DTypes.EncodeF8 in C#.
__device__ __forceinline__ u8 encode_f8(float f, int man, int bias, float maxf, int maxcode, int nancode) {
    if (f != f) return (u8)nancode;
    int sign = (__float_as_uint(f) >> 31) ? 0x80 : 0;
    float a = fabsf(f);
    int code;
    if (a >= maxf) code = maxcode;
    else if (a < ldexpf(1.f, 1 - bias)) code = (int)rintf(ldexpf(a, -(1 - bias - man)));
    else {
        int e = ilogbf(a);
        float m = ldexpf(a, -e) - 1.f;
        int q = (int)rintf(m * (float)(1 << man));
        if (q == (1 << man)) { q = 0; e++; }
        code = ((e + bias) << man) | q;
        if (code > maxcode) code = maxcode;
    }
    return (u8)(sign | code);
}
__device__ __forceinline__ int sat_int(float v, float lo, float hi) {
    if (v != v) return 0;
    v = rintf(v);
    return (int)fminf(fmaxf(v, lo), hi);
}
__device__ __forceinline__ int f2i32(float v) {
    if (v != v) return 0;
    if (v >= 2147483648.f) return 2147483647;
    if (v <= -2147483648.f) return (int)0x80000000;
    return (int)rintf(v);
}

// Any dtype, chosen at run time (a uniform branch).
__device__ __forceinline__ float ld_any(const void* p, i64 i, int dt) {
    switch (dt) {
    case DT_F32: return ((const float*)p)[i];
    case DT_F16: return h2f(((const u16*)p)[i]);
    case DT_BF16: return bf2f(((const u16*)p)[i]);
    case DT_I8: return (float)((const signed char*)p)[i];
    case DT_U8: return (float)((const u8*)p)[i];
    case DT_I32: return (float)((const int*)p)[i];
    case DT_F8E4M3: return f8e4m3_to_f(((const u8*)p)[i]);
    case DT_F8E5M2: return f8e5m2_to_f(((const u8*)p)[i]);
    default: { int b = ((const u8*)p)[i >> 1]; int n = (i & 1) ? (b >> 4) : (b & 0xF); return (float)(n >= 8 ? n - 16 : n); }
    }
}
// Not for DT_I4 (callers pack nibbles themselves).
__device__ __forceinline__ void st_any(void* p, i64 i, int dt, float v) {
    switch (dt) {
    case DT_F32: ((float*)p)[i] = v; break;
    case DT_F16: ((u16*)p)[i] = f2h(v); break;
    case DT_BF16: ((u16*)p)[i] = f2bf(v); break;
    case DT_I8: ((signed char*)p)[i] = (signed char)sat_int(v, -128.f, 127.f); break;
    case DT_U8: ((u8*)p)[i] = (u8)sat_int(v, 0.f, 255.f); break;
    case DT_I32: ((int*)p)[i] = f2i32(v); break;
    case DT_F8E4M3: ((u8*)p)[i] = encode_f8(v, 3, 7, 448.f, 0x7E, 0x7F); break;
    case DT_F8E5M2: ((u8*)p)[i] = encode_f8(v, 2, 15, 57344.f, 0x7B, 0x7E); break;
    default: break;
    }
}

// Float dtypes chosen at compile time.
template <int DT> __device__ __forceinline__ float ldf(const void* p, i64 i);
template <> __device__ __forceinline__ float ldf<DT_F32>(const void* p, i64 i) { return ((const float*)p)[i]; }
template <> __device__ __forceinline__ float ldf<DT_F16>(const void* p, i64 i) { return h2f(((const u16*)p)[i]); }
template <> __device__ __forceinline__ float ldf<DT_BF16>(const void* p, i64 i) { return bf2f(((const u16*)p)[i]); }
template <int DT> __device__ __forceinline__ void stf(void* p, i64 i, float v);
template <> __device__ __forceinline__ void stf<DT_F32>(void* p, i64 i, float v) { ((float*)p)[i] = v; }
template <> __device__ __forceinline__ void stf<DT_F16>(void* p, i64 i, float v) { ((u16*)p)[i] = f2h(v); }
template <> __device__ __forceinline__ void stf<DT_BF16>(void* p, i64 i, float v) { ((u16*)p)[i] = f2bf(v); }

// extern "C" entry points name_f32 / name_f16 / name_bf16 for a template kernel body.
#define FOR_FLOAT_TYPES(M) M(f32, DT_F32) M(f16, DT_F16) M(bf16, DT_BF16)

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
// Sum or max over the block; every thread must call it; sh holds at least 33 floats.
__device__ __forceinline__ float block_reduce(float v, float* sh, bool is_max) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = is_max ? warp_max(v) : warp_sum(v);
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    if (w == 0) {
        float x = lane < nw ? sh[lane] : (is_max ? NEG_INF : 0.f);
        x = is_max ? warp_max(x) : warp_sum(x);
        if (lane == 0) sh[32] = x;
    }
    __syncthreads();
    return sh[32];
}

__device__ __forceinline__ i64 global_index() { return (i64)blockIdx.x * blockDim.x + threadIdx.x; }
__device__ __forceinline__ i64 global_stride() { return (i64)gridDim.x * blockDim.x; }

// 16-byte vectors of float dtypes: 4 f32 or 8 f16/bf16 lanes (indices must be compile-time constants after unrolling).
template <int DT> struct Vec { static constexpr int N = DT == DT_F32 ? 4 : 8; };
template <int DT> __device__ __forceinline__ float vget(const uint4& v, int j) {
    unsigned w = j < (Vec<DT>::N / 4) ? v.x : j < 2 * (Vec<DT>::N / 4) ? v.y : j < 3 * (Vec<DT>::N / 4) ? v.z : v.w;
    if (DT == DT_F32) return __uint_as_float(w);
    u16 h = (j & 1) ? (u16)(w >> 16) : (u16)(w & 0xffffu);
    return DT == DT_F16 ? h2f(h) : bf2f(h);
}
template <int DT> __device__ __forceinline__ void vset(uint4& v, int j, float f) {
    unsigned* w = j < (Vec<DT>::N / 4) ? &v.x : j < 2 * (Vec<DT>::N / 4) ? &v.y : j < 3 * (Vec<DT>::N / 4) ? &v.z : &v.w;
    if (DT == DT_F32) { *w = __float_as_uint(f); return; }
    unsigned h = DT == DT_F16 ? (unsigned)f2h(f) : (unsigned)f2bf(f);
    *w = (j & 1) ? ((*w & 0xffffu) | (h << 16)) : ((*w & 0xffff0000u) | h);
}
