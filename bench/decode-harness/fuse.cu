// Micro-benchmark: can the MLP's gate/up and down GEMVs run as one phase of the persistent decode kernel? Each block
// takes a contiguous slice of the intermediate dimension (~109 of 14336), computes its act values (gate/up rows), then
// multiplies them by its slice of W_down's columns and adds the 4096 partial row sums into a 32.32 fixed-point vector
// with 64-bit integer atomics (exact, so the same bits in any order). Against: the kernel's two phases as two launches
// (row groups striding over the grid). Also: the same with no atomics, with W_down transposed (contiguous slices, the
// atomics all at the end), and atomics alone.
//   nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -o fuse bench/decode-harness/fuse.cu
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <vector>
#include <algorithm>
#include <cooperative_groups.h>
namespace cg = cooperative_groups;
#include "micro.cuh"
typedef unsigned long long u64;

#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e_)); exit(1); } } while (0)
constexpr int NT = 512, NW = NT / 32, H = 4096, I = 14336;

__device__ __forceinline__ float bf2f(u16 v) { return __uint_as_float((unsigned)v << 16); }
__device__ __forceinline__ u16 f2bf(float f) { unsigned u = __float_as_uint(f); u += 0x7fffu + ((u >> 16) & 1u); return (u16)(u >> 16); }
__device__ __forceinline__ float silu(float g) { return g / (1.f + __expf(-g)); }
__device__ __forceinline__ u64 f2fix(float v) { return (u64)__float2ll_rn(v * 4294967296.f); }
__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ void red_u64(u64* p, u64 v) { asm volatile("red.global.add.u64 [%0], %1;" :: "l"(p), "l"(v) : "memory"); }

__global__ void fill(u16* p, i64 n, u64 seed, float scale) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {
        u64 z = (u64)i * 0x9E3779B97F4A7C15ull + seed;
        z ^= z >> 31; z *= 0xBF58476D1CE4E5B9ull; z ^= z >> 29;
        p[i] = f2bf(scale * ((float)(z >> 40) / 16777216.f * 2.f - 1.f));
    }
}
__global__ void transpose(const u16* a, u16* t, int R, int C) {   // t[c][r] = a[r][c]
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (i64)R * C; i += (i64)gridDim.x * blockDim.x) {
        int r = (int)(i / C), c = (int)(i % C);
        t[(i64)c * R + r] = a[i];
    }
}

__device__ __forceinline__ void stage_x(const float* x, float* xs) {
    for (int i = threadIdx.x; i < H; i += NT) xs[i] = x[i];
    __syncthreads();
}
// one group (gate row 2g, up row 2g + 1 of the interleaved W_gu): 4 batches of 2 rows x 4 chunks per lane
__device__ __forceinline__ float gu_group(const u16* Wgu, const float* xs, int g) {
    int lane = threadIdx.x & 31;
    float a0 = 0.f, a1 = 0.f;
    for (int kb = 0; kb < 4; kb++) {
        uint4 w[8];
#pragma unroll
        for (int u = 0; u < 4; u++)
#pragma unroll
            for (int r = 0; r < 2; r++) w[r * 4 + u] = ldg_stream((const uint4*)(Wgu + (i64)(2 * g + r) * H + (lane + kb * 128 + 32 * u) * 8));
#pragma unroll
        for (int u = 0; u < 4; u++) {
            const float* xv = xs + (lane + kb * 128 + 32 * u) * 8;
            float f0[8], f1[8];
            bf8(w[u], f0);
            bf8(w[4 + u], f1);
#pragma unroll
            for (int e = 0; e < 8; e++) { a0 = fmaf(f0[e], xv[e], a0); a1 = fmaf(f1[e], xv[e], a1); }
        }
    }
    a0 = warp_sum(a0);
    a1 = warp_sum(a1);
    return bf2f(f2bf(silu(a0) * a1));
}

