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
