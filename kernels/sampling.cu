// Top-k / top-p sampling, one block (1024 threads) per row, with the threshold rule of
// IComputeBackend.SampleTopKTopP: keep logits >= the k-th largest, then probabilities >= the largest threshold
// whose kept mass reaches top_p; pick the first kept index (ascending) where the running mass exceeds u * mass.
#include "common.cuh"

__device__ __forceinline__ unsigned order_key(float x) {
    unsigned u = __float_as_uint(x);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

template <int DT> __device__ void sample_impl(const void* logits, const float* uniforms, int* out, int n, float inv_t, int top_k, float top_p) {
    __shared__ float red[33];
    __shared__ float chunk_prefix[1024];
    __shared__ int result;
    i64 base = (i64)blockIdx.x * n;
    int tid = threadIdx.x, nt = blockDim.x;
    // top-k threshold as an order key: the largest key t with count(key >= t) >= k
    unsigned kkey = 0;
    if (top_k > 0 && top_k < n) {
        for (int bit = 31; bit >= 0; bit--) {
            unsigned cand = kkey | (1u << bit);
            float cnt = 0.f;
            for (int i = tid; i < n; i += nt) cnt += order_key(ldf<DT>(logits, base + i) * inv_t) >= cand ? 1.f : 0.f;
            cnt = block_reduce(cnt, red, false);
            if (cnt >= (float)top_k) kkey = cand;
        }
    }
    float m = NEG_INF;
    for (int i = tid; i < n; i += nt) m = fmaxf(m, ldf<DT>(logits, base + i) * inv_t);
    m = block_reduce(m, red, true);
    float z = 0.f;
    for (int i = tid; i < n; i += nt) { float x = ldf<DT>(logits, base + i) * inv_t; if (order_key(x) >= kkey) z += expf(x - m); }
    z = block_reduce(z, red, false);
    // top-p threshold on the probability bits (positive floats order like their bits)
    unsigned pbits = 0;
    if (top_p < 1.f) {
        float target = top_p * z;
        for (int bit = 30; bit >= 0; bit--) {
            unsigned cand = pbits | (1u << bit);
            float s = 0.f;
            for (int i = tid; i < n; i += nt) {
                float x = ldf<DT>(logits, base + i) * inv_t;
                float p = expf(x - m);
                if (order_key(x) >= kkey && __float_as_uint(p) >= cand) s += p;
            }
            s = block_reduce(s, red, false);
            if (s >= target) pbits = cand;
        }
        z = 0.f;
        for (int i = tid; i < n; i += nt) {
            float x = ldf<DT>(logits, base + i) * inv_t;
            float p = expf(x - m);
            if (order_key(x) >= kkey && __float_as_uint(p) >= pbits) z += p;
        }
        z = block_reduce(z, red, false);
    }
    // pick: contiguous chunks per thread, prefix sums of chunk masses, the crossing chunk walks its elements
    int chunk = (n + nt - 1) / nt;
    int lo = tid * chunk, hi = min(n, lo + chunk);
    float cs = 0.f;
    int last_kept = -1;
    for (int i = lo; i < hi; i++) {
        float x = ldf<DT>(logits, base + i) * inv_t;
        float p = expf(x - m);
        if (order_key(x) >= kkey && __float_as_uint(p) >= pbits) { cs += p; last_kept = i; }
    }
    chunk_prefix[tid] = cs;
    if (tid == 0) result = 0x7fffffff;
    __syncthreads();
    if (tid == 0) { float run = 0.f; for (int t = 0; t < nt; t++) { float c = chunk_prefix[t]; chunk_prefix[t] = run; run += c; } }
    __syncthreads();
    float goal = uniforms[blockIdx.x] * z;
    float run = chunk_prefix[tid];
    if (cs > 0.f && run <= goal && goal < run + cs) {
        for (int i = lo; i < hi; i++) {
            float x = ldf<DT>(logits, base + i) * inv_t;
            float p = expf(x - m);
            if (order_key(x) >= kkey && __float_as_uint(p) >= pbits) {
                run += p;
                if (run > goal || i == last_kept) { atomicMin(&result, i); break; }
            }
        }
    }
    __syncthreads();
    if (result == 0x7fffffff) {
        // rounding put the goal past the end: the last kept index
        float lk = block_reduce((float)last_kept, red, true);
        if (tid == 0) out[blockIdx.x] = (int)lk;
    } else if (tid == 0) out[blockIdx.x] = result;
}
#define SAMPLE(name, DT) extern "C" __global__ void sample_##name(const void* logits, const float* uniforms, int* out, int n, float inv_t, int top_k, float top_p) { sample_impl<DT>(logits, uniforms, out, n, inv_t, top_k, top_p); }
FOR_FLOAT_TYPES(SAMPLE)