// baseline 1: gate/up as the kernel does it (groups striding over the grid's warps), act to global
__global__ void __launch_bounds__(NT, 1) gu_rows(const u16* Wgu, const float* x, u16* act) {
    __shared__ float xs[H];
    stage_x(x, xs);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    for (int g = blockIdx.x * NW + warp; g < I; g += gridDim.x * NW) {
        float v = gu_group(Wgu, xs, g);
        if (lane == 0) act[g] = f2bf(v);
    }
}
// baseline 2: down, one row per warp group (R = 1, 8 chunks per lane a batch), y = row sums
__global__ void __launch_bounds__(NT, 1) down_rows(const u16* Wd, const u16* act, float* y) {
    extern __shared__ float as[];
    for (int i = threadIdx.x; i < I; i += NT) as[i] = bf2f(act[i]);
    __syncthreads();
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    for (int row = blockIdx.x * NW + warp; row < H; row += gridDim.x * NW) {
        float acc = 0.f;
        for (int kb = 0; kb < I / 8 / 256; kb++) {
            uint4 w[8];
#pragma unroll
            for (int u = 0; u < 8; u++) w[u] = ldg_stream((const uint4*)(Wd + (i64)row * I + (lane + kb * 256 + 32 * u) * 8));
#pragma unroll
            for (int u = 0; u < 8; u++) {
                float f[8];
                bf8(w[u], f);
                const float* av = as + (lane + kb * 256 + 32 * u) * 8;
#pragma unroll
                for (int e = 0; e < 8; e++) acc = fmaf(f[e], av[e], acc);
            }
        }
        acc = warp_sum(acc);
        if (lane == 0) y[row] = acc;
    }
}

#define F_ATOM 1      // the partial row sums into X (else only kept live)
#define F_STAGGER 2   // block b starts its down rows at batch (b * 97) % 256
#define F_NO_GU 4     // skip gate/up (act = constant): the down part alone
#define F_NO_DOWN 8   // skip down: the gate/up part alone
#define F_NEXT 16     // the warp's next down batch loaded before this one's sums and atomics

