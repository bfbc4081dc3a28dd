// Causal attention with grouped-query heads, one block per (query, head) and batch entry.
// q, out: [B, nq, Hq, D]; k, v: [B, maxT, Hkv, D]. With lengths == 0 (prefill) sequence b has nq tokens and
// query t attends keys 0..t; with lengths (decode, nq = 1) query attends keys 0..lengths[b]-1.
// Dynamic shared memory: (D + 33 + keys) floats. A straightforward reference-speed kernel; the decode path of
// the inference engine replaces it with a fused, split-K kernel.
#include "common.cuh"

template <int DT> __device__ void attention_impl(const void* q, const void* k, const void* v, void* out, const int* lengths,
                                                 int nq, int hq, int hkv, int d, int maxT, float scale) {
    extern __shared__ float sm[];
    float* qs = sm;
    float* red = sm + d;
    float* sc = sm + d + 33;
    int h = blockIdx.x % hq, qi = blockIdx.x / hq, b = blockIdx.y;
    int len = lengths ? lengths[b] : nq;
    int nkeys = len - nq + qi + 1;
    int kh = h / (hq / hkv);
    i64 qoff = (((i64)b * nq + qi) * hq + h) * d;
    for (int e = threadIdx.x; e < d; e += blockDim.x) qs[e] = ldf<DT>(q, qoff + e);
    __syncthreads();
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    for (int j = warp; j < nkeys; j += nw) {
        i64 ko = (((i64)b * maxT + j) * hkv + kh) * d;
        float acc = 0.f;
        for (int e = lane; e < d; e += 32) acc += qs[e] * ldf<DT>(k, ko + e);
        acc = warp_sum(acc);
        if (lane == 0) sc[j] = acc * scale;
    }
    __syncthreads();
    float m = NEG_INF;
    for (int j = threadIdx.x; j < nkeys; j += blockDim.x) m = fmaxf(m, sc[j]);
    m = block_reduce(m, red, true);
    float s = 0.f;
    for (int j = threadIdx.x; j < nkeys; j += blockDim.x) { float e = expf(sc[j] - m); sc[j] = e; s += e; }
    s = block_reduce(s, red, false);
    float inv = 1.f / s;
    for (int e = threadIdx.x; e < d; e += blockDim.x) {
        float acc = 0.f;
        for (int j = 0; j < nkeys; j++) acc += sc[j] * ldf<DT>(v, (((i64)b * maxT + j) * hkv + kh) * d + e);
        stf<DT>(out, qoff + e, acc * inv);
    }
}
#define ATTN(name, DT) extern "C" __global__ void attention_##name(const void* q, const void* k, const void* v, void* out, const int* lengths, int nq, int hq, int hkv, int d, int maxT, float scale) { attention_impl<DT>(q, k, v, out, lengths, nq, hq, hkv, d, maxT, scale); }
FOR_FLOAT_TYPES(ATTN)

// ---------------------------------------------------------------------------------------------------------------
// Decode at the bandwidth limit (split-K "flash decoding" with grouped-query heads):
// attn_decode_split: grid (Hkv, B, S), 128 threads. Each block reads its kv head's keys and values in chunk s once
// for all G = Hq/Hkv query heads of the group; warps take keys in turn, each lane R = D/32 dimensions; an online
// softmax per warp and head, merged across warps; partial (max, sum, acc[D]) per (b, h, s) go to a float workspace.
// attn_decode_combine: grid (Hq, B), D threads: merges the S partials and writes out.
#define DEC_WARPS 4
#define DEC_MAXG 8

