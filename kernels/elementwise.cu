// Elementwise kernels: cast between any dtypes, binary and unary ops, random fill, strided copy, 16-byte copy.
#include "common.cuh"

extern "C" __global__ void cast_any(const void* src, int sdt, void* dst, int ddt, i64 n) {
    if (ddt == DT_I4) {
        i64 nb = (n + 1) / 2;
        for (i64 b = global_index(); b < nb; b += global_stride()) {
            int lo = sat_int(ld_any(src, 2 * b, sdt), -8.f, 7.f);
            int hi = 2 * b + 1 < n ? sat_int(ld_any(src, 2 * b + 1, sdt), -8.f, 7.f) : 0;
            ((u8*)dst)[b] = (u8)((lo & 0xF) | ((hi & 0xF) << 4));
        }
        return;
    }
    for (i64 i = global_index(); i < n; i += global_stride()) st_any(dst, i, ddt, ld_any(src, i, sdt));
}

// op: 0 add, 1 sub, 2 mul, 3 max. b is broadcast: element i uses b[i % nb].
extern "C" __global__ void binary_any(int op, const void* a, int adt, const void* b, int bdt, void* d, int ddt, i64 n, i64 nb) {
    for (i64 i = global_index(); i < n; i += global_stride()) {
        float x = ld_any(a, i, adt), y = ld_any(b, i % nb, bdt), r;
        switch (op) { case 0: r = x + y; break; case 1: r = x - y; break; case 2: r = x * y; break; default: r = fmaxf(x, y); }
        st_any(d, i, ddt, r);
    }
}

// op: 0 scale, 1 silu, 2 relu, 3 gelu (tanh), 4 exp.
extern "C" __global__ void unary_any(int op, const void* x, int xdt, void* d, int ddt, i64 n, float alpha) {
    for (i64 i = global_index(); i < n; i += global_stride()) {
        float v = ld_any(x, i, xdt), r;
        switch (op) {
        case 0: r = v * alpha; break;
        case 1: r = v / (1.f + expf(-v)); break;
        case 2: r = v > 0.f ? v : 0.f; break;
        case 3: r = 0.5f * v * (1.f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v))); break;
        default: r = expf(v);
        }
        st_any(d, i, ddt, r);
    }
}

__device__ __forceinline__ u64 splitmix64(u64 x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// Uniform values in [lo, hi) (benchmarks never time zeros).
extern "C" __global__ void fill_uniform(void* dst, int dt, i64 n, u64 seed, float lo, float hi) {
    for (i64 i = global_index(); i < n; i += global_stride()) {
        float u = (float)(splitmix64(seed ^ (u64)i * 0xD1B54A32D192ED03ull) >> 40) * (1.f / 16777216.f);
        st_any(dst, i, dt, lo + (hi - lo) * u);
    }
}

// dst (contiguous) = src with shape s0..s3 and element strides t0..t3; es bytes per element.
extern "C" __global__ void copy_strided(const u8* src, u8* dst, int es, int s0, int s1, int s2, int s3,
                                        i64 t0, i64 t1, i64 t2, i64 t3, i64 n) {
    for (i64 i = global_index(); i < n; i += global_stride()) {
        i64 r = i;
        i64 i3 = r % s3; r /= s3;
        i64 i2 = r % s2; r /= s2;
        i64 i1 = r % s1; r /= s1;
        i64 i0 = r;
        i64 so = i0 * t0 + i1 * t1 + i2 * t2 + i3 * t3;
        switch (es) {
        case 1: dst[i] = src[so]; break;
        case 2: ((u16*)dst)[i] = ((const u16*)src)[so]; break;
        case 4: ((unsigned*)dst)[i] = ((const unsigned*)src)[so]; break;
        default: ((u64*)dst)[i] = ((const u64*)src)[so]; break;
        }
    }
}

// 16-byte loads and stores, several in flight per thread (device copy at the bandwidth limit).
extern "C" __global__ void copy_vec16(const uint4* __restrict__ src, uint4* __restrict__ dst, i64 n16) {
    i64 stride = global_stride();
    i64 i = global_index();
    for (; i + 3 * stride < n16; i += 4 * stride) {
        uint4 a = src[i], b = src[i + stride], c = src[i + 2 * stride], d = src[i + 3 * stride];
        dst[i] = a; dst[i + stride] = b; dst[i + 2 * stride] = c; dst[i + 3 * stride] = d;
    }
    for (; i < n16; i += stride) dst[i] = src[i];
}

extern "C" __global__ void empty_kernel() {}

// Tiled transpose of the last two dimensions: src [batch, rows, cols] -> dst [batch, cols, rows] (256 threads as 32x8).
template <typename T> __device__ void transpose_tile(const T* src, T* dst, int rows, int cols) {
    __shared__ T tile[32][33];
    int tx = threadIdx.x & 31, ty = threadIdx.x >> 5;
    i64 batch = (i64)blockIdx.z * rows * cols;
    int x = blockIdx.x * 32 + tx, y = blockIdx.y * 32 + ty;
    for (int j = 0; j < 32; j += 8)
        if (x < cols && y + j < rows) tile[ty + j][tx] = src[batch + (i64)(y + j) * cols + x];
    __syncthreads();
    x = blockIdx.y * 32 + tx;
    y = blockIdx.x * 32 + ty;
    for (int j = 0; j < 32; j += 8)
        if (x < rows && y + j < cols) dst[batch + (i64)(y + j) * rows + x] = tile[tx][ty + j];
}
extern "C" __global__ void transpose_b8(const u8* s, u8* d, int rows, int cols) { transpose_tile<u8>(s, d, rows, cols); }
extern "C" __global__ void transpose_b16(const u16* s, u16* d, int rows, int cols) { transpose_tile<u16>(s, d, rows, cols); }
extern "C" __global__ void transpose_b32(const unsigned* s, unsigned* d, int rows, int cols) { transpose_tile<unsigned>(s, d, rows, cols); }