// fused: block b owns intermediate [i0, i1); W_down row-major [H][I], columns [i0, i1) read as whole 16-byte chunks
// ch0..ch1-1 (act zero outside the slice), 16 lanes a row, two rows a step, 8 steps (16 consecutive rows) a batch
__global__ void __launch_bounds__(NT, 1) fused(const u16* Wgu, const u16* Wd, const float* x, u64* X, int mode, float* sink) {
    __shared__ float xs[H];
    __shared__ float actS[16 * 8];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int i0 = (int)((i64)blockIdx.x * I / gridDim.x), i1 = (int)((i64)(blockIdx.x + 1) * I / gridDim.x);
    int ch0 = i0 >> 3, ch1 = (i1 + 7) >> 3, nch = ch1 - ch0;
    stage_x(x, xs);
    if (threadIdx.x < 128) actS[threadIdx.x] = 0.f;
    __syncthreads();
    if (!(mode & F_NO_GU)) {
        for (int g = i0 + warp; g < i1; g += NW) {
            float v = gu_group(Wgu, xs, g);
            if (lane == 0) actS[g - ch0 * 8] = v;
        }
    } else if (threadIdx.x < i1 - i0) {
        actS[i0 - ch0 * 8 + threadIdx.x] = 0.01f;
    }
    __syncthreads();
    if (mode & F_NO_DOWN) return;
    int h = lane >> 4, k = lane & 15;
    bool act = k < nch;
    float av[8];
#pragma unroll
    for (int e = 0; e < 8; e++) av[e] = act ? actS[k * 8 + e] : 0.f;
    const u16* wbase = Wd + (i64)(ch0 + k) * 8;
    int off = (mode & F_STAGGER) ? (blockIdx.x * 97) % 256 : 0;
    uint4 w[8];
    auto load = [&](int j) {
        int rb = (((warp + NW * j) + off) & 255) * 16;
#pragma unroll
        for (int u = 0; u < 8; u++) w[u] = act ? ldg_stream((const uint4*)(wbase + (i64)(rb + 2 * u + h) * I)) : make_uint4(0, 0, 0, 0);
    };
    float keep = 0.f;
    load(0);
    for (int j = 0; j < 256 / NW; j++) {
        int rb = (((warp + NW * j) + off) & 255) * 16;
        float d[8];
#pragma unroll
        for (int u = 0; u < 8; u++) {
            float f[8];
            bf8(w[u], f);
            float s = 0.f;
#pragma unroll
            for (int e = 0; e < 8; e++) s = fmaf(f[e], av[e], s);
#pragma unroll
            for (int o = 8; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
            d[u] = s;
        }
        if ((mode & F_NEXT) && j + 1 < 256 / NW) load(j + 1);
        float v = 0.f;
#pragma unroll
        for (int u = 0; u < 8; u++) {
            float t = __shfl_sync(0xffffffffu, d[u], (lane & 1) * 16);
            if ((lane >> 1) == u) v = t;
        }
        if (lane < 16) {
            if (mode & F_ATOM) red_u64(X + rb + lane, f2fix(v));
            else keep += v;
        }
        if (!(mode & F_NEXT) && j + 1 < 256 / NW) load(j + 1);
    }
    if (keep == 12345.f) *sink = keep;
}

// fused with W_down transposed ([I][H]): the block's slice is contiguous (its rows i0..i1 of WdT); thread t owns columns
// 8t..8t+7 and walks the slice's rows, 8 rows in flight; its 8 sums go to X at the end (4096 atomics per block at once)
__global__ void __launch_bounds__(NT, 1) fused_t(const u16* Wgu, const u16* WdT, const float* x, u64* X, int mode, float* sink) {
    __shared__ float xs[H];
    __shared__ float actS[128];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int i0 = (int)((i64)blockIdx.x * I / gridDim.x), i1 = (int)((i64)(blockIdx.x + 1) * I / gridDim.x), n = i1 - i0;
    stage_x(x, xs);
    if (!(mode & F_NO_GU)) {
        for (int g = i0 + warp; g < i1; g += NW) {
            float v = gu_group(Wgu, xs, g);
            if (lane == 0) actS[g - i0] = v;
        }
    } else if (threadIdx.x < n) {
        actS[threadIdx.x] = 0.01f;
    }
    __syncthreads();
    if (mode & F_NO_DOWN) return;
    float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    const u16* base = WdT + (i64)i0 * H + threadIdx.x * 8;
    for (int j = 0; j < n; j += 8) {
        uint4 w[8];
#pragma unroll
        for (int u = 0; u < 8; u++) w[u] = j + u < n ? ldg_stream((const uint4*)(base + (i64)(j + u) * H)) : make_uint4(0, 0, 0, 0);
#pragma unroll
        for (int u = 0; u < 8; u++) {
            float f[8], a = j + u < n ? actS[j + u] : 0.f;
            bf8(w[u], f);
#pragma unroll
            for (int e = 0; e < 8; e++) acc[e] = fmaf(f[e], a, acc[e]);
        }
    }
    if (mode & F_ATOM) {
#pragma unroll
        for (int e = 0; e < 8; e++) red_u64(X + threadIdx.x * 8 + e, f2fix(acc[e]));
    } else {
        float s = 0.f;
        for (int e = 0; e < 8; e++) s += acc[e];
        if (s == 12345.f) *sink = s;
    }
}


// RB values per lane (one per row) summed over the warp with log2(32) exchange steps: afterwards lane q * (32 / RB)
// holds row q's sum (the first RB / 2 ... 1 exchanges halve the values each lane keeps, the rest are plain xor sums)
template <int RB>
__device__ __forceinline__ float multi_reduce(float (&d)[RB]) {
    int lane = threadIdx.x & 31;
    int w = 16;
#pragma unroll
    for (int cnt = RB; cnt > 1; cnt >>= 1, w >>= 1) {
        bool hi = (lane & w) != 0;
#pragma unroll
        for (int v = 0; v < cnt / 2; v++) {
            float keep = hi ? d[v + cnt / 2] : d[v], send = hi ? d[v] : d[v + cnt / 2];
            d[v] = keep + __shfl_xor_sync(0xffffffffu, send, w);
        }
    }
    float e = d[0];
    for (; w > 0; w >>= 1) e += __shfl_xor_sync(0xffffffffu, e, w);
    return e;
}

// fused over a cluster of S blocks (2D): each block computes the act values of its own slice and writes them into every
// block of the cluster (distributed shared memory); after a cluster barrier, block rank r multiplies rows
// [r H / S, (r + 1) H / S) of W_down by the cluster's slice (S times the columns, 1 / S of the rows): S times fewer atomics.
// M chunks of 16 bytes per lane a row (M = 1: <= 32 chunks = 256 columns a row segment), RB = 8 / M rows a batch.
template <int S>
__device__ __forceinline__ void fused_c(const u16* Wgu, const u16* Wd, const float* x, u64* X, int mode, float* sink) {
    constexpr int M = S <= 2 ? 1 : 2, RB = 8 / M;
    __shared__ float xs[H];
    __shared__ float actS[32 * M * 8];
    cg::cluster_group cl = cg::this_cluster();
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, rank = (int)cl.block_rank(), c0b = blockIdx.x - rank;
    int i0 = (int)((i64)blockIdx.x * I / gridDim.x), i1 = (int)((i64)(blockIdx.x + 1) * I / gridDim.x);
    int P0 = (int)((i64)c0b * I / gridDim.x), P1 = (int)((i64)(c0b + S) * I / gridDim.x);
    int pc0 = P0 >> 3, nch = ((P1 + 7) >> 3) - pc0;
    stage_x(x, xs);
    for (int i = threadIdx.x; i < 32 * M * 8; i += NT) actS[i] = 0.f;
    cl.sync();
    if (!(mode & F_NO_GU)) {
        for (int g = i0 + warp; g < i1; g += NW) {
            float v = gu_group(Wgu, xs, g);
            if (lane < S) cl.map_shared_rank(actS, lane)[g - pc0 * 8] = v;
        }
    } else {
        for (int g = i0 + threadIdx.x; g < i1; g += NT)
            for (int r = 0; r < S; r++) cl.map_shared_rank(actS, r)[g - pc0 * 8] = 0.01f;
    }
    cl.sync();
    if (mode & F_NO_DOWN) return;
    float av[M][8];
#pragma unroll
    for (int m = 0; m < M; m++)
#pragma unroll
        for (int e = 0; e < 8; e++) av[m][e] = lane + 32 * m < nch ? actS[(lane + 32 * m) * 8 + e] : 0.f;
    int rows0 = rank * (H / S);
    uint4 w[8];
    auto load = [&](int j) {
        int rb = rows0 + (warp + NW * j) * RB;
#pragma unroll
        for (int u = 0; u < 8; u++) {
            int k = lane + 32 * (u % M);
            w[u] = k < nch ? ldg_stream((const uint4*)(Wd + (i64)(rb + u / M) * I + (i64)(pc0 + k) * 8)) : make_uint4(0, 0, 0, 0);
        }
    };
    float keep = 0.f;
    constexpr int NB = H / S / RB / NW;
    load(0);
    for (int j = 0; j < NB; j++) {
        int rb = rows0 + (warp + NW * j) * RB;
        float d[RB];
#pragma unroll
        for (int q = 0; q < RB; q++) d[q] = 0.f;
#pragma unroll
        for (int u = 0; u < 8; u++) {
            float f[8];
            bf8(w[u], f);
            float s = d[u / M];
#pragma unroll
            for (int e = 0; e < 8; e++) s = fmaf(f[e], av[u % M][e], s);
            d[u / M] = s;
        }
        if ((mode & F_NEXT) && j + 1 < NB) load(j + 1);
        float v = multi_reduce<RB>(d);
        if ((lane & (32 / RB - 1)) == 0) {
            if (mode & F_ATOM) red_u64(X + rb + lane / (32 / RB), f2fix(v));
            else keep += v;
        }
        if (!(mode & F_NEXT) && j + 1 < NB) load(j + 1);
    }
    if (keep == 12345.f) *sink = keep;
}
template <int S>
__global__ void __cluster_dims__(S, 1, 1) __launch_bounds__(NT, 1) fused_cl(const u16* Wgu, const u16* Wd, const float* x, u64* X, int mode, float* sink) {
    fused_c<S>(Wgu, Wd, x, X, mode, sink);
}

// atomics alone: every block adds 4096 values into X as 256 16-lane instructions (staggered or not)
__global__ void __launch_bounds__(NT, 1) atom_only(u64* X, int mode) {
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int off = (mode & F_STAGGER) ? (blockIdx.x * 97) % 256 : 0;
    for (int j = 0; j < 256 / NW; j++) {
        int rb = (((warp + NW * j) + off) & 255) * 16;
        if (lane < 16) red_u64(X + rb + lane, (u64)(lane + 1));
    }
}

__global__ void empty() {}

int main() {
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    int grid = prop.multiProcessorCount;
    u16 *Wgu, *Wd, *WdT, *act;
    float *x, *y, *sink;
    u64* X;
    CK(cudaMalloc(&Wgu, (size_t)2 * I * H * 2));
    CK(cudaMalloc(&Wd, (size_t)H * I * 2));
    CK(cudaMalloc(&WdT, (size_t)H * I * 2));
    CK(cudaMalloc(&act, I * 2));
    CK(cudaMalloc(&x, H * 4));
    CK(cudaMalloc(&y, H * 4));
    CK(cudaMalloc(&sink, 4));
    CK(cudaMalloc(&X, H * 8));
    fill<<<1024, 256>>>(Wgu, (i64)2 * I * H, 1, 0.03f);
    fill<<<1024, 256>>>(Wd, (i64)H * I, 2, 0.03f);
    transpose<<<1024, 256>>>(Wd, WdT, H, I);
    {
        std::vector<float> hx(H);
        for (int i = 0; i < H; i++) hx[i] = sinf(i * 0.37f);
        CK(cudaMemcpy(x, hx.data(), H * 4, cudaMemcpyHostToDevice));
    }
    CK(cudaFuncSetAttribute(down_rows, cudaFuncAttributeMaxDynamicSharedMemorySize, I * 4));
    CK(cudaDeviceSynchronize());
    // correctness: fused (and fused_t) against the two baseline kernels
    gu_rows<<<grid, NT>>>(Wgu, x, act);
    down_rows<<<grid, NT, I * 4>>>(Wd, act, y);
    std::vector<float> hy(H);
    std::vector<u64> hX(H);
    CK(cudaMemcpy(hy.data(), y, H * 4, cudaMemcpyDeviceToHost));
    auto check = [&](const char* name, auto launch) {
        CK(cudaMemset(X, 0, H * 8));
        launch();
        CK(cudaGetLastError());
        CK(cudaMemcpy(hX.data(), X, H * 8, cudaMemcpyDeviceToHost));
        double md = 0, mx = 0;
        for (int i = 0; i < H; i++) {
            double v = (double)(long long)hX[i] / 4294967296.0;
            md = std::max(md, fabs(v - hy[i]));
            mx = std::max(mx, (double)fabs(hy[i]));
        }
        printf("check %s: max |fused - rows| = %.3g (max |y| %.3g)\n", name, md, mx);
    };
    check("fused", [&] { fused<<<grid, NT>>>(Wgu, Wd, x, X, F_ATOM | F_STAGGER | F_NEXT, sink); });
    check("fused_t", [&] { fused_t<<<grid, NT>>>(Wgu, WdT, x, X, F_ATOM, sink); });
    // clusters must all be resident at once (fused_c's cluster barriers): a grid of at most that many clusters
    int maxCl[5] = {0, 0, 0, 0, 0};
    for (int S : {2, 4}) {
        cudaLaunchConfig_t cfg = {};
        cfg.gridDim = dim3(grid); cfg.blockDim = dim3(NT);
        int nc = -1;
        cudaError_t e = S == 2 ? cudaOccupancyMaxActiveClusters(&nc, fused_cl<2>, &cfg) : cudaOccupancyMaxActiveClusters(&nc, fused_cl<4>, &cfg);
        printf("cluster %d: max active clusters %d (%s); grid %d needs %d\n", S, nc, cudaGetErrorString(e), grid, grid / S);
        maxCl[S] = nc;
    }
    int g2 = std::min(grid / 2, maxCl[2]) * 2, g4 = std::min(grid / 4, maxCl[4]) * 4;   // (run 3's cluster-4 figures used grid 132 with 30 resident clusters: serialised)
    check("cluster 2", [&] { fused_cl<2><<<g2, NT>>>(Wgu, Wd, x, X, F_ATOM | F_NEXT, sink); });
    check("cluster 4", [&] { fused_cl<4><<<g4, NT>>>(Wgu, Wd, x, X, F_ATOM | F_NEXT, sink); });
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0); cudaEventCreate(&e1);
    auto time = [&](const char* name, double bytes, auto launch) {
        std::vector<float> ts;
        for (int r = 0; r < 25; r++) {
            cudaEventRecord(e0);
            launch();
            cudaEventRecord(e1);
            cudaEventSynchronize(e1);
            float ms;
            cudaEventElapsedTime(&ms, e0, e1);
            if (r >= 3) ts.push_back(ms);
        }
        std::sort(ts.begin(), ts.end());
        double us = ts[ts.size() / 2] * 1e3;
        if (bytes > 0) printf("  %-40s %8.2f us  %6.1f MB  %.3f TB/s  (at 4.36 TB/s: %.1f us)\n", name, us, bytes / 1e6, bytes / us / 1e6, bytes / 4.36e6);
        else printf("  %-40s %8.2f us\n", name, us);
        return us;
    };
    double bGU = 2.0 * 2 * I * H, bD = 2.0 * H * I;
    double tg = time("gate/up rows (kernel's scheme)", bGU, [&] { gu_rows<<<grid, NT>>>(Wgu, x, act); });
    double td = time("down rows (kernel's scheme)", bD, [&] { down_rows<<<grid, NT, I * 4>>>(Wd, act, y); });
    time("gate/up rows + down rows (2 launches)", bGU + bD, [&] { gu_rows<<<grid, NT>>>(Wgu, x, act); down_rows<<<grid, NT, I * 4>>>(Wd, act, y); });
    printf("  (sum of the two alone: %.2f us)\n", tg + td);
    int modes[] = {F_ATOM | F_STAGGER | F_NEXT, F_ATOM | F_STAGGER, F_ATOM | F_NEXT, F_STAGGER | F_NEXT, F_NEXT,
                   F_ATOM | F_STAGGER | F_NEXT | F_NO_GU, F_STAGGER | F_NEXT | F_NO_GU, F_NEXT | F_NO_GU, F_NO_DOWN};
    for (int m : modes) {
        char name[96];
        snprintf(name, sizeof name, "fused%s%s%s%s%s", m & F_ATOM ? " atom" : " no-atom", m & F_STAGGER ? " stagger" : "", m & F_NEXT ? " next" : "",
                 m & F_NO_GU ? " down-only" : "", m & F_NO_DOWN ? " gate/up-only" : "");
        double b = (m & F_NO_GU ? 0 : bGU) + (m & F_NO_DOWN ? 0 : bD);
        time(name, b, [&] { fused<<<grid, NT>>>(Wgu, Wd, x, X, m, sink); });
    }
    for (int m : {F_ATOM, 0, F_ATOM | F_NO_GU, F_NO_GU}) {
        char name[96];
        snprintf(name, sizeof name, "fused_t%s%s", m & F_ATOM ? " atom" : " no-atom", m & F_NO_GU ? " down-only" : "");
        time(name, (m & F_NO_GU ? 0 : bGU) + bD, [&] { fused_t<<<grid, NT>>>(Wgu, WdT, x, X, m, sink); });
    }

    for (int m : {F_ATOM | F_NEXT, F_ATOM, F_NEXT, F_ATOM | F_NEXT | F_NO_GU, F_NEXT | F_NO_GU}) {
        char name[96];
        double b = (m & F_NO_GU ? 0 : bGU) + bD;
        snprintf(name, sizeof name, "cluster 2%s%s%s (grid %d)", m & F_ATOM ? " atom" : " no-atom", m & F_NEXT ? " next" : "", m & F_NO_GU ? " down-only" : "", g2);
        time(name, b, [&] { fused_cl<2><<<g2, NT>>>(Wgu, Wd, x, X, m, sink); });
        snprintf(name, sizeof name, "cluster 4%s%s%s (grid %d)", m & F_ATOM ? " atom" : " no-atom", m & F_NEXT ? " next" : "", m & F_NO_GU ? " down-only" : "", g4);
        time(name, b, [&] { fused_cl<4><<<g4, NT>>>(Wgu, Wd, x, X, m, sink); });
    }
    time("fused atom next (grid 128)", bGU + bD, [&] { fused<<<g4, NT>>>(Wgu, Wd, x, X, F_ATOM | F_NEXT, sink); });
    time("atomics alone, 540k u64, staggered", 0, [&] { atom_only<<<grid, NT>>>(X, F_STAGGER); });
    time("atomics alone, 540k u64, same order", 0, [&] { atom_only<<<grid, NT>>>(X, 0); });
    time("empty launch", 0, [&] { empty<<<grid, NT>>>(); });
    printf("%s\n", cudaGetErrorString(cudaDeviceSynchronize()));
    return 0;
}
