// The CUDA bf16 inference engine's kernels (llama / mistral / qwen2). Weights and activations bf16, the
// residual stream float32, accumulation float32. Compiled with NVRTC through KernelCache; see
// src/GpuOps.Cuda/Engine/CudaLlamaEngine.cs for how they are chained (and captured into one CUDA graph per decode step).
#include "../common.cuh"

typedef unsigned int u32;

// Programmatic dependent launch (sm_90): with the launch attribute a kernel may start while its predecessor runs;
// pdl_wait() blocks until the predecessor grid has finished, pdl_trigger() lets the next kernel launch. Without the
// attribute both are no-ops, and the engine launches without it: on an H200 (bench/notes/cuda-engine.md, runs 3 and 5)
// decode with it was slower at every GEMV grid size, and at batch 1 not exact (4.4e-4 off: an early-started kernel can
// read lines of the residual that its SM's L1 cached before the previous kernel rewrote them). The calls stay, as measured.
__device__ __forceinline__ void pdl_wait() {
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_trigger() {
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Plain loads of activations written by earlier kernels (volatile: kept after pdl_wait); ld_cg reads at L2 (data other
// blocks of the same grid wrote).
__device__ __forceinline__ float ld_f(const float* p) { float v; asm volatile("ld.global.f32 %0, [%1];" : "=f"(v) : "l"(p)); return v; }
__device__ __forceinline__ float ld_cg(const float* p) { float v; asm volatile("ld.global.cg.f32 %0, [%1];" : "=f"(v) : "l"(p)); return v; }
__device__ __forceinline__ u16 ld_cg_h(const u16* p) { u16 v; asm volatile("ld.global.cg.u16 %0, [%1];" : "=h"(v) : "l"(p)); return v; }
__device__ __forceinline__ uint4 ld_cg_u4(const void* p) {
    uint4 v;
    asm volatile("ld.global.cg.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
    return v;
}
__device__ __forceinline__ float4 ld_cg_f4(const float* p) {
    float4 v;
    asm volatile("ld.global.cg.v4.f32 {%0,%1,%2,%3}, [%4];" : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w) : "l"(p));
    return v;
}
__device__ __forceinline__ int ld_cg_i(const int* p) { int v; asm volatile("ld.global.cg.s32 %0, [%1];" : "=r"(v) : "l"(p)); return v; }
__device__ __forceinline__ int ld_i(const int* p) { int v; asm volatile("ld.global.s32 %0, [%1];" : "=r"(v) : "l"(p)); return v; }
__device__ __forceinline__ float4 ld_f4(const float* p) {
    float4 v;
    asm volatile("ld.global.v4.f32 {%0,%1,%2,%3}, [%4];" : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w) : "l"(p));
    return v;
}

// One RoPE rotation of the pair (x1, x2) at angle pos * invf, rounded to bf16. Shared by rope_kv and the fused q/k/v
// GEMV epilogue with explicit roundings (no contraction choices left to the compiler), so both give the same bits.
__device__ __forceinline__ float2 rope_cs(int pos, float invf) {
    float ang = __fmul_rn((float)pos, invf);
    float c, sn;
    sincosf(ang, &sn, &c);   // full-range (not fast-math): within an ulp or two of the CPU's double-rounded value
    return make_float2(c, sn);
}
__device__ __forceinline__ void rope_rotate(float x1, float x2, float2 cs, u16& r1, u16& r2) {
    r1 = f2bf(__fmaf_rn(x1, cs.x, -__fmul_rn(x2, cs.y)));
    r2 = f2bf(__fmaf_rn(x2, cs.x, __fmul_rn(x1, cs.y)));
}
__device__ __forceinline__ void rope_pair(float x1, float x2, int pos, float invf, u16& r1, u16& r2) {
    rope_rotate(x1, x2, rope_cs(pos, invf), r1, r2);
}

// (cos, sin) of every (token, frequency) of a prefill, once for all layers and heads: cs[t * half + d].
extern "C" __global__ void rope_table(const int* __restrict__ pos, const float* __restrict__ invf, float2* __restrict__ cs, int T, int half) {
    for (i64 i = global_index(); i < (i64)T * half; i += global_stride()) {
        int t = (int)(i / half), d = (int)(i - (i64)t * half);
        cs[i] = rope_cs(pos[t], invf[d]);
    }
}

__device__ __forceinline__ float silu(float g) { return g / (1.f + __expf(-g)); }

__device__ __forceinline__ void bf8_to_f(const uint4& v, float* f) {
    f[0] = __uint_as_float(v.x << 16); f[1] = __uint_as_float(v.x & 0xffff0000u);
    f[2] = __uint_as_float(v.y << 16); f[3] = __uint_as_float(v.y & 0xffff0000u);
    f[4] = __uint_as_float(v.z << 16); f[5] = __uint_as_float(v.z & 0xffff0000u);
    f[6] = __uint_as_float(v.w << 16); f[7] = __uint_as_float(v.w & 0xffff0000u);
}

__device__ __forceinline__ uint4 ldg_stream(const uint4* p) {
    uint4 r;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
    return r;
}

// ---------------------------------------------------------------------------------------------------------------
// Embedding: x[t, :] = float(table[tokens[t], :]); sumsq[t] = sum of squares of the row (for the fused RMSNorm
// of the decode GEMVs). grid T, block 256.
extern "C" __global__ void embed(const int* tokens, const u16* __restrict__ table, float* x, float* sumsq, int H) {
    pdl_wait();
    pdl_trigger();
    __shared__ float sh[33];
    int t = blockIdx.x;
    const u16* row = table + (i64)ld_i(tokens + t) * H;
    float s = 0.f;
    for (int i = threadIdx.x * 8; i < H; i += blockDim.x * 8) {   // (H % 8 == 0)
        float f[8];
        bf8_to_f(*(const uint4*)(row + i), f);
        *(float4*)(x + (i64)t * H + i) = make_float4(f[0], f[1], f[2], f[3]);
        *(float4*)(x + (i64)t * H + i + 4) = make_float4(f[4], f[5], f[6], f[7]);
#pragma unroll
        for (int e = 0; e < 8; e++) s += f[e] * f[e];
    }
    s = block_reduce(s, sh, false);
    if (threadIdx.x == 0 && sumsq) sumsq[t] = s;
}

// RMSNorm: out[t, :] = bf16(x * rsqrt(mean(x^2) + eps) * g), 8 elements a thread at a time (H % 8 == 0).
// grid T, block 256.
extern "C" __global__ void rmsnorm(const float* x, const u16* __restrict__ g, u16* __restrict__ out, int H, float eps, const int* rows) {
    pdl_wait();
    pdl_trigger();
    __shared__ float sh[33];
    int t = rows ? ld_i(rows + blockIdx.x) : blockIdx.x;
    const float* xr = x + (i64)t * H;
    float s = 0.f;
    for (int i = threadIdx.x * 8; i < H; i += blockDim.x * 8) {
        float4 a = ld_f4(xr + i), b = ld_f4(xr + i + 4);
        s += a.x * a.x + a.y * a.y + a.z * a.z + a.w * a.w + b.x * b.x + b.y * b.y + b.z * b.z + b.w * b.w;
    }
    s = block_reduce(s, sh, false);
    float rs = rsqrtf(s / (float)H + eps);
    for (int i = threadIdx.x * 8; i < H; i += blockDim.x * 8) {
        float4 a = ld_f4(xr + i), b = ld_f4(xr + i + 4);
        float gm[8];
        bf8_to_f(*(const uint4*)(g + i), gm);
        uint4 o;
        o.x = (u32)f2bf(a.x * rs * gm[0]) | ((u32)f2bf(a.y * rs * gm[1]) << 16);
        o.y = (u32)f2bf(a.z * rs * gm[2]) | ((u32)f2bf(a.w * rs * gm[3]) << 16);
        o.z = (u32)f2bf(b.x * rs * gm[4]) | ((u32)f2bf(b.y * rs * gm[5]) << 16);
        o.w = (u32)f2bf(b.z * rs * gm[6]) | ((u32)f2bf(b.w * rs * gm[7]) << 16);
        *(uint4*)(out + (i64)blockIdx.x * H + i) = o;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Decode GEMV for B <= 4 sequences: y[b, n] = sum_k W[n, k] * in[b, k], W bf16 [N, K] row-major, read once for all
// B sequences with 16-byte streaming loads, R rows per warp, U loads per row and lane in flight.
// Input: NORM = 1: float32 x[b, K] normalised on the fly with rsqrt(sumsq_in[b] / K + eps) * gamma (fused RMSNorm);
//        NORM = 0: bf16 activations a[b, K].
// Epilogue: EPI_BF16   y bf16 [B, N] = acc + bias
//           EPI_ADD    x float32 [B, N] += acc + bias, and sumsq_out[b] = sum of new x^2 (for the next fused RMSNorm)
//           EPI_SILU   rows (2j, 2j+1) are (gate j, up j): y bf16 [B, N/2] = silu(gate) * up   (R even)
//           EPI_F32    y float32 [B, N] = acc
//           EPI_QKV    the fused q/k/v projection (R even): rows (2j, 2j+1) of q and k heads are a RoPE pair (the engine
//                      stores q/k rows in interleaved-pair order), rotated at the sequence's position; q goes to y bf16
//                      [B, N], k and v straight to the KV cache at (slot[b], pos[b]). Same bits as EPI_BF16 + rope_kv.
// The first batch of weight loads is issued before pdl_wait (weights depend on no earlier kernel).
// EPI_ADD with sumsq_out: see the end of gemv_impl for the layout (deterministic, no float atomics).
// block 128 (4 warps), any grid (warps stride over the groups of R rows).
#define EPI_BF16 0
#define EPI_ADD 1
#define EPI_SILU 2
#define EPI_F32 3
#define EPI_QKV 4

struct QkvArgs {
    const int* slot;
    const int* pos;
    const float* invf;
    u16* kc;
    u16* vc;
    int nh, nkv, hd, maxCtx;
};

template <int R, int U>
__device__ __forceinline__ void gemv_load(uint4 (&w)[R][U], const u16* __restrict__ W, int row0, int N, int K, int c0, int chunks) {
#pragma unroll
    for (int u = 0; u < U; u++) {
        int c = c0 + u * 32;
#pragma unroll
        for (int r = 0; r < R; r++)
            w[r][u] = c < chunks ? ldg_stream((const uint4*)(W + (i64)min(row0 + r, N - 1) * K + (i64)c * 8)) : make_uint4(0, 0, 0, 0);
    }
}

// The q/k/v epilogue for rows (n, n + 1) of one sequence (n even): bias, the bf16 projection, RoPE on a q/k pair
// (adjacent rows), then q to q[n], or k/v to this layer's cache at (slot, pos). Shared by the multi-kernel and the
// persistent decode paths, so both give the bits of EPI_BF16 + rope_kv.
__device__ __forceinline__ void qkv_store(float a0, float a1, const u16* __restrict__ bias, int n, int pos, int slot, const float* invf, u16* q,
                                          u16* kc, u16* vc, int nh, int nkv, int hd, int maxCtx) {
    float x1 = bf2f(f2bf(a0 + (bias ? bf2f(bias[n]) : 0.f)));
    float x2 = bf2f(f2bf(a1 + (bias ? bf2f(bias[n + 1]) : 0.f)));
    int head = n / hd, i = n - head * hd;
    u16 r1, r2;
    if (head < nh + nkv) rope_pair(x1, x2, pos, invf[i >> 1], r1, r2);
    else { r1 = f2bf(x1); r2 = f2bf(x2); }
    u32 pair = (u32)r1 | ((u32)r2 << 16);
    if (head < nh) {
        *(u32*)(q + n) = pair;
    } else {
        bool isK = head < nh + nkv;
        int kh = isK ? head - nh : head - nh - nkv;
        *(u32*)((isK ? kc : vc) + (((i64)slot * nkv + kh) * maxCtx + pos) * hd + i) = pair;
    }
}

template <int B, int NORM, int EPI, int R>
__device__ __forceinline__ void gemv_impl(const u16* __restrict__ W, const u16* __restrict__ bias, int N, int K,
                                          const void* __restrict__ in, const u16* __restrict__ gamma, const float* __restrict__ sumsq_in,
                                          float eps, void* __restrict__ y, float* __restrict__ sumsq_out, const QkvArgs& qa) {
    constexpr int U = R >= 4 ? 4 : 8 / R;
    __shared__ float part[4][4];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int groups = (N + R - 1) / R;
    int chunks = K >> 3;
    int grp = blockIdx.x * 4 + warp;
    uint4 w[R][U];
    if (grp < groups) gemv_load<R, U>(w, W, grp * R, N, K, lane, chunks);
    pdl_wait();
    pdl_trigger();
    float rs[B];
    if (NORM) {
#pragma unroll
        for (int b = 0; b < B; b++) rs[b] = rsqrtf(sumsq_in[b] / (float)K + eps);
    }
    int qpos[B], qslot[B];
    if (EPI == EPI_QKV) {
#pragma unroll
        for (int b = 0; b < B; b++) { qpos[b] = ld_i(qa.pos + b); qslot[b] = ld_i(qa.slot + b); }
    }
    float sq[B];
#pragma unroll
    for (int b = 0; b < B; b++) sq[b] = 0.f;
    bool pre = true;   // w holds this warp's first batch
    // grid-stride over groups of R rows (one group per warp at a time): no tail of partly filled waves
    for (; grp < groups; grp += gridDim.x * 4) {
        int row0 = grp * R;
        float acc[B][R];
#pragma unroll
        for (int b = 0; b < B; b++)
#pragma unroll
            for (int r = 0; r < R; r++) acc[b][r] = 0.f;
        if (!pre) gemv_load<R, U>(w, W, row0, N, K, lane, chunks);
        pre = false;
        for (int c0 = lane; c0 < chunks; c0 += 32 * U) {
            if (c0 != lane) gemv_load<R, U>(w, W, row0, N, K, c0, chunks);
#pragma unroll
            for (int u = 0; u < U; u++) {
                int c = c0 + u * 32;
                if (c >= chunks) break;
                int k = c * 8;
                float gm[8];
                if (NORM) bf8_to_f(*(const uint4*)(gamma + k), gm);
#pragma unroll
                for (int b = 0; b < B; b++) {
                    float xv[8];
                    if (NORM) {
                        const float* xp = (const float*)in + (i64)b * K + k;
                        float4 a = *(const float4*)xp, bq = *(const float4*)(xp + 4);
                        xv[0] = a.x * rs[b] * gm[0]; xv[1] = a.y * rs[b] * gm[1]; xv[2] = a.z * rs[b] * gm[2]; xv[3] = a.w * rs[b] * gm[3];
                        xv[4] = bq.x * rs[b] * gm[4]; xv[5] = bq.y * rs[b] * gm[5]; xv[6] = bq.z * rs[b] * gm[6]; xv[7] = bq.w * rs[b] * gm[7];
                    } else {
                        bf8_to_f(*(const uint4*)((const u16*)in + (i64)b * K + k), xv);
                    }
#pragma unroll
                    for (int r = 0; r < R; r++) {
                        float wf[8];
                        bf8_to_f(w[r][u], wf);
                        float s = acc[b][r];
#pragma unroll
                        for (int j = 0; j < 8; j++) s = fmaf(wf[j], xv[j], s);
                        acc[b][r] = s;
                    }
                }
            }
        }
#pragma unroll
        for (int b = 0; b < B; b++)
#pragma unroll
            for (int r = 0; r < R; r++) acc[b][r] = warp_sum(acc[b][r]);
        if (lane == 0) {
#pragma unroll
            for (int b = 0; b < B; b++) {
                if (EPI == EPI_SILU) {
#pragma unroll
                    for (int r = 0; r + 1 < R; r += 2) {
                        int n = row0 + r;
                        if (n + 1 >= N + 1) break;
                        float g = acc[b][r] + (bias ? bf2f(bias[n]) : 0.f);
                        float u = acc[b][r + 1] + (bias ? bf2f(bias[n + 1]) : 0.f);
                        ((u16*)y)[(i64)b * (N >> 1) + (n >> 1)] = f2bf(silu(g) * u);
                    }
                } else if (EPI == EPI_QKV) {
#pragma unroll
                    for (int r = 0; r + 1 < R; r += 2) {
                        int n = row0 + r;
                        if (n >= N) break;
                        qkv_store(acc[b][r], acc[b][r + 1], bias, n, qpos[b], qslot[b], qa.invf, (u16*)y + (i64)b * N, qa.kc, qa.vc,
                                  qa.nh, qa.nkv, qa.hd, qa.maxCtx);
                    }
                } else {
#pragma unroll
                    for (int r = 0; r < R; r++) {
                        int n = row0 + r;
                        if (n >= N) break;
                        float v = acc[b][r] + (bias ? bf2f(bias[n]) : 0.f);
                        if (EPI == EPI_BF16) ((u16*)y)[(i64)b * N + n] = f2bf(v);
                        else if (EPI == EPI_F32) ((float*)y)[(i64)b * N + n] = acc[b][r];
                        else {
                            float* xp = (float*)y + (i64)b * N + n;
                            float nv = *xp + v;
                            *xp = nv;
                            sq[b] += nv * nv;
                        }
                    }
                }
            }
        }
    }
    if (EPI == EPI_ADD && sumsq_out) {
        // sum of squares of the new residual, the same bits every run: each block stores its partial, the last block to
        // finish (a counter) adds them in block order. sumsq_out: [B] result, [1] counter (0 between uses), [grid * B] partials.
        __shared__ bool lastBlock;
        unsigned* counter = (unsigned*)(sumsq_out + B);
        float* partials = sumsq_out + B + 1;
        if (lane == 0) {
#pragma unroll
            for (int b = 0; b < B; b++) part[warp][b] = sq[b];
        }
        __syncthreads();
        if (threadIdx.x < B)
            partials[blockIdx.x * B + threadIdx.x] = part[0][threadIdx.x] + part[1][threadIdx.x] + part[2][threadIdx.x] + part[3][threadIdx.x];
        __threadfence();
        __syncthreads();
        if (threadIdx.x == 0) lastBlock = atomicAdd(counter, 1u) == gridDim.x - 1;
        __syncthreads();
        if (lastBlock && warp == 0) {
            __threadfence();
#pragma unroll
            for (int b = 0; b < B; b++) {
                float s = 0.f;
                for (int i = lane; i < (int)gridDim.x; i += 32) s += ld_cg(partials + i * B + b);
                s = warp_sum(s);
                if (lane == 0) sumsq_out[b] = s;
            }
            if (lane == 0) *counter = 0u;
        }
    }
}

#define GEMV(B, NORM, EPI, R)                                                                                                  \
    extern "C" __global__ void __launch_bounds__(128) gemv_b##B##_n##NORM##_e##EPI##_r##R(                                   \
        const u16* W, const u16* bias, int N, int K, const void* in, const u16* gamma, const float* sumsq_in, float eps,       \
        void* y, float* sumsq_out) {                                                                                           \
        QkvArgs qa = {};                                                                                                       \
        gemv_impl<B, NORM, EPI, R>(W, bias, N, K, in, gamma, sumsq_in, eps, y, sumsq_out, qa);                                 \
    }
// The fused q/k/v projection + RoPE + KV-cache write (EPI_QKV): the GEMV arguments (sumsq_out unused) then the RoPE/cache ones.
#define GEMV_QKV(B, NORM, R)                                                                                                   \
    extern "C" __global__ void __launch_bounds__(128) gemv_qkv_b##B##_n##NORM##_r##R(                                        \
        const u16* W, const u16* bias, int N, int K, const void* in, const u16* gamma, const float* sumsq_in, float eps,       \
        void* y, float* sumsq_out, const int* slot, const int* pos, const float* invf, u16* kc, u16* vc, int nh, int nkv,     \
        int hd, int maxCtx) {                                                                                                  \
        QkvArgs qa = {slot, pos, invf, kc, vc, nh, nkv, hd, maxCtx};                                                           \
        gemv_impl<B, NORM, EPI_QKV, R>(W, bias, N, K, in, gamma, sumsq_in, eps, y, sumsq_out, qa);                             \
    }
// batch 1: fused RMSNorm on the float32 residual; batches 2..4: bf16 normalised input, 4 rows per warp (x loads shared by 4 rows)
GEMV(1, 1, 0, 2) GEMV(1, 0, 1, 1) GEMV(1, 1, 2, 2) GEMV(1, 1, 3, 1) GEMV(1, 0, 0, 1) GEMV(1, 0, 3, 1) GEMV(1, 0, 1, 2) GEMV(1, 0, 0, 2)
GEMV_QKV(1, 1, 2) GEMV_QKV(1, 0, 2)
#define GEMV_MULTI(B) GEMV(B, 0, 0, 4) GEMV(B, 0, 1, 4) GEMV(B, 0, 2, 4) GEMV(B, 0, 3, 4) GEMV(B, 0, 1, 1) GEMV(B, 1, 0, 2) GEMV(B, 1, 2, 2) GEMV(B, 1, 3, 1) GEMV_QKV(B, 0, 4)
GEMV_MULTI(2)
GEMV_MULTI(3)
GEMV_MULTI(4)

// ---------------------------------------------------------------------------------------------------------------
// RoPE on q and k of each token in place (qkv bf16 [T, (nh + 2 nkv) hd], after an optional bias add), then the
// token's k and v written to the KV cache at (slot[t], pos[t]). Cache: bf16 [slots][nkv][maxCtx][hd] for this layer.
// layout 0 = rotate-half, 1 = interleaved pairs; cs: rope_table's (cos, sin) of these tokens, or null (computed here).
// grid T, block 256.
extern "C" __global__ void rope_kv(u16* __restrict__ qkv, const u16* __restrict__ bias, const int* slot, const int* pos,
                                   const float* __restrict__ invf, u16* __restrict__ kc, u16* __restrict__ vc, int nh, int nkv, int hd,
                                   int maxCtx, int layout, const float2* __restrict__ cs) {
    pdl_wait();
    pdl_trigger();
    int t = blockIdx.x;
    int qkvDim = (nh + 2 * nkv) * hd;
    u16* row = qkv + (i64)t * qkvDim;
    int p = ld_i(pos + t), s = ld_i(slot + t);
    int half = hd >> 1;
    if (layout == 1 && (hd & 7) == 0) {
        // interleaved pairs (the engine's layout), 8 elements = 4 pairs a thread, 16-byte loads and stores
        for (int i = threadIdx.x; i < (nh + nkv) * hd / 8; i += blockDim.x) {
            int e0 = i * 8, head = e0 / hd, j = e0 - head * hd;
            float f[8];
            bf8_to_f(*(const uint4*)(row + e0), f);
            if (bias) {
                float b8[8];
                bf8_to_f(*(const uint4*)(bias + e0), b8);
#pragma unroll
                for (int e = 0; e < 8; e++) f[e] += b8[e];
            }
            u16 r[8];
#pragma unroll
            for (int k = 0; k < 4; k++) {
                int d = (j >> 1) + k;
                rope_rotate(f[2 * k], f[2 * k + 1], cs ? cs[(i64)t * half + d] : rope_cs(p, invf[d]), r[2 * k], r[2 * k + 1]);
            }
            uint4 o = make_uint4((u32)r[0] | ((u32)r[1] << 16), (u32)r[2] | ((u32)r[3] << 16), (u32)r[4] | ((u32)r[5] << 16), (u32)r[6] | ((u32)r[7] << 16));
            *(uint4*)(row + e0) = o;
            if (head >= nh) *(uint4*)(kc + (((i64)s * nkv + head - nh) * maxCtx + p) * hd + j) = o;
        }
        int vo8 = (nh + nkv) * hd;
        for (int i = threadIdx.x; i < nkv * hd / 8; i += blockDim.x) {
            int e0 = i * 8, kh = e0 / hd, d = e0 - kh * hd;
            uint4 v = *(const uint4*)(row + vo8 + e0);
            if (bias) {
                float f[8], b8[8];
                bf8_to_f(v, f);
                bf8_to_f(*(const uint4*)(bias + vo8 + e0), b8);
                u16 r[8];
#pragma unroll
                for (int e = 0; e < 8; e++) r[e] = f2bf(f[e] + b8[e]);
                v = make_uint4((u32)r[0] | ((u32)r[1] << 16), (u32)r[2] | ((u32)r[3] << 16), (u32)r[4] | ((u32)r[5] << 16), (u32)r[6] | ((u32)r[7] << 16));
                *(uint4*)(row + vo8 + e0) = v;
            }
            *(uint4*)(vc + (((i64)s * nkv + kh) * maxCtx + p) * hd + d) = v;
        }
        return;
    }
    int pairs = (nh + nkv) * half;
    for (int i = threadIdx.x; i < pairs; i += blockDim.x) {
        int head = i / half, d = i - head * half;
        int i1, i2;
        if (layout == 0) { i1 = d; i2 = d + half; } else { i1 = 2 * d; i2 = 2 * d + 1; }
        int o = head * hd;
        float x1 = bf2f(row[o + i1]), x2 = bf2f(row[o + i2]);
        if (bias) { x1 += bf2f(bias[o + i1]); x2 += bf2f(bias[o + i2]); }
        u16 r1, r2;
        rope_rotate(x1, x2, cs ? cs[(i64)t * half + d] : rope_cs(p, invf[d]), r1, r2);
        row[o + i1] = r1;
        row[o + i2] = r2;
        if (head >= nh) {
            int kh = head - nh;
            u16* kp = kc + (((i64)s * nkv + kh) * maxCtx + p) * hd;
            kp[i1] = r1;
            kp[i2] = r2;
        }
    }
    int vo = (nh + nkv) * hd;
    for (int i = threadIdx.x; i < nkv * hd; i += blockDim.x) {
        int kh = i / hd, d = i - kh * hd;
        float v = bf2f(row[vo + i]);
        if (bias) { v += bf2f(bias[vo + i]); row[vo + i] = f2bf(v); }
        vc[(((i64)s * nkv + kh) * maxCtx + p) * hd + d] = f2bf(v);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Attention of one token and one query head against its sequence's cache (positions start..pos, start from the
// sliding window, 0 = none). Works for decode and for any mix; grid (T, nh), block NT, dynamic shared memory
// (hd + (NT / (hd / 8)) * hd + maxCtx) floats. out bf16 [T, nh * hd]. q and the cache are read at L2 (ld.global.cg):
// the persistent decode kernel calls this after other blocks of the same grid wrote them.
template <int HD, int NT>
__device__ __forceinline__ void attn_token_impl(const u16* qkv, const u16* kc, const u16* vc, u16* __restrict__ out, const int* slot, const int* pos,
                                                int nh, int nkv, int maxCtx, int window, float scale, int t, int h, float* smem) {
    __shared__ float red[33];
    constexpr int TPP = HD / 8;        // threads per position in the value pass
    constexpr int G = NT / TPP;        // position groups
    float* q = smem;                   // [HD]
    float* acc = smem + HD;            // [G][HD]
    float* sc = smem + HD + G * HD;    // [positions]
    int kvh = h / (nh / nkv);
    int qkvDim = (nh + 2 * nkv) * HD;
    int p = ld_i(pos + t), s = ld_i(slot + t);
    int start = window > 0 ? max(0, p - window + 1) : 0;
    int n = p - start + 1;
    const u16* qr = qkv + (i64)t * qkvDim + h * HD;
    for (int i = threadIdx.x; i < HD; i += NT) q[i] = bf2f(ld_cg_h(qr + i)) * scale;
    __syncthreads();
    const u16* kb = kc + (((i64)s * nkv + kvh) * maxCtx + start) * HD;
    const u16* vb = vc + (((i64)s * nkv + kvh) * maxCtx + start) * HD;
    float mx = NEG_INF;
    for (int j = threadIdx.x; j < n; j += NT) {
        const uint4* kr = (const uint4*)(kb + (i64)j * HD);
        uint4 kv[HD / 8];
#pragma unroll
        for (int c = 0; c < HD / 8; c++) kv[c] = ld_cg_u4(kr + c);
        float d = 0.f;
#pragma unroll
        for (int c = 0; c < HD / 8; c++) {
            float f[8];
            bf8_to_f(kv[c], f);
#pragma unroll
            for (int e = 0; e < 8; e++) d = fmaf(f[e], q[c * 8 + e], d);
        }
        sc[j] = d;
        mx = fmaxf(mx, d);
    }
    mx = block_reduce(mx, red, true);
    float sum = 0.f;
    for (int j = threadIdx.x; j < n; j += NT) {
        float e = __expf(sc[j] - mx);
        sc[j] = e;
        sum += e;
    }
    sum = block_reduce(sum, red, false);   // (its barriers also publish sc)
    int g = threadIdx.x / TPP, c = threadIdx.x % TPP;
    float a[8];
#pragma unroll
    for (int e = 0; e < 8; e++) a[e] = 0.f;
    int j = g;
    for (; j + 3 * G < n; j += 4 * G) {   // four positions' loads in flight
        uint4 v4[4];
#pragma unroll
        for (int u = 0; u < 4; u++) v4[u] = ld_cg_u4(vb + (i64)(j + u * G) * HD + c * 8);
#pragma unroll
        for (int u = 0; u < 4; u++) {
            float f[8];
            bf8_to_f(v4[u], f);
            float w = sc[j + u * G];
#pragma unroll
            for (int e = 0; e < 8; e++) a[e] = fmaf(w, f[e], a[e]);
        }
    }
    for (; j < n; j += G) {
        float f[8];
        bf8_to_f(ld_cg_u4(vb + (i64)j * HD + c * 8), f);
        float w = sc[j];
#pragma unroll
        for (int e = 0; e < 8; e++) a[e] = fmaf(w, f[e], a[e]);
    }
#pragma unroll
    for (int e = 0; e < 8; e++) acc[g * HD + c * 8 + e] = a[e];
    __syncthreads();
    float inv = 1.f / sum;
    for (int d = threadIdx.x; d < HD; d += NT) {
        float v = 0.f;
#pragma unroll
        for (int gg = 0; gg < G; gg++) v += acc[gg * HD + d];
        out[(i64)t * nh * HD + h * HD + d] = f2bf(v * inv);
    }
}
#define ATTN_TOKEN(HD)                                                                                                         \
    extern "C" __global__ void __launch_bounds__(128) attn_token_hd##HD(const u16* qkv, const u16* kc, const u16* vc, u16* out, \
        const int* slot, const int* pos, int nh, int nkv, int maxCtx, int window, float scale) {                               \
        extern __shared__ float attn_smem[];                                                                                   \
        attn_token_impl<HD, 128>(qkv, kc, vc, out, slot, pos, nh, nkv, maxCtx, window, scale, blockIdx.x, blockIdx.y, attn_smem); \
    }
ATTN_TOKEN(64)
ATTN_TOKEN(128)

// ---------------------------------------------------------------------------------------------------------------
// Prefill attention on the tensor cores (mma.sync m16n8k16 bf16, float32 accumulate, online softmax): the Tq
// queries of one sequence chunk at positions q0..q0+Tq-1 (rows of qkv), causal against that sequence's cache
// (positions 0..q0+Tq-1, already written by rope_kv). grid (ceil(Tq/64), nh), block 128 (4 warps x 16 query rows).
__device__ __forceinline__ void mma_bf16(float* c, const u32* a, u32 b0, u32 b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ u32 pack_bf2(float lo, float hi) { return (u32)f2bf(lo) | ((u32)f2bf(hi) << 16); }

__device__ __forceinline__ u32 smem_u32(const void* p) {
    u32 a;
    asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(a) : "l"(p));
    return a;
}
// 16-byte asynchronous global -> shared copy (src_bytes 0: zero-fill, nothing read).
__device__ __forceinline__ void cp_async16(u32 dst, const void* src, int srcBytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" :: "r"(dst), "l"(src), "r"(srcBytes) : "memory");
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
__device__ __forceinline__ void cp_wait1() { asm volatile("cp.async.wait_group 1;" ::: "memory"); }

template <int HD>
__device__ __forceinline__ void attn_prefill_impl(const u16* __restrict__ qkv, const u16* __restrict__ kc, const u16* __restrict__ vc,
                                                  u16* __restrict__ out, int Tq, int q0, int slot, int nh, int nkv, int maxCtx, int window, float scale) {
    constexpr int KS = HD + 8;   // K/V tile row stride (elements)
    // two stages of [K tile 64 x KS | V tile 64 x KS] (V row-major like K; B fragments of P.V through ldmatrix.trans):
    // the next tile's cp.async copies are in flight while this one is used. Dynamic: 4 * 64 * KS * 2 bytes.
    extern __shared__ __align__(16) u16 tiles[];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int gq = lane >> 2, tq = lane & 3;
    int h = blockIdx.y, kvh = h / (nh / nkv);
    int qkvDim = (nh + 2 * nkv) * HD;
    // query tiles in reverse order: the causally longest tiles start first, the short ones fill the last wave
    int qt = gridDim.x - 1 - blockIdx.x;
    int rowBase = qt * 64 + warp * 16;            // first query row of this warp (chunk-relative)
    int ra = rowBase + gq, rb = rowBase + gq + 8;
    int pa = q0 + ra, pb = q0 + rb;               // their positions
    // Q fragments (scaled by softmax scale * log2 e so exp2 can be used)
    const float qs = scale * 1.4426950408889634f;
    u32 qf[HD / 16][4];
    {
        const u16* qa = qkv + (i64)min(ra, Tq - 1) * qkvDim + h * HD;
        const u16* qb = qkv + (i64)min(rb, Tq - 1) * qkvDim + h * HD;
#pragma unroll
        for (int kk = 0; kk < HD / 16; kk++) {
            int c = kk * 16 + tq * 2;
            qf[kk][0] = pack_bf2(bf2f(qa[c]) * qs, bf2f(qa[c + 1]) * qs);
            qf[kk][1] = pack_bf2(bf2f(qb[c]) * qs, bf2f(qb[c + 1]) * qs);
            qf[kk][2] = pack_bf2(bf2f(qa[c + 8]) * qs, bf2f(qa[c + 9]) * qs);
            qf[kk][3] = pack_bf2(bf2f(qb[c + 8]) * qs, bf2f(qb[c + 9]) * qs);
        }
    }
    float o[HD / 8][4];
#pragma unroll
    for (int j = 0; j < HD / 8; j++) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
    float ma = NEG_INF, mb = NEG_INF, la = 0.f, lb = 0.f;
    int lastRow = min(Tq - 1, qt * 64 + 63);
    int pmax = q0 + lastRow;                                    // largest position any query of the block sees
    int pminStart = window > 0 ? max(0, q0 + qt * 64 - window + 1) : 0;
    const u16* kbase = kc + ((i64)slot * nkv + kvh) * maxCtx * HD;
    const u16* vbase = vc + ((i64)slot * nkv + kvh) * maxCtx * HD;
    int kStart = (pminStart / 64) * 64, nTiles = (pmax - kStart) / 64 + 1;
    auto load = [&](int tile) {
        u16* Kd = tiles + (tile & 1) * 2 * 64 * KS;
        u16* Vd = Kd + 64 * KS;
        int k0 = kStart + tile * 64;
        for (int i = threadIdx.x; i < 64 * (HD / 8); i += 128) {
            int r = i / (HD / 8), c = (i % (HD / 8)) * 8;
            int key = k0 + r;
            bool ok = key <= pmax;   // keys past the block's last query: zero-filled
            i64 off = (i64)(ok ? key : 0) * HD + c;
            cp_async16(smem_u32(Kd + r * KS + c), kbase + off, ok ? 16 : 0);
            cp_async16(smem_u32(Vd + r * KS + c), vbase + off, ok ? 16 : 0);
        }
    };
    load(0);
    cp_commit();
    for (int it = 0; it < nTiles; it++) {
        int k0 = kStart + it * 64;
        if (it + 1 < nTiles) load(it + 1);
        cp_commit();
        cp_wait1();          // every group but the newest (the tile just requested) has landed
        __syncthreads();
        const u16* Ks = tiles + (it & 1) * 2 * 64 * KS;
        const u16* Vs = Ks + 64 * KS;
        // S = Q K^T for 64 keys: 8 n-tiles of 8 keys
        float s[8][4];
#pragma unroll
        for (int j = 0; j < 8; j++) {
            s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
            for (int kk = 0; kk < HD / 16; kk += 2) {
                // x4: lane L addresses key j*8 + (L & 7), dims kk*16 + (L >> 3)*8: registers (b0, b1) of step kk, then of kk + 1
                u32 addr = smem_u32(Ks + (j * 8 + (lane & 7)) * KS + kk * 16 + (lane >> 3) * 8);
                u32 b0, b1, b2, b3;
                asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];" : "=r"(b0), "=r"(b1), "=r"(b2), "=r"(b3) : "r"(addr));
                mma_bf16(s[j], qf[kk], b0, b1);
                mma_bf16(s[j], qf[kk + 1], b2, b3);
            }
        }
        // mask (only tiles that reach past the warp's first query, or any tile with a window: the rest see every key)
        // and online softmax (rows ra: s[j][0..1], rb: s[j][2..3])
        if (window > 0 || k0 + 63 > q0 + rowBase) {
#pragma unroll
            for (int j = 0; j < 8; j++) {
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    int key = k0 + j * 8 + tq * 2 + e;
                    bool okA = key <= pa && (window <= 0 || key > pa - window);
                    bool okB = key <= pb && (window <= 0 || key > pb - window);
                    if (!okA) s[j][e] = NEG_INF;
                    if (!okB) s[j][2 + e] = NEG_INF;
                }
            }
        }
        float ta = NEG_INF, tb = NEG_INF;
#pragma unroll
        for (int j = 0; j < 8; j++) {
            ta = fmaxf(ta, fmaxf(s[j][0], s[j][1]));
            tb = fmaxf(tb, fmaxf(s[j][2], s[j][3]));
        }
        ta = fmaxf(ta, __shfl_xor_sync(0xffffffffu, ta, 1)); ta = fmaxf(ta, __shfl_xor_sync(0xffffffffu, ta, 2));
        tb = fmaxf(tb, __shfl_xor_sync(0xffffffffu, tb, 1)); tb = fmaxf(tb, __shfl_xor_sync(0xffffffffu, tb, 2));
        float na = fmaxf(ma, ta), nb = fmaxf(mb, tb);
        float refA = na == NEG_INF ? 0.f : na, refB = nb == NEG_INF ? 0.f : nb;
        float fa = exp2f(ma - refA), fb = exp2f(mb - refB);
        ma = na; mb = nb;
        float sa = 0.f, sb = 0.f;
        u32 pf[4][4];
#pragma unroll
        for (int j = 0; j < 8; j++) {
            float p0 = exp2f(s[j][0] - refA), p1 = exp2f(s[j][1] - refA);
            float p2 = exp2f(s[j][2] - refB), p3 = exp2f(s[j][3] - refB);
            sa += p0 + p1;
            sb += p2 + p3;
            int kk = j >> 1;
            if ((j & 1) == 0) { pf[kk][0] = pack_bf2(p0, p1); pf[kk][1] = pack_bf2(p2, p3); }
            else { pf[kk][2] = pack_bf2(p0, p1); pf[kk][3] = pack_bf2(p2, p3); }
        }
        sa += __shfl_xor_sync(0xffffffffu, sa, 1); sa += __shfl_xor_sync(0xffffffffu, sa, 2);
        sb += __shfl_xor_sync(0xffffffffu, sb, 1); sb += __shfl_xor_sync(0xffffffffu, sb, 2);
        la = la * fa + sa;
        lb = lb * fb + sb;
#pragma unroll
        for (int j = 0; j < HD / 8; j++) {
            o[j][0] *= fa; o[j][1] *= fa; o[j][2] *= fb; o[j][3] *= fb;
#pragma unroll
            for (int kk = 0; kk < 4; kk += 2) {
                // x4.trans: lane L gives the address of key row kk*16 + L, dims j*8..j*8+7; registers 0,1 are the
                // (b0, b1) fragment of keys kk*16..+15 and registers 2,3 that of keys (kk+1)*16..+15
                u32 addr = smem_u32(Vs + (kk * 16 + lane) * KS + j * 8);
                u32 b0, b1, b2, b3;
                asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                             : "=r"(b0), "=r"(b1), "=r"(b2), "=r"(b3) : "r"(addr));
                mma_bf16(o[j], pf[kk], b0, b1);
                mma_bf16(o[j], pf[kk + 1], b2, b3);
            }
        }
        __syncthreads();     // this stage is refilled by the next iteration's request
    }
    float ia = la > 0.f ? 1.f / la : 0.f, ib = lb > 0.f ? 1.f / lb : 0.f;
#pragma unroll
    for (int j = 0; j < HD / 8; j++) {
        int d = j * 8 + tq * 2;
        if (ra < Tq) {
            u16* oa = out + (i64)ra * nh * HD + h * HD + d;
            *(u32*)oa = pack_bf2(o[j][0] * ia, o[j][1] * ia);
        }
        if (rb < Tq) {
            u16* ob = out + (i64)rb * nh * HD + h * HD + d;
            *(u32*)ob = pack_bf2(o[j][2] * ib, o[j][3] * ib);
        }
    }
}
#define ATTN_PREFILL(HD)                                                                                                       \
    extern "C" __global__ void __launch_bounds__(128, 3) attn_prefill_hd##HD(const u16* qkv, const u16* kc, const u16* vc, u16* out, \
        int Tq, int q0, int slot, int nh, int nkv, int maxCtx, int window, float scale) {                                      \
        attn_prefill_impl<HD>(qkv, kc, vc, out, Tq, q0, slot, nh, nkv, maxCtx, window, scale);                                 \
    }