template <int DT, int R>
__device__ void attn_decode_split_impl(const void* q, const void* k, const void* v, const int* lengths, float* part,
                                       int hq, int hkv, int maxT, int chunk, float scale) {
    constexpr int D = 32 * R;
    __shared__ float qs[DEC_MAXG][D];
    __shared__ float wm[DEC_WARPS][DEC_MAXG], wl[DEC_WARPS][DEC_MAXG];
    __shared__ float wacc[DEC_WARPS][DEC_MAXG][D];
    int kh = blockIdx.x, b = blockIdx.y, s = blockIdx.z, S = gridDim.z;
    int G = hq / hkv;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int len = lengths[b];
    int j0 = s * chunk, j1 = min(len, j0 + chunk);
    for (int i = threadIdx.x; i < G * D; i += blockDim.x) {
        int g = i / D, e = i % D;
        qs[g][e] = ldf<DT>(q, ((i64)b * hq + kh * G + g) * D + e) * scale;
    }
    __syncthreads();
    float m[DEC_MAXG], l[DEC_MAXG], acc[DEC_MAXG][R];
#pragma unroll
    for (int g = 0; g < DEC_MAXG; g++) {
        m[g] = NEG_INF; l[g] = 0.f;
#pragma unroll
        for (int r = 0; r < R; r++) acc[g][r] = 0.f;
    }
    for (int j = j0 + warp; j < j1; j += DEC_WARPS) {
        i64 base = (((i64)b * maxT + j) * hkv + kh) * D + lane * R;
        float kv[R], vv[R];
#pragma unroll
        for (int r = 0; r < R; r++) { kv[r] = ldf<DT>(k, base + r); vv[r] = ldf<DT>(v, base + r); }
#pragma unroll
        for (int g = 0; g < DEC_MAXG; g++) {
            if (g < G) {
                float d = 0.f;
#pragma unroll
                for (int r = 0; r < R; r++) d += qs[g][lane * R + r] * kv[r];
                d = warp_sum(d);
                float mn = fmaxf(m[g], d);
                float corr = expf(m[g] - mn), p = expf(d - mn);
                l[g] = l[g] * corr + p;
#pragma unroll
                for (int r = 0; r < R; r++) acc[g][r] = acc[g][r] * corr + p * vv[r];
                m[g] = mn;
            }
        }
    }
#pragma unroll
    for (int g = 0; g < DEC_MAXG; g++) {
        if (g < G) {
            if (lane == 0) { wm[warp][g] = m[g]; wl[warp][g] = l[g]; }
#pragma unroll
            for (int r = 0; r < R; r++) wacc[warp][g][lane * R + r] = acc[g][r];
        }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < G * D; i += blockDim.x) {
        int g = i / D, e = i % D;
        float M = NEG_INF;
        for (int w = 0; w < DEC_WARPS; w++) M = fmaxf(M, wm[w][g]);
        float L = 0.f, A = 0.f;
        if (M != NEG_INF) {
            for (int w = 0; w < DEC_WARPS; w++) {
                float f = expf(wm[w][g] - M);
                L += wl[w][g] * f;
                A += wacc[w][g][e] * f;
            }
        }
        // workspace layout: per (b, h, s): [max, sum, acc[D]]
        float* p = part + (((i64)b * hq + kh * G + g) * S + s) * (D + 2);
        if (e == 0) { p[0] = M; p[1] = L; }
        p[2 + e] = A;
    }
}
#define DEC_SPLIT(name, DT, R) extern "C" __global__ void __launch_bounds__(128) attn_decode_split_##name##_r##R(const void* q, const void* k, const void* v, const int* lengths, float* part, int hq, int hkv, int maxT, int chunk, float scale) { attn_decode_split_impl<DT, R>(q, k, v, lengths, part, hq, hkv, maxT, chunk, scale); }
#define DEC_SPLIT_ALL(name, DT) DEC_SPLIT(name, DT, 2) DEC_SPLIT(name, DT, 4) DEC_SPLIT(name, DT, 8)
FOR_FLOAT_TYPES(DEC_SPLIT_ALL)

template <int DT> __device__ void attn_decode_combine_impl(const float* part, void* out, int hq, int d, int S) {
    int h = blockIdx.x, b = blockIdx.y;
    const float* p = part + ((i64)b * hq + h) * S * (d + 2);
    float M = NEG_INF;
    for (int s = 0; s < S; s++) M = fmaxf(M, p[s * (d + 2)]);
    for (int e = threadIdx.x; e < d; e += blockDim.x) {
        float L = 0.f, A = 0.f;
        for (int s = 0; s < S; s++) {
            const float* ps = p + s * (d + 2);
            if (ps[0] == NEG_INF) continue;
            float f = expf(ps[0] - M);
            L += ps[1] * f;
            A += ps[2 + e] * f;
        }
        stf<DT>(out, ((i64)b * hq + h) * d + e, A / L);
    }
}
#define DEC_COMBINE(name, DT) extern "C" __global__ void attn_decode_combine_##name(const float* part, void* out, int hq, int d, int S) { attn_decode_combine_impl<DT>(part, out, hq, d, S); }
FOR_FLOAT_TYPES(DEC_COMBINE)