ATTN_PREFILL(64)
ATTN_PREFILL(128)

// The 128-query-row version (two m16 tiles per warp, Q staged in shared memory, 2 blocks per SM).
#include "attn_prefill2.cuh"


// ---------------------------------------------------------------------------------------------------------------
// Prefill MLP activation: act[t, j] = bf16(silu(gu[t, 2j] + b[2j]) * (gu[t, 2j+1] + b[2j+1])) (gate/up rows interleaved),
// 8 outputs a thread (I % 8 == 0): two 16-byte loads, one 16-byte store. grid (ceil(I / 8 / 256), min(T, 65535)), block 256.
extern "C" __global__ void silu_mul_il(const u16* __restrict__ gu, const u16* __restrict__ bias, u16* __restrict__ act, int T, int I) {
    int j = (blockIdx.x * blockDim.x + threadIdx.x) * 8;
    if (j >= I) return;
    float bg[16];
    if (bias) { bf8_to_f(*(const uint4*)(bias + 2 * j), bg); bf8_to_f(*(const uint4*)(bias + 2 * j + 8), bg + 8); }
    for (int t = blockIdx.y; t < T; t += gridDim.y) {
        const uint4* src = (const uint4*)(gu + ((i64)t * I + j) * 2);
        float v[16];
        bf8_to_f(src[0], v);
        bf8_to_f(src[1], v + 8);
        if (bias) {
#pragma unroll
            for (int e = 0; e < 16; e++) v[e] += bg[e];
        }
        u32 o[4];
#pragma unroll
        for (int e = 0; e < 4; e++)
            o[e] = (u32)f2bf(silu(v[4 * e]) * v[4 * e + 1]) | ((u32)f2bf(silu(v[4 * e + 2]) * v[4 * e + 3]) << 16);
        *(uint4*)(act + (i64)t * I + j) = make_uint4(o[0], o[1], o[2], o[3]);
    }
}

// x[t, n] += bias[n] (float32 rows, bf16 bias).
extern "C" __global__ void add_bias_f32(float* __restrict__ x, const u16* __restrict__ bias, int T, int N) {
    for (i64 i = global_index(); i < (i64)T * N; i += global_stride()) x[i] += bf2f(bias[i % N]);
}

// Gate/up rows interleaved on the device: dst[2j] = gate[j], dst[2j+1] = up[j] (rows of K bf16).
extern "C" __global__ void interleave_rows(const u16* __restrict__ gate, const u16* __restrict__ up, u16* __restrict__ dst, int I, int K) {
    i64 n = (i64)I * K / 8;
    for (i64 i = global_index(); i < 2 * n; i += global_stride()) {
        i64 which = i / n, e = i - which * n;
        i64 row = e / (K / 8), c = e - row * (K / 8);
        const uint4* src = (const uint4*)((which ? up : gate) + row * K) + c;
        ((uint4*)(dst + (2 * row + which) * K))[c] = *src;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Across the warp: the largest value and its index (the lowest index on ties); every lane gets the result.
__device__ __forceinline__ void warp_argmax(float& v, int& i) {
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(0xffffffffu, v, o);
        int oi = __shfl_xor_sync(0xffffffffu, i, o);
        if (ov > v || (ov == v && oi < i)) { v = ov; i = oi; }
    }
}

// Greedy choice on the device: for row b, the index of the largest logit (the lowest index on ties).
// With advance != 0 the decode state moves on in place: tokens[b] = choice, pos[b] += 1, out[count[b]++ * B + b] = choice.
extern "C" __global__ void argmax_rows(const float* logits, int V, int B, int* tokens, int* pos, int* out, int* count, int advance) {
    pdl_wait();
    pdl_trigger();
    __shared__ float sv[32];
    __shared__ int si[32];
    int b = blockIdx.x;
    const float* row = logits + (i64)b * V;
    float best = NEG_INF;
    int bi = 0x7fffffff;
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        float v = ld_f(row + i);
        if (v > best || (v == best && i < bi) || (v != v && bi == 0x7fffffff)) { best = v; bi = i; }
    }
    warp_argmax(best, bi);
    int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (lane == 0) { sv[w] = best; si[w] = bi; }
    __syncthreads();
    if (w == 0) {
        int nw = blockDim.x >> 5;
        best = lane < nw ? sv[lane] : NEG_INF;
        bi = lane < nw ? si[lane] : 0x7fffffff;
        warp_argmax(best, bi);
        if (lane == 0) {
            if (bi == 0x7fffffff) bi = 0;
            tokens[b] = bi;
            if (advance) {
                pos[b] = ld_i(pos + b) + 1;
                int c = ld_i(count + b);
                out[(i64)c * B + b] = bi;
                count[b] = c + 1;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Batch-1 decode step as one persistent kernel (one launch per token; grid = one block of 512 threads per
// multiprocessor, all resident). Per layer five phases separated by grid barriers:
//   qkv    input x times the RMSNorm weights in shared memory, each row sum scaled by rsqrt(mean(x^2) + eps) (the sum
//          of squares from the staged x: same bits every run), fused q/k/v GEMV, RoPE on adjacent q/k pairs, k/v to the cache
//   attn   blocks h < nh: attention of head h (MK_PREFETCH_O: the other blocks pull the o weights into L2 meanwhile)
//   o      GEMV from the staged attention output, x += ...
// or (MK_SPLIT_O, the default) attn and o as one phase without the barrier between them (mk_o_split), so four:
//   gateup GEMV from the staged normalised x, silu(gate) * up -> act
//   down   GEMV from the staged act, x += ...
// or (MK_FUSE_MLP, the default) gateup and down as one phase, each block on its slice of the intermediate dimension
// (mk_down_slice), so three. The residual x lives in 32.32 fixed point (acco): every phase that adds to it adds
// integers, exact in any order, so split and fused sums give the same bits run after run.
// Then the final norm + lm_head GEMV (each warp keeps its best logit) and a last barrier after which block 0 picks
// the token and advances the decode state (tokens, pos, out[count], count). Before every barrier each warp issues
// its first weight loads of the next phase, so the memory pipe stays busy across phase boundaries.
// Data written by other blocks in this launch is read at L2 (ld.global.cg); weights through the read-only path.
// The persistent kernel's block index and grid as it assigns work: blockIdx.x / gridDim.x, or (MK_VIRTUAL_BLOCKS, a
// second build of this file) a work id per multiprocessor from a table (mk_smvid, set by the host), so that chosen
// multiprocessors sit out: the launch has one block per multiprocessor, the work is divided for mk_vgrid_g of them.
#ifdef MK_VIRTUAL_BLOCKS
extern "C" {
__device__ int mk_smvid[1024];   // each multiprocessor's (%smid) work id; -1: it sits out
__device__ int mk_vgrid_g;       // the number of work ids: the grid the work is divided for
}
__shared__ int mk_vb_s, mk_vg_s;
__device__ __forceinline__ int mkvb() { return mk_vb_s; }
__device__ __forceinline__ int mkvg() { return mk_vg_s; }
#define MK_BID mkvb()
#define MK_GRID mkvg()
#else
#define MK_BID blockIdx.x
#define MK_GRID gridDim.x
#endif
#define MK_NT 512
#define MK_W (MK_NT / 32)

struct MkLayer {
    const u16 *attnNorm, *wqkv, *bqkv, *wo, *bo, *mlpNorm, *wgu, *bgu, *wdown, *bdown;
    const u16* wdownB;   // W_down repacked by repack_down_blocked for MK_GRID blocks, or null (MK_DOWN_BLOCKED)
};

// Keep in sync with CudaLlamaEngine.MkArgs (C#): 8-byte fields first, then 4-byte fields.
struct MkArgs {
    const MkLayer* layers;
    const u16* emb;
    const u16* finalNorm;
    const u16* out;
    const float* invf;
    u16* kc;            // layer 0 of the cache; layer l at + l * layerElems
    u16* vc;
    float* x;           // (unused by the persistent kernel: x lives in acco)
    u16* qkv;
    u16* attn;
    u16* act;
    float* logits;
    int* tokens;
    int* slot;
    int* pos;
    int* outIds;
    int* count;
    u64* bar;           // [2 + nh] grid-barrier arrival count (grows by MK_GRID per barrier); (MK_FUSE_MLP) blocks that staged
                        // the MLP input; per head, its blocks' attention partials written (long contexts, mk_attn_one_pass)
    float* candV;       // [MK_GRID] best logit of each block
    int* candI;
    u64* trace;         // [2 * phases]: block 0's %globaltimer when it reaches and when it leaves each barrier
    u64* acco;          // [H] the residual stream x in 32.32 fixed point (integer adds are exact and commute: the same bits in any order)
    u64* btrace;        // [2 * phases][MK_GRID]: each block's %globaltimer when its input is staged and when it arrives
    float* part;        // [MK_GRID][hd + 2] (long contexts) each block's attention partial: max, sum, weighted v
    i64 layerElems;
    int L, H, I, V, nh, nkv, hd, maxCtx, window;
    float eps, scale;
    int flags;          // MK_* below
};
#define MK_ONE_PASS_ATTN 1   // one-pass attention (else two-pass through attn_token_impl)
#define MK_PREFETCH_O 2      // blocks without a head pull the o weights into L2 during attention
#define MK_PREFETCH_KV 4     // the attention blocks pull their head's cached k/v into L2 during the q/k/v phase
#define MK_EARLY 8           // RMSNorm weights loaded at the barrier, the residual of an x += row at the row's start
#define MK_SPLIT_O 16        // attention and the o projection in one phase, split over the heads (mk_o_split)
#define MK_NEXT_EARLY 64     // a warp loads its next row group's first batch before the current group's sums and epilogue
#define MK_FUSE_MLP 128      // gate/up and down as one phase: each block takes a slice of the intermediate dimension (mk_down_slice)
#define MK_ARRIVE_FIRST 1024 // a block arrives at a grid barrier before its warps issue the next phase's preloads: the release fence of
                             // the arriving thread otherwise waits for those weight loads (release -1..2 us a barrier; session 7)
#define MK_LIGHT_ARRIVE 2048 // arrive with the release add alone (its own fence orders the block's writes; no separate sc fence)
#define MK_DOWN_BLOCKED 4096 // (with 128) the down part reads MkLayer.wdownB, W_down as per-block column blocks (repack_down_blocked)
#define MK_NO_WATCHDOG (1 << 20)   // no 2 s limit on a grid-barrier wait (runs under compute-sanitizer)
#ifndef MK_ATTN_SPLIT_MIN
// positions from which a head's blocks split its attention (mk_attn_one_pass): past three rounds of 128 positions the
// split wins (session 17, H100 GPU-ffb02eae, attention a layer unsplit / split: 320 positions 5.23 / 5.47 us, 400 6.07 /
// 5.58, 500 6.94 / 6.42; session 15, H200: 270 positions 5.7 / 6.1); 640 before session 17
#define MK_ATTN_SPLIT_MIN 385
#endif
#ifndef MK_GROUP_QKV
// 1 (an experiment, for the decode harness): the q/k/v rows dealt so that the blocks of a kv group make its rows (the
// 4 blocks of head h its q rows, the group's 16 blocks its k and v rows, in the 8B shape), and the attention blocks wait
// on their group's count instead of a grid barrier; the o part's adds wait for every block's staging of the residual
// (a count, as the fused MLP's). Where the shape does not divide so, the grid barrier as before.
#define MK_GROUP_QKV 0
#endif
#ifndef MK_DOWN_ROTATE
// 1 (the default since session 14; 0 for comparison), where W_down is read from the per-block copy (4096): each block takes the fused MLP's down batches (16 rows of X each) from its own starting batch,
// b (H / 16) / grid, instead of every block from batch 0: at any moment the blocks' 64-bit adds then go to all of X's
// 256 lines (8B shape) instead of the same 16 (one L2 slice each), ~8 blocks a line instead of 128. The same adds, so
// the same bits. (Session 6 staggered rows in the unblocked layout, where it cost DRAM locality; with W_down blocked
// per block (4096) each block streams its own contiguous block whatever its order. Rotating the o part's batches,
// session 8, changed nothing, but the down part makes 4x the adds, and they cost ~3 us a layer, session 7.)
// Measured (H200, session 14): +1.2% (harness 251.3 -> 254.4 tok/s, twice) and +1.4% (bench sweep 254.0 -> 257.5), same ids.
// W_down read in place keeps every block's batches in order (its DRAM locality, session 6).
#define MK_DOWN_ROTATE 1
#endif
#ifndef MK_ARGS_SMEM
// where the kernel reads its arguments after a barrier: 0 = MkArgs and the layer table in global memory (each grid
// barrier's acquire and every "memory" clobber make the compiler reload them: an L2 round trip under the weight stream
// before a phase can form its first addresses); 1 (the default since session 17) = MkArgs copied into shared memory
// once; 2 = also each layer's MkLayer, the next one pulled by cp.async into a two-entry shared buffer during the layer
// before. Measured (decode harness, position 150, twice alternating, max |diff| 0 and the same ids): H100
// GPU-340d18f6 188.1 -> 189.8 tok/s (+0.9%) with 1, 189.5 with 2; GPU-ffb02eae 188.0 -> 189.8; GPU-b58f0624 187.5 -> 189.4,
// attention 4.96 -> 3.95 us a layer (the reloads after the q/k/v barrier). Not yet measured on an H200.
#define MK_ARGS_SMEM 1
#endif
#ifndef MK_ATTN_XCHG
// (split attention) the head's partials read back staged through shared memory, all loads in flight at once (1), or
// part after part straight from L2 (0, as before session 15)
#define MK_ATTN_XCHG 1
#endif
#ifndef MK_ATTN_P
#define MK_ATTN_P 4   // positions a thread loads per attention round (G = MK_NT / (hd / 8) groups: 128 positions a round at hd 128)
#endif
#define MK_SPLIT_ATTN 512          // (with 16) split every head's attention over its blocks whatever the context (tests)

__device__ __forceinline__ u64 globaltimer() {
    u64 t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}

// Grid barrier (all blocks resident): bar is a 64-bit arrival count that only grows; the k-th barrier of a launch
// is passed once it reaches base + (k + 1) * MK_GRID (base: the count when the launch began, a multiple of the
// grid). Every block polls the count itself: no reset and no separate release write.
// Block 0 records when it arrives and when it leaves (trace[2k], trace[2k + 1]).
__device__ __forceinline__ u64 ld_acquire_u64(const u64* p) {
    u64 v;
    asm volatile("ld.acquire.gpu.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
    return v;
}
// Each block's timestamps (thread 0): btrace[(2k) * grid + b] when barrier k's phase has its input staged, [2k + 1] when
// the block arrives at barrier k.
__device__ __forceinline__ void mk_bt(u64* btrace, int slot) {
    if (threadIdx.x == 0) btrace[(i64)slot * MK_GRID + MK_BID] = globaltimer();
}
// (one thread) Poll a count that only grows until it reaches target. A block that never arrives would hang the device:
// give up after 2 s with a launch error instead (what, k: for the message).
__device__ __forceinline__ void mk_wait(const u64* c, u64 target, int flags, const char* what, int k) {
    u64 t0 = globaltimer();
    for (unsigned spin = 1; ld_acquire_u64(c) < target; spin++)
        if ((spin & 1023) == 0 && globaltimer() - t0 > 2000000000ull && !(flags & MK_NO_WATCHDOG)) {
            printf("decode_b1: block %d gave up at %s %d (count %llu, target %llu)\n", MK_BID, what, k, ld_acquire_u64(c), target);
            asm volatile("trap;");
        }
}
__device__ __forceinline__ void mk_sync_arrive(u64* bar, u64* trace, int k, u64* btrace, int flags = 0) {
    __syncthreads();
    if (threadIdx.x == 0) {
        u64 now = globaltimer();
        btrace[(i64)(2 * k + 1) * MK_GRID + MK_BID] = now;
        if (MK_BID == 0) trace[2 * k] = now;
        if (!(flags & MK_LIGHT_ARRIVE)) __threadfence();   // (the block's writes, ordered before this thread's by the __syncthreads above)
        asm volatile("red.release.gpu.global.add.u64 [%0], 1;" :: "l"(bar) : "memory");
    }
}
__device__ __forceinline__ void mk_sync_wait(u64* bar, u64 base, u64* trace, int& k, int flags) {
    if (threadIdx.x == 0) {
        mk_wait(bar, base + (u64)(k + 1) * MK_GRID, flags, "grid barrier", k);
        if (MK_BID == 0) trace[2 * k + 1] = globaltimer();
    }
    k++;
    __syncthreads();
}
__device__ __forceinline__ void mk_sync(u64* bar, u64 base, u64* trace, int& k, int flags, u64* btrace) {
    mk_sync_arrive(bar, trace, k, btrace, flags);
    mk_sync_wait(bar, base, trace, k, flags);
}
// A grid barrier with the next phase's preloads (pre()): before the arrival or, with MK_ARRIVE_FIRST, between the arrival
// and the wait. (The arriving thread's release fences wait for the memory operations in flight, the warps' just-issued
// weight loads among them: arriving first releases the barriers 0.5-1.5 us earlier; session 7, +1.3..1.9%.)
template <class P>
__device__ __forceinline__ void mk_sync_with(u64* bar, u64 base, u64* trace, int& k, int flags, u64* btrace, P pre) {
    if (flags & MK_ARRIVE_FIRST) {
        mk_sync_arrive(bar, trace, k, btrace, flags);
        pre();
        mk_sync_wait(bar, base, trace, k, flags);
    } else {
        pre();
        mk_sync(bar, base, trace, k, flags, btrace);
    }
}

// The first batch of a warp's row group of a GEMV phase (rows [row0, row0 + R), chunks c0 + 32 u) into registers:
// gemv_load's batch, seen as 8 registers (r * U + u) whatever R is.
template <int R>
__device__ __forceinline__ void mk_load(uint4 (&wb)[8], const u16* __restrict__ W, int row0, int N, int K, int c0) {
    gemv_load<R, 8 / R>(*reinterpret_cast<uint4(*)[R][8 / R]>(&wb), W, row0, N, K, c0, K >> 3);
}

// Warps per block that take part in a GEMV phase of `groups` row groups: the most (down to half) that leave no
// partly used last round (e.g. 3072 row pairs over 132 x 16 warps would leave 27% of the second round idle).
__device__ __forceinline__ int mk_active_warps(int groups) {
    int best = MK_W;
    float bestEff = 0.f;
    for (int aw = MK_W; aw >= MK_W / 2; aw--) {
        int warps = MK_GRID * aw, rounds = (groups + warps - 1) / warps;
        float eff = (float)groups / ((float)rounds * warps);
        if (eff > bestEff + 0.01f) { bestEff = eff; best = aw; }
    }
    return best;
}

// At a barrier (mk_sync_with): the first batch of the warp's first row group of the next phase into registers, so memory stays
// busy while the grid waits and stages its input. (Measured and dropped, bench/notes/cuda-engine.md: pulling the whole
// first group into L2, run 9, or its next 1-3 batches, session 3 run 3; streaming the weights through a 3-stage cp.async
// buffer in shared memory, run 11; 1-3 batches per warp prefetched into shared memory, session 3 run 1: the shared
// memory it takes shrinks L1, which holds the loads in flight.)
// A warp's row groups in a GEMV phase: first, first + stride, ... below end; first < 0: none. Whole grid (sl == nullptr):
// the block's active warps (mk_active_warps) take groups block-major (block b's warps b aw .. b aw + aw - 1; dealing
// them warp-major instead, so that a last round's groups spread over every block, changed nothing: session 6 run 4).
// A block slice (sl = {first group, end}; MK_FUSE_MLP): its warps stride over it.
struct MkGroups { int first, stride, end; };
__device__ __forceinline__ MkGroups mk_groups(int groups, const int2* sl = nullptr) {
    int warp = threadIdx.x >> 5;
    if (sl) return {sl->x + warp < sl->y ? sl->x + warp : -1, MK_W, sl->y};
    int aw = mk_active_warps(groups);
    int first = warp >= aw ? -1 : (int)MK_BID * aw + warp;
    return {first < groups ? first : -1, (int)MK_GRID * aw, groups};
}
template <int R>
__device__ __forceinline__ void mk_preload(uint4 (&wb)[8], const u16* __restrict__ W, int N, int K, const int2* sl = nullptr) {
    MkGroups gs = mk_groups((N + R - 1) / R, sl);
    if (gs.first >= 0) {
        mk_load<R>(wb, W, gs.first * R, N, K, threadIdx.x & 31);
    } else {
#pragma unroll
        for (int k = 0; k < 8; k++) wb[k] = make_uint4(0, 0, 0, 0);   // (nothing live across the barrier)
    }
}
// The RMSNorm weights of this thread's first element pairs (mk_stage_norm: 2t + 2 MK_NT m, m < 4), loaded at the
// barrier (MK_EARLY).
__device__ __forceinline__ uint4 mk_gamma(const u16* __restrict__ g, int H, int flags) {
    u32 v[4];
#pragma unroll
    for (int m = 0; m < 4; m++) {
        int e = 2 * threadIdx.x + 2 * MK_NT * m;
        v[m] = (flags & MK_EARLY) && e < H ? *(const u32*)(g + e) : 0u;
    }
    return make_uint4(v[0], v[1], v[2], v[3]);
}

// 32.32 fixed point (MK_SPLIT_O): integer adds are exact and commute, so the heads' parts of the o projection add up
// to the same bits in any order.
__device__ __forceinline__ unsigned long long f2fix(float v) { return (unsigned long long)__float2ll_rn(v * 4294967296.f); }
__device__ __forceinline__ float fix2f(u64 v) { return (float)(long long)v * 2.3283064365386963e-10f; }   // (one rounding: the same bits as through double)
__device__ __forceinline__ u64 ld_cg_u64(const u64* p) { u64 v; asm volatile("ld.global.cg.u64 %0, [%1];" : "=l"(v) : "l"(p)); return v; }
__device__ __forceinline__ void ld_cg_u64x2(const u64* p, u64& a, u64& b) {
    asm volatile("ld.global.cg.v2.u64 {%0,%1}, [%2];" : "=l"(a), "=l"(b) : "l"(p));
}

// Stage the RMSNorm input x (the residual X in 32.32 fixed point or, for layer 0, the embedding row, which block 0 then
// writes to X) times the norm weights g, as two planes of float4: s4[c] = elements 8c..8c+3, s4[H / 8 + c] =
// 8c+4..8c+7 (conflict-free reads by a warp's chunks; H % 8 == 0), and each warp's sum of squares of x to red[warp]: the
// GEMV multiplies its row sums by mk_rs() = rsqrt(mean(x^2) + eps) instead of a second pass over the staged vector after
// a block-wide sum (session 5). Thread t takes the element pairs 2t + 2 MK_NT m, four at a time with all their loads in
// flight: a warp's load covers 512 contiguous bytes of X (8 elements a thread were 64-byte strides: q/k/v staging 3.05 ->
// 1.54 us, gate/up 2.14 -> 1.16 us, harness runs 4-5 of session 6). gpre: g of the thread's first four pairs (mk_gamma)
// when MK_EARLY is set.
__device__ __forceinline__ void mk_stage_norm(const u64* X, const u16* embRow, u64* Xout, const u16* __restrict__ g, uint4 gpre,
                                              bool early, float* s, int H, float* red) {
    float sq = 0.f;
    int H8 = H >> 3;
    for (int base = 0; base < H; base += 8 * MK_NT) {
        u64 q[4][2];
        u32 gr[4];
#pragma unroll
        for (int m = 0; m < 4; m++) {
            int e = base + 2 * threadIdx.x + 2 * MK_NT * m;
            q[m][0] = q[m][1] = 0;
            gr[m] = 0;
            if (e < H) {
                if (embRow) {
                    u32 r = *(const u32*)(embRow + e);
                    q[m][0] = r & 0xffffu;
                    q[m][1] = r >> 16;
                } else {
                    ld_cg_u64x2(X + e, q[m][0], q[m][1]);
                }
                gr[m] = early && base == 0 ? (m == 0 ? gpre.x : m == 1 ? gpre.y : m == 2 ? gpre.z : gpre.w) : *(const u32*)(g + e);
            }
        }
#pragma unroll
        for (int m = 0; m < 4; m++) {
            int e = base + 2 * threadIdx.x + 2 * MK_NT * m;
            if (e >= H) break;
            float v0, v1;
            if (embRow) {
                v0 = bf2f((u16)q[m][0]);
                v1 = bf2f((u16)q[m][1]);
                if (Xout) *(ulonglong2*)(Xout + e) = make_ulonglong2(f2fix(v0), f2fix(v1));
            } else {
                v0 = fix2f(q[m][0]);
                v1 = fix2f(q[m][1]);
            }
            sq += v0 * v0 + v1 * v1;
            int c = e >> 3, o = e & 7;
            *(float2*)(s + (o < 4 ? 4 * c + o : 4 * H8 + 4 * c + o - 4)) = make_float2(v0 * bf2f((u16)(gr[m] & 0xffffu)), v1 * bf2f((u16)(gr[m] >> 16)));
        }
    }
    sq = warp_sum(sq);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = sq;
    __syncthreads();
}

// The RMSNorm scale from the staged warps' sums of squares (mk_stage_norm; every warp adds them in the same order).
__device__ __forceinline__ float mk_rs(const float* red, int H, float eps) {
    float sq = 0.f;
#pragma unroll
    for (int w = 0; w < MK_W; w++) sq += red[w];
    return rsqrtf(sq / (float)H + eps);
}

__device__ __forceinline__ void mk_stage_bf16(const u16* src, u16* s, int K) {
    for (int i = threadIdx.x * 8; i < K; i += MK_NT * 8) *(uint4*)(s + i) = ld_cg_u4(src + i);
    __syncthreads();
}

// One batch's products (R rows x 8 / R chunks c0 + 32 u below cEnd, in wb) with the staged input added into acc[r]:
// INF: the input is float planes (s4[c], s4[chunks + c]; mk_stage_norm), else bf16.
template <int R, int INF>
__device__ __forceinline__ void mk_batch_dot(const uint4 (&wb)[8], const void* sIn, int chunks, int c0, int cEnd, float (&acc)[R]) {
    constexpr int U = 8 / R;
#pragma unroll
    for (int u = 0; u < U; u++) {
        int c = c0 + u * 32;
        if (c >= cEnd) break;
        float xv[8];
        if (INF) {
            float4 x0 = ((const float4*)sIn)[c], x1 = ((const float4*)sIn)[chunks + c];
            xv[0] = x0.x; xv[1] = x0.y; xv[2] = x0.z; xv[3] = x0.w; xv[4] = x1.x; xv[5] = x1.y; xv[6] = x1.z; xv[7] = x1.w;
        } else {
            bf8_to_f(((const uint4*)sIn)[c], xv);
        }
#pragma unroll
        for (int r = 0; r < R; r++) {
            float wf[8];
            bf8_to_f(wb[r * U + u], wf);
            float s = acc[r];
#pragma unroll
            for (int j = 0; j < 8; j++) s = fmaf(wf[j], xv[j], s);
            acc[r] = s;
        }
    }
}

// One GEMV phase: warps stride over groups of R rows (mk_groups); wb holds the first batch of the warp's first group.
// INF: the staged input is float (x * g from mk_stage_norm; rs = mk_rs() scales the row sums), else bf16 (rs = 1).
// EPI_ADD: the residual X[row] += row (+ bias) in fixed point (one writer per row: a plain read and write).
// EPI_SILU with sl (MK_FUSE_MLP: the block's slice of the intermediate dimension): act to shared memory, actS[i - aBase]
// as float of its bf16 rounding.
template <int R, int EPI, int INF>
__device__ __forceinline__ void mk_gemv(uint4 (&wb)[8], const u16* __restrict__ W, const u16* __restrict__ bias, int N, int K, const void* sIn,
                                        const MkArgs& a, int layer, int p, int slot, float& bestV, int& bestI, float rs,
                                        const int2* sl = nullptr, float* actS = nullptr, int aBase = 0) {
    constexpr int U = 8 / R;
    int lane = threadIdx.x & 31;
    int groups = (N + R - 1) / R, chunks = K >> 3;
    MkGroups gs = mk_groups(groups, sl);
    if (gs.first < 0) return;
    // The warp's groups: its first (batch 0 in wb), then every stride-th. (Measured and dropped, session 3 run 11:
    // claiming the groups after the first from a per-phase counter to balance the warps; no phase got faster and the
    // lm_head's 60 claims per warp on one counter cost 70 us.)
    bool nextEarly = (a.flags & MK_NEXT_EARLY) != 0;
    for (int grp = gs.first; grp < gs.end;) {
        int row0 = grp * R;
        if (!nextEarly && grp != gs.first) mk_load<R>(wb, W, row0, N, K, lane);
        float acc[R];
#pragma unroll
        for (int r = 0; r < R; r++) acc[r] = 0.f;
        u64 xold = 0;   // (MK_EARLY: the residual of an X += row is read at the row's start, off the phase's tail)
        if (EPI == EPI_ADD && (a.flags & MK_EARLY) && lane == 0) xold = ld_cg_u64(a.acco + row0);
        for (int c0 = lane; c0 < chunks; c0 += 32 * U) {
            if (c0 != lane) mk_load<R>(wb, W, row0, N, K, c0);
            mk_batch_dot<R, INF>(wb, sIn, chunks, c0, chunks, acc);
        }
        // (MK_NEXT_EARLY) the next group's first batch, in flight during the sums and the epilogue
        int next = grp + gs.stride;
        if (nextEarly && next < gs.end) mk_load<R>(wb, W, next * R, N, K, lane);
#pragma unroll
        for (int r = 0; r < R; r++) acc[r] = warp_sum(acc[r]) * rs;   // (rs: mk_rs() for a normalised input, else 1)
        grp = next;
        if (lane != 0) continue;
        if (EPI == EPI_SILU) {
            float g = acc[0] + (bias ? bf2f(bias[row0]) : 0.f);
            float u = acc[R > 1 ? 1 : 0] + (bias ? bf2f(bias[row0 + 1]) : 0.f);
            u16 v = f2bf(silu(g) * u);
            if (actS) actS[(row0 >> 1) - aBase] = bf2f(v);
            else a.act[row0 >> 1] = v;
        } else if (EPI == EPI_ADD) {
            u64* xp = a.acco + row0;
            u64 x0 = (a.flags & MK_EARLY) ? xold : ld_cg_u64(xp);
            *xp = x0 + f2fix(acc[0] + (bias ? bf2f(bias[row0]) : 0.f));
        } else {   // EPI_F32: logits, and the warp's best (largest, lowest index on ties; NaN never wins)
            float v = acc[0];
            a.logits[row0] = v;
            if (v > bestV || (v == bestV && row0 < bestI)) { bestV = v; bestI = row0; }
        }
    }
}

// The q/k/v GEMV with each row pair split over K between warps w and w + MK_W / 2 of a block (pair
// p = w % (MK_W / 2)): all MK_W warps stream (3072 pairs over 132 x 8 warp pairs = 2.9 rounds, where the unsplit GEMV
// keeps 12 of 16 warps busy for 1.9 rounds); the second half's sums reach the first warp through shared memory and a
// named barrier per pair (ids 1..MK_W / 2; __syncthreads is 0). Half h takes chunks [h hc, min(chunks, (h + 1) hc)),
// hc the half rounded up to whole batches. (q/k/v release 17.2 -> 16.4 us per layer, +0.8%; session 5.)
__device__ __forceinline__ int mk_sk_half_chunks(int K) { int chunks = K >> 3, hc = (chunks / 2 + 127) / 128 * 128; return hc; }
__device__ __forceinline__ int mk_qkv_grp0(int pr) { return (int)MK_BID * (MK_W / 2) + pr; }
// The q/k/v row pairs of warp pair pr: its i-th is mk_qkv_nth(m, pr, i, groups), -1 past its last. By default the
// blocks take the pairs block-major over the whole grid (pair MK_BID (MK_W / 2) + pr, then every MK_GRID (MK_W / 2)-th).
// (MK_GROUP_QKV, m.on) A block's pairs: its head's q pairs [part qpb, (part + 1) qpb), then its share of its kv group's
// k pairs and v pairs (kpb each); warp pair pr takes the block's pairs pr, pr + MK_W / 2, ...
struct MkQkvMap {
#if MK_GROUP_QKV
    bool on; int ppb, qpb, kpb, q0, k0, v0, g, cnt, stg; u64 base, sbase; int bpg;
#endif
};
__device__ __forceinline__ int mk_qkv_nth(const MkQkvMap& m, int pr, int i, int groups) {
#if MK_GROUP_QKV
    if (m.on) {
        int t = pr + i * (MK_W / 2);
        if (t >= m.ppb) return -1;
        if (t < m.qpb) return m.q0 + t;
        t -= m.qpb;
        return t < m.kpb ? m.k0 + t : m.v0 + (t - m.kpb);
    }
#endif
    int grp = mk_qkv_grp0(pr) + i * (int)MK_GRID * (MK_W / 2);
    return grp < groups ? grp : -1;
}
#if MK_GROUP_QKV
// (on: whole shares of every head's q pairs and of every group's k and v pairs, at most 4 rounds of warp pairs)
__device__ __forceinline__ MkQkvMap mk_qkv_map(const MkArgs& a, int HD, bool split) {
    MkQkvMap m{};
    int bph = (int)MK_GRID / max(1, a.nh), gs = a.nh / max(1, a.nkv);
    m.on = split && a.nkv > 0 && a.nh % a.nkv == 0 && bph * a.nh == (int)MK_GRID && (HD / 2) % bph == 0 && (HD / 2) % (bph * gs) == 0;
    if (!m.on) return m;
    int h = MK_BID / bph, part = MK_BID % bph;
    m.g = h / gs;
    m.bpg = bph * gs;
    m.qpb = HD / 2 / bph;
    m.kpb = HD / 2 / m.bpg;
    m.ppb = m.qpb + 2 * m.kpb;
    if (m.ppb > 4 * (MK_W / 2)) { m.on = false; return m; }
    m.q0 = h * (HD / 2) + part * m.qpb;
    m.k0 = a.nh * (HD / 2) + m.g * (HD / 2) + (MK_BID - m.g * m.bpg) * m.kpb;
    m.v0 = m.k0 + a.nkv * (HD / 2);
    m.cnt = 2 + a.nh + m.g;     // (the group's count; MkArgs.bar has 3 + nh + nkv words)
    m.stg = 2 + a.nh + a.nkv;   // (the q/k/v stagings' count)
    return m;
}
#endif
__device__ __forceinline__ void mk_preload_qkv_sk(uint4 (&wb)[8], const u16* __restrict__ W, int N, int K, const MkQkvMap& m) {
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, half = warp / (MK_W / 2);
    int grp0 = mk_qkv_nth(m, warp % (MK_W / 2), 0, (N + 1) / 2), c0 = half * mk_sk_half_chunks(K) + lane;
    if (grp0 >= 0 && c0 < (K >> 3)) {
        mk_load<2>(wb, W, grp0 * 2, N, K, c0);
    } else {
#pragma unroll
        for (int k = 0; k < 8; k++) wb[k] = make_uint4(0, 0, 0, 0);
    }
}
__device__ __forceinline__ void mk_gemv_qkv_sk(uint4 (&wb)[8], const u16* __restrict__ W, const u16* __restrict__ bias, int N, int K,
                                               const float* sIn, const MkArgs& a, int layer, int p, int slot, float rs, const MkQkvMap& m) {
    __shared__ float xch[2][MK_W / 2][2];
    constexpr int R = 2, U = 4;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, half = warp / (MK_W / 2), pr = warp % (MK_W / 2);
    int groups = (N + 1) / 2, chunks = K >> 3, hc = mk_sk_half_chunks(K);
    int cLo = half * hc, cHi = min(chunks, cLo + hc);
    for (int rd = 0, grp = mk_qkv_nth(m, pr, 0, groups); grp >= 0; rd++) {
        int row0 = grp * R;
        float acc[R] = {0.f, 0.f};
        for (int c0 = cLo + lane; c0 < cHi; c0 += 32 * U) {
            if (c0 != cLo + lane) mk_load<R>(wb, W, row0, N, K, c0);
            mk_batch_dot<R, 1>(wb, sIn, chunks, c0, cHi, acc);
        }
        int next = mk_qkv_nth(m, pr, rd + 1, groups);
        if (next >= 0 && cLo + lane < chunks) mk_load<R>(wb, W, next * R, N, K, cLo + lane);   // (in flight during the sums)
        float v0 = warp_sum(acc[0]), v1 = warp_sum(acc[1]);
        if (half == 1 && lane == 0) { xch[rd & 1][pr][0] = v0; xch[rd & 1][pr][1] = v1; }
        asm volatile("bar.sync %0, %1;" :: "r"(1 + pr), "r"(64) : "memory");
        if (half == 0 && lane == 0) {
            v0 = (v0 + xch[rd & 1][pr][0]) * rs;
            v1 = (v1 + xch[rd & 1][pr][1]) * rs;
            qkv_store(v0, v1, bias, row0, p, slot, a.invf, a.qkv, a.kc + (i64)layer * a.layerElems, a.vc + (i64)layer * a.layerElems,
                      a.nh, a.nkv, a.hd, a.maxCtx);
        }
        grp = next;
    }
}

// The attention blocks' L2 pull of the cached k/v of their kv head at positions start..p-1 (MK_PREFETCH_KV), during
// the q/k/v phase: the q heads of a group split the lines.
template <int HD>
__device__ __forceinline__ void mk_prefetch_kv(const MkArgs& a, int l, int h, int p, int slot) {
    int gs = a.nh / a.nkv, kvh = h / gs, part = h % gs;
    int start = a.window > 0 ? max(0, p - a.window + 1) : 0;
    i64 lo = (i64)l * a.layerElems + (((i64)slot * a.nkv + kvh) * a.maxCtx + start) * HD;
    const char* kb = (const char*)(a.kc + lo);
    const char* vb = (const char*)(a.vc + lo);
    int lines = (int)(((i64)(p - start) * HD * 2 + 127) / 128);
    for (int i = part * MK_NT + threadIdx.x; i < lines; i += gs * MK_NT) {
        asm volatile("prefetch.global.L2 [%0];" :: "l"(kb + (i64)i * 128));
        asm volatile("prefetch.global.L2 [%0];" :: "l"(vb + (i64)i * 128));
    }
}

// The dot product of 8 bf16 values with x[0..7], summed over each aligned group of G lanes (every lane takes part).
template <int G>
__device__ __forceinline__ float dot8_lanes(const uint4& w, const float* x) {
    float f[8];
    bf8_to_f(w, f);
    float d = 0.f;
#pragma unroll
    for (int e = 0; e < 8; e++) d = fmaf(f[e], x[e], d);
#pragma unroll
    for (int o = G / 2; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
    return d;
}

// One-pass attention of head h (online softmax): TPP = HD / 8 threads per position, each with 8 dimensions of q, k
// and v; G = MK_NT / TPP positions at a time, P of them per thread per round with all their k and v loads in flight.
// The G partial results (max, sum, 8 dims of the weighted v per thread) are combined through shared memory.
// so: (MK_SPLIT_O) the output to shared memory, as float of its bf16 rounding, instead of a.attn.
#ifdef MK_ATTN_TRACE   // (harness only: block 0's clock at points of layer 5's attention)
__device__ long long mk_attn_t[16];
__device__ unsigned long long mk_attn_g[16];
#define MK_ATT(i) do { if (MK_BID == 0 && threadIdx.x == 0 && l == 5) { long long c_; asm volatile("mov.u64 %0, %%clock64;" : "=l"(c_)); mk_attn_t[i] = c_; mk_attn_g[i] = globaltimer(); } } while (0)
#else
#define MK_ATT(i) do { } while (0)
#endif
// sp (long contexts, MK_SPLIT_O): the head's nsp blocks split its positions, block part taking the part-th share; each
// writes its partial (max, sum, weighted v, unnormalised) to a.part, counts itself on the head's counter (a.bar[2 + h];
// target: the count the nsp blocks reach in this layer), waits for the others and combines the nsp partials in part order
// (the same bits in every block). Pays from ~3 rounds of positions on (the blocks of a head each read the whole cache
// otherwise: ~1.3 us a round of 128 positions, L2-bound; the exchange costs ~4 us: attention at position 1000 13.7 ->
// 9.0 us per layer, at 400 6.8 either way, at 150 4.5 -> 6.4; session 6 runs 11 and 13).
struct MkAttnSplit { int part, nsp; u64 target; };
template <int HD>
__device__ __forceinline__ void mk_attn_one_pass(const MkArgs& a, int l, int h, int p, int slot, float* sm, float* so = nullptr,
                                                 const MkAttnSplit* sp = nullptr) {
    constexpr int TPP = HD / 8, G = MK_NT / TPP, P = MK_ATTN_P;
    float* gm = sm;                 // [G] max of each group
    float* gl = sm + G;             // [G] sum of each group
    float* gacc = sm + 2 * G;       // [G][HD]
    int g = threadIdx.x / TPP, c = threadIdx.x % TPP;
    int kvh = h / (a.nh / a.nkv);
    int start = a.window > 0 ? max(0, p - a.window + 1) : 0;
    int n = p - start + 1;
    if (sp) {   // (this block's share of the positions)
        int s0 = (int)((i64)n * sp->part / sp->nsp), s1 = (int)((i64)n * (sp->part + 1) / sp->nsp);
        start += s0;
        n = s1 - s0;
    }
    // q unscaled (its load overlaps the first round's k/v loads; the scale goes onto the dot products), one max and
    // rescale per round of P positions, the warp's groups combined by shuffles before the block combine (16 partials, not
    // 32: the combine 0.96 -> 0.64 us; attention 4.8 -> 4.5 us per layer, +0.5% in the sit-out build, session 10 run 8;
    // neutral in the plain build, session 9 run 3). (Measured and dropped: P = 6 or 8, one round up to 192 or 256
    // positions, -0.3 / -1.8% at position 150: spills; rounds of 64 double-buffered, session 9 run 5: no change.)
    float q[8];
    MK_ATT(0);
    bf8_to_f(ld_cg_u4(a.qkv + h * HD + c * 8), q);
    MK_ATT(1);
    i64 lo = (i64)l * a.layerElems + (((i64)slot * a.nkv + kvh) * a.maxCtx + start) * HD + c * 8;
    const u16* kb = a.kc + lo;
    const u16* vb = a.vc + lo;
    float m = NEG_INF, sum = 0.f, acc[8];
#pragma unroll
    for (int e = 0; e < 8; e++) acc[e] = 0.f;
    for (int jb = 0; jb < n; jb += G * P) {   // (the same trip count in every lane: the shuffles below take the whole warp)
        int j0 = jb + g;
        uint4 kv[P], vv[P];
#pragma unroll
        for (int u = 0; u < P; u++) {
            int j = j0 + u * G;
            bool ok = j < n;
            kv[u] = ok ? ld_cg_u4(kb + (i64)j * HD) : make_uint4(0, 0, 0, 0);
            vv[u] = ok ? ld_cg_u4(vb + (i64)j * HD) : make_uint4(0, 0, 0, 0);
        }
        float d[P];
#pragma unroll
        for (int u = 0; u < P; u++) {
            float t = dot8_lanes<TPP>(kv[u], q);   // (every lane: the shuffles take the whole warp)
            d[u] = j0 + u * G < n ? t * a.scale : NEG_INF;
        }
        if (j0 < n) {   // (uniform within the TPP threads of a position; position u = 0 is valid, so mn is finite)
            float mn = m;
#pragma unroll
            for (int u = 0; u < P; u++) mn = fmaxf(mn, d[u]);
            float sc = __expf(m - mn), w[P], ws = 0.f;
#pragma unroll
            for (int u = 0; u < P; u++) { w[u] = __expf(d[u] - mn); ws += w[u]; }
            sum = sum * sc + ws;
#pragma unroll
            for (int e = 0; e < 8; e++) acc[e] *= sc;
#pragma unroll
            for (int u = 0; u < P; u++) {
                float f[8];
                bf8_to_f(vv[u], f);
#pragma unroll
                for (int e = 0; e < 8; e++) acc[e] = fmaf(w[u], f[e], acc[e]);
            }
            m = mn;
        }
    }
    MK_ATT(2);
#pragma unroll
    for (int o = 16; o >= TPP; o >>= 1) {   // the warp's groups (lanes c, c + TPP, ... hold the same dimensions) into one
        float mo = __shfl_xor_sync(0xffffffffu, m, o), so2 = __shfl_xor_sync(0xffffffffu, sum, o);
        float M2 = fmaxf(m, mo);
        float s1 = m == NEG_INF ? 0.f : __expf(m - M2), s2 = mo == NEG_INF ? 0.f : __expf(mo - M2);
        sum = sum * s1 + so2 * s2;
#pragma unroll
        for (int e = 0; e < 8; e++) acc[e] = acc[e] * s1 + __shfl_xor_sync(0xffffffffu, acc[e], o) * s2;
        m = M2;
    }
    constexpr int GW = MK_NT / 32;   // (one partial per warp)
    int wg = threadIdx.x >> 5;
    if ((threadIdx.x & 31) < TPP) {
        if (c == 0) { gm[wg] = m; gl[wg] = sum; }
#pragma unroll
        for (int e = 0; e < 8; e++) gacc[wg * HD + c * 8 + e] = acc[e];
    }
    __syncthreads();
    MK_ATT(3);
    {   // (all threads: T = MK_NT / HD a dimension, each GW / T warps' partials, then a shuffle sum)
        constexpr int T = MK_NT / HD >= 1 ? MK_NT / HD : 1, GT = GW / T;
        int d = threadIdx.x / T, j = threadIdx.x % T;
        float M = NEG_INF;
#pragma unroll
        for (int k = 0; k < GW; k++) M = fmaxf(M, gm[k]);
        float tot = 0.f, v = 0.f;
        if (d < HD) {
#pragma unroll
            for (int k = j * GT; k < (j + 1) * GT; k++) {
                float w = gm[k] == NEG_INF ? 0.f : __expf(gm[k] - M);
                tot += w * gl[k];
                v += w * gacc[k * HD + d];
            }
        }
#pragma unroll
        for (int o = T / 2; o > 0; o >>= 1) {
            tot += __shfl_xor_sync(0xffffffffu, tot, o);
            v += __shfl_xor_sync(0xffffffffu, v, o);
        }
        if (sp) {
            float* pp = a.part + (i64)MK_BID * (HD + 2);
            if (d < HD && j == 0) pp[2 + d] = v;
            if (threadIdx.x == 0) { pp[0] = M; pp[1] = tot; }
        } else if (d < HD && j == 0) {
            u16 r = f2bf(v / tot);
            if (so) so[d] = bf2f(r);
            else a.attn[h * HD + d] = r;
        }
    }
    MK_ATT(4);
    __syncthreads();
    if (sp) {
        if (threadIdx.x == 0) {
            if (!MK_ATTN_XCHG || !(a.flags & MK_LIGHT_ARRIVE)) __threadfence();   // (MK_ATTN_XCHG: as the grid barrier's arrival: the release add alone orders the block's stores)
            asm volatile("red.release.gpu.global.add.u64 [%0], 1;" :: "l"(a.bar + 2 + h) : "memory");
            mk_wait(a.bar + 2 + h, sp->target, a.flags, "the attention partials of head", h);
        }
        __syncthreads();
        // every block of the head: the nsp partials (L2), in part order. The head's blocks are consecutive, so their
        // partials are one contiguous array of nsp (HD + 2) floats.
        const float* p0 = a.part + (i64)(MK_BID - sp->part) * (HD + 2);
#if MK_ATTN_XCHG
        int tot = sp->nsp * (HD + 2);
        unsigned dyn;
        asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(dyn));
        if (tot <= (int)(dyn / 4)) {
            // staged into shared memory with every load in flight at once (one L2 round trip; the loop below read them
            // one part after another: ~4 L2 round trips, the split's exchange ~4 us; session 15)
            for (int i0 = 0; i0 < tot; i0 += 4 * MK_NT) {
                float t[4];
#pragma unroll
                for (int u = 0; u < 4; u++) {
                    int i = i0 + u * MK_NT + (int)threadIdx.x;
                    t[u] = i < tot ? ld_cg(p0 + i) : 0.f;
                }
#pragma unroll
                for (int u = 0; u < 4; u++) {
                    int i = i0 + u * MK_NT + (int)threadIdx.x;
                    if (i < tot) sm[i] = t[u];
                }
            }
            __syncthreads();
            for (int d = threadIdx.x; d < HD; d += MK_NT) {
                float M = NEG_INF;
                for (int b = 0; b < sp->nsp; b++) M = fmaxf(M, sm[b * (HD + 2)]);
                float tt = 0.f, v = 0.f;
                for (int b = 0; b < sp->nsp; b++) {
                    const float* pb = sm + b * (HD + 2);
                    float mb = pb[0], w = mb == NEG_INF ? 0.f : __expf(mb - M);
                    tt += w * pb[1];
                    v += w * pb[2 + d];
                }
                so[d] = bf2f(f2bf(v / tt));
            }
            __syncthreads();
        } else
#endif
        {
            float M = NEG_INF;
            for (int b = 0; b < sp->nsp; b++) M = fmaxf(M, ld_cg(p0 + (i64)b * (HD + 2)));
            for (int d = threadIdx.x; d < HD; d += MK_NT) {
                float tot = 0.f, v = 0.f;
                for (int b = 0; b < sp->nsp; b++) {
                    const float* pb = p0 + (i64)b * (HD + 2);
                    float mb = ld_cg(pb), w = mb == NEG_INF ? 0.f : __expf(mb - M);
                    tot += w * ld_cg(pb + 1);
                    v += w * ld_cg(pb + 2 + d);
                }
                so[d] = bf2f(f2bf(v / tot));
            }
            __syncthreads();
        }
    }
    MK_ATT(5);
}

// MK_SPLIT_O: attention and the o projection in one phase. MK_GRID / nh blocks per head (4 on 132 SMs with 32
// heads) each compute the head's attention (the k/v reads repeat, they are small and in L2) and multiply it by their
// share of rows [r0, r1) of the head's 128 columns of W_o, adding into acco in fixed point; the sum joins x when the
// next phase stages its input (and for good in the down phase). One grid barrier and the staging of the attention
// output fewer per layer. A warp takes RPS = 32 / (HD / 8) rows per step (HD / 8 lanes a row, 16 bytes each), a batch
// is 8 consecutive steps in flight, warp w's batch bt steps (w + MK_W bt) 8 + u: so a batch's 8 RPS row sums are
// consecutive too and go to acco in one atomic instruction of 8 RPS lanes (one 128-byte line at head_dim 128), not 8
// instructions of RPS lanes (o part 13.0 -> 10.6 us per layer, same bits; bench/notes/cuda-engine.md session 5).
__device__ __forceinline__ int mk_o_step(int warp, int bt, int u) { return (warp + MK_W * bt) * 8 + u; }
template <int HD>
__device__ __forceinline__ void mk_o_load(uint4 (&wb)[8], const u16* __restrict__ Wo, int QD, int h, int r0, int r1, int bt) {
    constexpr int LPR = HD / 8, RPS = 32 / LPR;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
#pragma unroll
    for (int u = 0; u < 8; u++) {
        int row = r0 + mk_o_step(warp, bt, u) * RPS + lane / LPR;
        wb[u] = row < r1 ? ldg_stream((const uint4*)(Wo + (i64)row * QD + h * HD + (lane % LPR) * 8)) : make_uint4(0, 0, 0, 0);
    }
}
__device__ __forceinline__ void mk_o_part(const MkArgs& a, int& h, int& r0, int& r1) {
    int bph = MK_GRID / a.nh, part = MK_BID % bph, rp = (a.H + bph - 1) / bph;
    h = MK_BID / bph;
    r0 = min(a.H, part * rp);
    r1 = min(a.H, r0 + rp);
}
// wb: batch 0, loaded at the q/k/v barrier (mk_sync_with). (Measured and dropped, session 3 run 10: pulling the o rows into L2
// as attention starts instead: attention 4.4 -> 7.1 us, -1.3%. Session 6 run 8: the odd batches through a 4 KB
// cp.async slot per warp in shared memory, two batches in flight: -4.7%, every phase slower.)
template <int HD>
__device__ __forceinline__ void mk_o_split(uint4 (&wb)[8], const float* ho, const u16* __restrict__ Wo, int QD, int h, int r0, int r1,
                                           u64* acco, const u16* __restrict__ bo) {
    constexpr int LPR = HD / 8, RPS = 32 / LPR;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    float hv[8];
#pragma unroll
    for (int j = 0; j < 8; j++) hv[j] = ho[(lane % LPR) * 8 + j];
    int steps = (r1 - r0 + RPS - 1) / RPS;
    for (int bt = 0; mk_o_step(warp, bt, 0) < steps; bt++) {
        float d[8];
#pragma unroll
        for (int u = 0; u < 8; u++) d[u] = dot8_lanes<LPR>(wb[u], hv);
        // the next batch in flight before this one's atomic adds (they queue in the same memory pipe: o part 13.2 ->
        // 12.0 us per layer, bench/notes/cuda-engine.md session 5)
        if (mk_o_step(warp, bt + 1, 0) < steps) mk_o_load<HD>(wb, Wo, QD, h, r0, r1, bt + 1);
        // lane q < 8 RPS takes row q of the batch: step q / RPS, lane group q % RPS
        float v = 0.f;
#pragma unroll
        for (int u = 0; u < 8; u++) {
            float t = __shfl_sync(0xffffffffu, d[u], (lane % RPS) * LPR);
            if (lane / RPS == u) v = t;
        }
        int row = r0 + mk_o_step(warp, bt, 0) * RPS + lane;
        if (lane < 8 * RPS && row < r1)   // (a global reduction: a generic atomicAdd here compiled to ATOM with an address-space check)
            asm volatile("red.global.add.u64 [%0], %1;" :: "l"(acco + row), "l"(f2fix(v + (bo && h == 0 ? bf2f(bo[row]) : 0.f))) : "memory");
    }
}

// MK_FUSE_MLP: gate/up and down in one phase. Block b takes the slice [i0, i1) of the intermediate dimension (i0 =
// b I / grid): its warps compute the slice's act values (the gate/up rows 2i, 2i + 1) into shared memory, then the block
// multiplies its columns [i0, i1) of W_down (row-major [H][I], read as the whole 16-byte chunks pc0 .. pc0 + nch - 1
// around the slice, act zero outside it) by them and adds the H partial row sums to the residual X in fixed point. One
// grid barrier, one staging and one grid-wide tail fewer per layer, for 132 atomic adds per row. 16 lanes a row (nch <=
// 16), two rows a step, a batch = 8 steps = 16 consecutive rows, warp w takes batches w, w + MK_W, ...; a batch's 16 sums
// reach 16 lanes in 8 exchanges and go to X in one atomic instruction.
// (MK_DOWN_BLOCKED) The slices are whole 16-byte chunks and W_down comes from the per-block copy (MkLayer.wdownB): the
// block's columns as one contiguous row-major block, so a step's 16 lanes read one 208-224-byte row piece next to the
// previous row's instead of a piece of a 28 KB row (down part 28.3 -> 26.8 us per layer, harness, session 8).
struct MkSlice { int2 g; int pc0, nch, stride; i64 off; int rot; };   // rot: the down batches rotated (MK_DOWN_ROTATE, blocked only)
__device__ __forceinline__ MkSlice mk_mlp_slice(int H, int I, bool blocked) {
    if (blocked) {
        // whole 16-byte chunks per block; its columns of W_down stored as its own row-major [H][i1 - i0] block at H i0
        int c0 = (int)((i64)MK_BID * (I >> 3) / MK_GRID), c1 = (int)((i64)(MK_BID + 1) * (I >> 3) / MK_GRID);
        return {make_int2(c0 * 8, c1 * 8), c0, c1 - c0, (c1 - c0) * 8, (i64)H * c0 * 8, MK_DOWN_ROTATE};
    }
    int i0 = (int)((i64)MK_BID * I / MK_GRID), i1 = (int)((i64)(MK_BID + 1) * I / MK_GRID);
    return {make_int2(i0, i1), i0 >> 3, i1 > i0 ? ((i1 + 7) >> 3) - (i0 >> 3) : 0, I, (i64)(i0 >> 3) * 8, 0};
}
// Each multiprocessor's streaming time (one block of 512 threads per multiprocessor, all at once): block b reads its own
// `per` 16-byte chunks of src with 8 loads in flight per thread (as the GEMV batches); out[2 b] = %smid, out[2 b + 1] =
// nanoseconds. (The persistent kernel's choice of multiprocessors that sit out, MK_VIRTUAL_BLOCKS.)
extern "C" __global__ void __launch_bounds__(512, 1) sm_rate(const uint4* __restrict__ src, long long per, unsigned long long* out) {
    unsigned s;
    asm volatile("mov.u32 %0, %%smid;" : "=r"(s));
    const uint4* p = src + (long long)blockIdx.x * per;
    __syncthreads();
    unsigned long long t0 = globaltimer();
    uint4 acc = make_uint4(0, 0, 0, 0);
    for (long long i = threadIdx.x; i < per; i += 8 * 512) {
        uint4 v[8];
#pragma unroll
        for (int u = 0; u < 8; u++) v[u] = i + u * 512 < per ? ldg_stream(p + i + u * 512) : make_uint4(0, 0, 0, 0);
#pragma unroll
        for (int u = 0; u < 8; u++) { acc.x ^= v[u].x; acc.y ^= v[u].y; acc.z ^= v[u].z; acc.w ^= v[u].w; }
    }
    __syncthreads();
    if (threadIdx.x == 0) { out[2 * blockIdx.x] = s; out[2 * blockIdx.x + 1] = globaltimer() - t0; }
    if ((acc.x ^ acc.y ^ acc.z ^ acc.w) == 0x12345678u) out[0] = ~0ull;
}
// W_down [H][I] -> the persistent kernel's per-block copy for `grid` blocks (MK_DOWN_BLOCKED; launch grid x any threads):
// block b's chunks [c0, c1) (c0 = b (I / 8) / grid, as mk_mlp_slice) as a row-major [H][8 (c1 - c0)] block at H 8 c0.
extern "C" __global__ void repack_down_blocked(const u16* __restrict__ src, u16* __restrict__ dst, int H, int I, int grid) {
    int C = I >> 3, c0 = (int)((i64)blockIdx.x * C / grid), n = (int)((i64)(blockIdx.x + 1) * C / grid) - c0;
    const uint4* s = (const uint4*)src;
    uint4* d = (uint4*)dst + (i64)H * c0;
    for (i64 i = threadIdx.x; i < (i64)H * n; i += blockDim.x) {
        int r = (int)(i / n), k = (int)(i - (i64)r * n);
        d[i] = s[(i64)r * C + c0 + k];
    }
}
__device__ __forceinline__ bool mk_fuse_mlp_ok(int flags, int H, int I) {
    return (flags & MK_FUSE_MLP) && H % 16 == 0 && (I + (int)MK_GRID - 1) / (int)MK_GRID <= 120;
}
// The row batch a block's bt-th down batch takes (rot, MK_DOWN_ROTATE with W_down blocked: from its own start; else bt).
__device__ __forceinline__ int mk_down_batch(int bt, int nb, int rot) {
    if (!rot) return bt;
    int r = bt + (int)((i64)MK_BID * nb / MK_GRID);
    return r < nb ? r : r - nb;
}
__device__ __forceinline__ void mk_down_load(uint4 (&wb)[8], const u16* __restrict__ Wd, int H, const MkSlice& s, int bt) {
    int lane = threadIdx.x & 31, k = lane & 15;
    bt = mk_down_batch(bt, H >> 4, s.rot);
    const u16* base = Wd + s.off + (i64)(bt * 16 + (lane >> 4)) * s.stride + k * 8;
#pragma unroll
    for (int u = 0; u < 8; u++) wb[u] = k < s.nch ? ldg_stream((const uint4*)(base + (i64)(2 * u) * s.stride)) : make_uint4(0, 0, 0, 0);
}
// wb: the warp's first batch (bt = warp), loaded when its gate/up groups were done. bias: the last block's only.
__device__ __forceinline__ void mk_down_slice(uint4 (&wb)[8], const u16* __restrict__ Wd, const u16* __restrict__ bias, int H,
                                              const MkSlice& s, const float* actS, u64* X) {
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, k = lane & 15, nb = H >> 4;
    if (s.nch == 0) return;
    float av[8];
#pragma unroll
    for (int e = 0; e < 8; e++) av[e] = k < s.nch ? actS[k * 8 + e] : 0.f;
    for (int bt = warp; bt < nb; bt += MK_W) {
        float d[8];
#pragma unroll
        for (int u = 0; u < 8; u++) {
            float f[8];
            bf8_to_f(wb[u], f);
            float t = 0.f;
#pragma unroll
            for (int e = 0; e < 8; e++) t = fmaf(f[e], av[e], t);
            d[u] = t;
        }
        if (bt + MK_W < nb) mk_down_load(wb, Wd, H, s, bt + MK_W);   // (in flight during the sums and the atomic adds)
        // the 8 values summed over each 16-lane half: after the exchanges with lanes ^8, ^4, ^2 a lane keeps one value,
        // index u = (lane >> 1) & 7, and ^1 completes it; even lanes then hold row 2u + (lane >> 4) of the batch
#pragma unroll
        for (int cnt = 8, w = 8; cnt > 1; cnt >>= 1, w >>= 1) {
            bool hi = (lane & w) != 0;
#pragma unroll
            for (int v = 0; v < cnt / 2; v++) {
                float keep = hi ? d[v + cnt / 2] : d[v], send = hi ? d[v] : d[v + cnt / 2];
                d[v] = keep + __shfl_xor_sync(0xffffffffu, send, w);
            }
        }
        float v = d[0] + __shfl_xor_sync(0xffffffffu, d[0], 1);
        if ((lane & 1) == 0) {
            int row = mk_down_batch(bt, nb, s.rot) * 16 + 2 * ((lane >> 1) & 7) + (lane >> 4);
            asm volatile("red.global.add.u64 [%0], %1;" :: "l"(X + row), "l"(f2fix(v + (bias ? bf2f(bias[row]) : 0.f))) : "memory");
        }
    }
}

#ifdef MK_SMID_TRACE   // (harness only: each block's multiprocessor)
__device__ unsigned mk_smid[1024];
#endif
#if MK_ARGS_SMEM >= 2 && __CUDA_ARCH__ >= 800
// (the lanes that pulled the next layer's pointers: their copies done; the barrier's __syncthreads after this shows them to the block)
#define MK_LAYER_WAIT() do { if (threadIdx.x >= MK_NT - LW) asm volatile("cp.async.wait_all;" ::: "memory"); } while (0)
#else
#define MK_LAYER_WAIT() do { } while (0)
#endif
template <int HD>
__device__ __forceinline__ void mk_decode(const MkArgs& aG) {
#ifdef MK_VIRTUAL_BLOCKS
    if (threadIdx.x == 0) {
        unsigned s_;
        asm volatile("mov.u32 %0, %%smid;" : "=r"(s_));
        mk_vb_s = mk_smvid[s_];
        mk_vg_s = mk_vgrid_g;
    }
    __syncthreads();
    if (mk_vb_s < 0) return;   // (this multiprocessor sits out: every barrier counts mkvg() arrivals)
#endif
#ifdef MK_SMID_TRACE
    if (threadIdx.x == 0) { unsigned s_; asm volatile("mov.u32 %0, %%smid;" : "=r"(s_)); mk_smid[MK_BID] = s_; }
#endif
#if MK_ARGS_SMEM
    __shared__ __align__(16) MkArgs sA;
    if (threadIdx.x < sizeof(MkArgs) / 4) ((u32*)&sA)[threadIdx.x] = ((const u32*)&aG)[threadIdx.x];
#if MK_ARGS_SMEM >= 2
    constexpr int LW = sizeof(MkLayer) / 8;   // (8-byte words)
    __shared__ __align__(16) MkLayer sL[2];   // layer l's pointers at sL[l & 1]
    if (threadIdx.x < LW) ((u64*)&sL[0])[threadIdx.x] = ((const u64*)aG.layers)[threadIdx.x];
#endif
    __syncthreads();
    const MkArgs& a = sA;
#else
    const MkArgs& a = aG;
#endif
    extern __shared__ __align__(16) float mk_smem[];   // the staged input / the attention scratch
    __shared__ float red[33];
    __shared__ float bv[MK_W];
    __shared__ int bi[MK_W];
    __shared__ float ho[HD];   // (MK_SPLIT_O) the head's attention output
    __shared__ float actS[16 * 8];   // (MK_FUSE_MLP) the act values of the block's slice, zero around it
    u64 gen = 0, gen2 = 0;   // (thread 0) the arrival counts when this launch began
    int tk = 0;
    if (threadIdx.x == 0) {
        gen = ld_acquire_u64(a.bar) / MK_GRID * MK_GRID;
        gen2 = ld_acquire_u64(a.bar + 1) / MK_GRID * MK_GRID;
    }
    int tok = ld_i(a.tokens), p = ld_i(a.pos), slot = ld_i(a.slot);
    int H = a.H, I = a.I, QD = a.nh * HD, QKV = (a.nh + 2 * a.nkv) * HD;
    bool early = (a.flags & MK_EARLY) != 0;
    // (one-pass attention only; every head needs a block)
    bool split = (a.flags & MK_SPLIT_O) && (a.flags & MK_ONE_PASS_ATTN) && (int)MK_GRID >= a.nh;
    int oh = 0, or0 = 0, or1 = 0;
    if (split) mk_o_part(a, oh, or0, or1);
    bool oBlock = split && (int)MK_BID < a.nh * ((int)MK_GRID / a.nh);
    // long contexts: the head's blocks split its positions (from MK_ATTN_SPLIT_MIN on; every layer of the step alike)
    MkAttnSplit asp{0, 0, 0};
    {
        int bph = (int)MK_GRID / max(1, a.nh), start = a.window > 0 ? max(0, p - a.window + 1) : 0;
        if (oBlock && bph > 1 && (p - start + 1 >= MK_ATTN_SPLIT_MIN || (a.flags & MK_SPLIT_ATTN))) {
            asp.part = MK_BID % bph;
            asp.nsp = bph;
            if (threadIdx.x == 0) asp.target = ld_acquire_u64(a.bar + 2 + oh) / bph * bph;   // (+ bph per layer below)
        }
    }
    bool fuse = mk_fuse_mlp_ok(a.flags, H, I);
    // (MK_DOWN_BLOCKED) W_down from the per-block copy: each block's columns contiguous, not 218-byte pieces of 28 KB
    // rows (the down part 28.3 -> 26.8 us per layer, bench/notes/cuda-engine.md session 8)
    bool dBlk = fuse && (a.flags & MK_DOWN_BLOCKED) && a.layers[0].wdownB != nullptr && I % 8 == 0;
    MkSlice ms = mk_mlp_slice(H, I, dBlk);
    const int2* gsl = fuse ? &ms.g : nullptr;   // (the gate/up groups: the block's slice, else the whole grid's)
    float bestV = NEG_INF;
    int bestI = 0x7fffffff;
    uint4 wb[8];
#if MK_GROUP_QKV
    MkQkvMap qm = mk_qkv_map(a, HD, split);
    if (qm.on && threadIdx.x == 0) {   // (bases as gen's: fewer than a group's / the grid's arrivals can precede this read)
        qm.base = ld_acquire_u64(a.bar + qm.cnt) / qm.bpg * qm.bpg;
        qm.sbase = ld_acquire_u64(a.bar + qm.stg) / MK_GRID * MK_GRID;
    }
#else
    MkQkvMap qm{};   // (the default pair order)
#endif
    mk_preload_qkv_sk(wb, a.layers[0].wqkv, QKV, H, qm);
    uint4 gpre = mk_gamma(a.layers[0].attnNorm, H, a.flags);
    for (int l = 0; l < a.L; l++) {
#if MK_ARGS_SMEM >= 2
        const MkLayer& w = sL[l & 1];
        if (l + 1 < a.L && threadIdx.x >= MK_NT - LW) {   // (the last warp's lanes: layer l + 1's pointers, in flight through the layer)
            int t = threadIdx.x - (MK_NT - LW);
#if __CUDA_ARCH__ >= 800
            asm volatile("cp.async.ca.shared.global [%0], [%1], 8;" :: "r"(smem_u32((u64*)&sL[(l + 1) & 1] + t)), "l"((const u64*)(a.layers + l + 1) + t) : "memory");
            asm volatile("cp.async.commit_group;" ::: "memory");
#else
            ((u64*)&sL[(l + 1) & 1])[t] = ((const u64*)(a.layers + l + 1))[t];
#endif
        }
        const MkLayer& wn = sL[(l + 1) & 1];   // (read only after the o -> gate/up barrier, which follows the copy's wait)
#else
        const MkLayer& w = a.layers[l];
        const MkLayer& wn = a.layers[l + 1];
#endif
        // qkv
        mk_stage_norm(a.acco, l == 0 ? a.emb + (i64)tok * H : nullptr, l == 0 && MK_BID == 0 ? a.acco : nullptr, w.attnNorm, gpre, early,
                      mk_smem, H, red);
        mk_bt(a.btrace, 2 * tk);
#if MK_GROUP_QKV
        // (the o part's adds to X must not overtake any block's staging of X: every block counts itself staged)
        if (qm.on && threadIdx.x == 0) asm volatile("red.release.gpu.global.add.u64 [%0], 1;" :: "l"(a.bar + qm.stg) : "memory");
#endif
        if ((a.flags & MK_PREFETCH_KV) && (int)MK_BID < a.nh) mk_prefetch_kv<HD>(a, l, MK_BID, p, slot);
        mk_gemv_qkv_sk(wb, w.wqkv, w.bqkv, QKV, H, mk_smem, a, l, p, slot, mk_rs(red, H, a.eps), qm);
        if (split) {
#if MK_GROUP_QKV
            if (qm.on) {   // the group's arrival, the o part's first batch, then the wait for the group (and the stagings)
                __syncthreads();
                if (threadIdx.x == 0) {
                    u64 now = globaltimer();
                    a.btrace[(i64)(2 * tk + 1) * MK_GRID + MK_BID] = now;
                    if (MK_BID == 0) a.trace[2 * tk] = now;
                    if (!(a.flags & MK_LIGHT_ARRIVE)) __threadfence();
                    asm volatile("red.release.gpu.global.add.u64 [%0], 1;" :: "l"(a.bar + qm.cnt) : "memory");
                }
                if (oBlock) mk_o_load<HD>(wb, w.wo, QD, oh, or0, or1, 0);
                if (threadIdx.x == 0) {
                    mk_wait(a.bar + qm.cnt, qm.base + (u64)(l + 1) * qm.bpg, a.flags, "the q/k/v rows of kv group", qm.g);
                    mk_wait(a.bar + qm.stg, qm.sbase + (u64)(l + 1) * MK_GRID, a.flags, "the q/k/v stagings of layer", l);
                    if (MK_BID == 0) a.trace[2 * tk + 1] = globaltimer();
                    gen -= MK_GRID;   // (no grid arrivals: the later barriers' targets move back one grid)
                }
                tk++;
                __syncthreads();
            } else
#endif
            mk_sync_with(a.bar, gen, a.trace, tk, a.flags, a.btrace, [&] { if (oBlock) mk_o_load<HD>(wb, w.wo, QD, oh, or0, or1, 0); });
            MK_ATT(8);
            if (oBlock) {   // (block 0 always is one)
                if (threadIdx.x == 0) asp.target += asp.nsp;
                mk_attn_one_pass<HD>(a, l, oh, p, slot, mk_smem, ho, asp.nsp ? &asp : nullptr);   // (ends with __syncthreads)
                if (threadIdx.x == 0 && MK_BID == 0) a.trace[2 * tk] = a.trace[2 * tk + 1] = globaltimer();
                mk_bt(a.btrace, 2 * tk);
                mk_bt(a.btrace, 2 * tk + 1);
                mk_bt(a.btrace, 2 * tk + 2);   // (the o part: its input is the head's attention output)
                mk_o_split<HD>(wb, ho, w.wo, QD, oh, or0, or1, a.acco, w.bo);
                MK_ATT(6);
            }
            // (the trace's attention "barrier": block 0's end of attention; no arrivals, so the barrier count's base
            // moves back one grid for the later barriers' targets)
            tk++;
            if (threadIdx.x == 0) gen -= MK_GRID;
            MK_LAYER_WAIT();
            mk_sync_with(a.bar, gen, a.trace, tk, a.flags, a.btrace, [&] {
                mk_preload<2>(wb, w.wgu, 2 * I, H, gsl);
                gpre = mk_gamma(w.mlpNorm, H, a.flags);
            });
        } else {
            mk_sync(a.bar, gen, a.trace, tk, a.flags, a.btrace);
            // attention, one block per head; the other blocks start on the o weights meanwhile (splitting each head's
            // positions over four blocks instead was slower: the o weights then came from memory, run 9)
            if ((int)MK_BID < a.nh) {
                for (int h = MK_BID; h < a.nh; h += MK_GRID) {
                    if (a.flags & MK_ONE_PASS_ATTN) mk_attn_one_pass<HD>(a, l, h, p, slot, mk_smem);
                    else attn_token_impl<HD, MK_NT>(a.qkv, a.kc + (i64)l * a.layerElems, a.vc + (i64)l * a.layerElems, a.attn, a.slot, a.pos,
                                                    a.nh, a.nkv, a.maxCtx, a.window, a.scale, 0, h, mk_smem);
                    __syncthreads();
                }
            } else if (a.flags & MK_PREFETCH_O) {
                i64 lines = (i64)H * QD * 2 / 128;
                int helpers = MK_GRID - a.nh;
                for (i64 i = (i64)(MK_BID - a.nh) * MK_NT + threadIdx.x; i < lines; i += (i64)helpers * MK_NT)
                    asm volatile("prefetch.global.L2 [%0];" :: "l"((const char*)w.wo + i * 128));
            }
            mk_sync_with(a.bar, gen, a.trace, tk, a.flags, a.btrace, [&] { mk_preload<1>(wb, w.wo, H, QD); });
            // o
            mk_stage_bf16(a.attn, (u16*)mk_smem, QD);
            mk_gemv<1, EPI_ADD, 0>(wb, w.wo, w.bo, H, QD, mk_smem, a, l, p, slot, bestV, bestI, 1.f);
            MK_LAYER_WAIT();
            mk_sync_with(a.bar, gen, a.trace, tk, a.flags, a.btrace, [&] {
                mk_preload<2>(wb, w.wgu, 2 * I, H, gsl);
                gpre = mk_gamma(w.mlpNorm, H, a.flags);
            });
        }
        // gate/up
        if (fuse && threadIdx.x < 16 * 8) actS[threadIdx.x] = 0.f;   // (ordered before the act writes by the staging's __syncthreads)
        mk_stage_norm(a.acco, nullptr, nullptr, w.mlpNorm, gpre, early, mk_smem, H, red);
        mk_bt(a.btrace, 2 * tk);
        if (fuse) {
            // the down part's adds to X must not overtake any block's staging of X: every block counts itself staged
            if (threadIdx.x == 0) asm volatile("red.release.gpu.global.add.u64 [%0], 1;" :: "l"(a.bar + 1) : "memory");
            mk_gemv<2, EPI_SILU, 1>(wb, w.wgu, w.bgu, 2 * I, H, mk_smem, a, l, p, slot, bestV, bestI, mk_rs(red, H, a.eps), gsl, actS,
                                    ms.pc0 * 8);
            int warp = threadIdx.x >> 5;
            if (warp * 16 < H) mk_down_load(wb, dBlk ? w.wdownB : w.wdown, H, ms, warp);   // (the warp's first down batch, in flight while the block finishes)
            // (in practice passed at once: the stagings ended ~50 us ago)
            if (threadIdx.x == 0) mk_wait(a.bar + 1, gen2 + (u64)(l + 1) * MK_GRID, a.flags, "the MLP stagings of layer", l);
            __syncthreads();
            // (the trace's gate/up "barrier": the block's end of gate/up; no arrivals, as for attention above)
            mk_bt(a.btrace, 2 * tk + 1);
            if (threadIdx.x == 0 && MK_BID == 0) a.trace[2 * tk] = a.trace[2 * tk + 1] = globaltimer();
            tk++;
            if (threadIdx.x == 0) gen -= MK_GRID;
            mk_bt(a.btrace, 2 * tk);
            mk_down_slice(wb, dBlk ? w.wdownB : w.wdown, MK_BID == MK_GRID - 1 ? w.bdown : nullptr, H, ms, actS, a.acco);
        } else {
            mk_gemv<2, EPI_SILU, 1>(wb, w.wgu, w.bgu, 2 * I, H, mk_smem, a, l, p, slot, bestV, bestI, mk_rs(red, H, a.eps));
            mk_sync_with(a.bar, gen, a.trace, tk, a.flags, a.btrace, [&] { mk_preload<1>(wb, w.wdown, H, I); });
            // down
            mk_stage_bf16(a.act, (u16*)mk_smem, I);
            mk_bt(a.btrace, 2 * tk);
            mk_gemv<1, EPI_ADD, 0>(wb, w.wdown, w.bdown, H, I, mk_smem, a, l, p, slot, bestV, bestI, 1.f);
        }
        mk_sync_with(a.bar, gen, a.trace, tk, a.flags, a.btrace, [&] {
            if (l + 1 < a.L) {
                mk_preload_qkv_sk(wb, wn.wqkv, QKV, H, qm);
                gpre = mk_gamma(wn.attnNorm, H, a.flags);
            } else {
                mk_preload<1>(wb, a.out, a.V, H);
                gpre = mk_gamma(a.finalNorm, H, a.flags);
            }
        });
    }
    // final norm + lm_head + this block's best
    mk_stage_norm(a.acco, nullptr, nullptr, a.finalNorm, gpre, early, mk_smem, H, red);
    mk_bt(a.btrace, 2 * tk);
    mk_gemv<1, EPI_F32, 1>(wb, a.out, nullptr, a.V, H, mk_smem, a, 0, p, slot, bestV, bestI, mk_rs(red, H, a.eps));
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (lane == 0) { bv[warp] = bestV; bi[warp] = bestI; }
    __syncthreads();
    if (threadIdx.x == 0) {
        float v = bv[0];
        int ix = bi[0];
        for (int k = 1; k < MK_W; k++)
            if (bv[k] > v || (bv[k] == v && bi[k] < ix)) { v = bv[k]; ix = bi[k]; }
        a.candV[MK_BID] = v;
        a.candI[MK_BID] = ix;
    }
    mk_sync(a.bar, gen, a.trace, tk, a.flags, a.btrace);
    if (MK_BID == 0 && warp == 0) {
        float v = NEG_INF;
        int ix = 0x7fffffff;
        for (int k = lane; k < (int)MK_GRID; k += 32) {
            float cv = ld_cg(a.candV + k);
            int ci = ld_cg_i(a.candI + k);
            if (cv > v || (cv == v && ci < ix)) { v = cv; ix = ci; }
        }
        warp_argmax(v, ix);
        if (lane == 0) {
            if (ix == 0x7fffffff) ix = 0;
            a.tokens[0] = ix;
            a.pos[0] = p + 1;
            int c = ld_i(a.count);
            a.outIds[c] = ix;
            a.count[0] = c + 1;
        }
    }
}

extern "C" __global__ void __launch_bounds__(MK_NT, 1) decode_b1_hd128(const MkArgs* a) { mk_decode<128>(*a); }
extern "C" __global__ void __launch_bounds__(MK_NT, 1) decode_b1_hd64(const MkArgs* a) { mk_decode<64>(*a); }
