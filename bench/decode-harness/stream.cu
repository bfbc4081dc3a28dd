// Weight-streaming micro-benchmark for the persistent decode kernel's GEMV phases: one block of NT threads per SM, warps
// striding over row groups of R rows exactly as mk_gemv does (batches of 8 x 16 bytes per lane), a dot product with a
// float vector in shared memory, D batches in registers per warp (D = 1: the kernel's scheme). Prints TB/s per shape.
//   nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -o stream bench/decode-harness/stream.cu
#include <cstdio>
#include <vector>
#include <algorithm>
#include <type_traits>
#include "micro.cuh"

// the warp's batch j: group grp0 + (j / nb) stride, chunks (j % nb) 32 U + lane + 32 u, rows r of the group
template <int R>
__device__ __forceinline__ void load_batch(uint4 (&w)[8], const u16* W, int N, int K, int grp0, int stride, int nb, int j) {
    constexpr int U = 8 / R;
    int lane = threadIdx.x & 31, gi = j / nb, kb = j - gi * nb, row0 = (grp0 + gi * stride) * R, c0 = lane + kb * 32 * U;
#pragma unroll
    for (int u = 0; u < U; u++)
#pragma unroll
        for (int r = 0; r < R; r++)
            w[r * U + u] = ldg_stream((const uint4*)(W + (i64)min(row0 + r, N - 1) * K + (i64)(c0 + 32 * u) * 8));
}

template <int R, int D, int NT>
__global__ void __launch_bounds__(NT, 1) stream(const u16* W, int N, int K, float* out, int aw) {
    extern __shared__ float xs[];
    constexpr int U = 8 / R;
    for (int i = threadIdx.x; i < K; i += NT) xs[i] = 1.f + i * 1e-6f;
    __syncthreads();
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (warp >= aw) return;
    int groups = N / R, grp0 = blockIdx.x * aw + warp, stride = gridDim.x * aw, chunks = K / 8, nb = chunks / (32 * U);
    int total = grp0 < groups ? (groups - grp0 + stride - 1) / stride * nb : 0;
    uint4 buf[D][8];
#pragma unroll
    for (int s = 0; s < D; s++)
        if (s < total) load_batch<R>(buf[s], W, N, K, grp0, stride, nb, s);
    float acc[R], sink = 0.f;
#pragma unroll
    for (int r = 0; r < R; r++) acc[r] = 0.f;
    for (int j0 = 0; j0 < total; j0 += D) {
#pragma unroll
        for (int s = 0; s < D; s++) {
            int j = j0 + s;
            if (j >= total) break;
            int kb = j % nb, c0 = lane + kb * 32 * U;
#pragma unroll
            for (int u = 0; u < U; u++) {
                const float4* x4 = (const float4*)(xs + (c0 + 32 * u) * 8);
                float4 a = x4[0], b = x4[1];
                float xv[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
#pragma unroll
                for (int r = 0; r < R; r++) {
                    float wf[8];
                    bf8(buf[s][r * U + u], wf);
#pragma unroll
                    for (int e = 0; e < 8; e++) acc[r] = fmaf(wf[e], xv[e], acc[r]);
                }
            }
            if (j + D < total) load_batch<R>(buf[s], W, N, K, grp0, stride, nb, j + D);
            if (kb == nb - 1) {
#pragma unroll
                for (int r = 0; r < R; r++) {
                    float v = acc[r];
                    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
                    sink += v;
                    acc[r] = 0.f;
                }
            }
        }
    }
    if (lane == 0) out[blockIdx.x * 32 + warp] = sink;
}

int main() {
    cudaDeviceProp prop;
    cudaGetDeviceProperties(&prop, 0);
    int grid = prop.multiProcessorCount;
    size_t maxBytes = (size_t)128256 * 4096 * 2;
    u16* W;
    float* out;
    cudaMalloc(&W, maxBytes);
    cudaMalloc(&out, 4 * 1024 * 32);
    cudaMemset(W, 0x3c, maxBytes);
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0); cudaEventCreate(&e1);
    struct Shape { const char* name; int N, K, R; };
    Shape shapes[] = {{"qkv", 6144, 4096, 2}, {"o", 4096, 4096, 1}, {"gate/up", 28672, 4096, 2}, {"gate/up R1", 28672, 4096, 1},
                      {"down", 4096, 14336, 1}, {"lm_head", 128256, 4096, 1}, {"lm_head R2", 128256, 4096, 2}};
    auto run = [&](auto kern, const Shape& s, int nt, int aw) {
        int smem = s.K * 4;
        cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
        std::vector<float> ts;
        for (int r = 0; r < 15; r++) {
            cudaEventRecord(e0);
            kern<<<grid, nt, smem>>>(W, s.N, s.K, out, aw);
            cudaEventRecord(e1);
            cudaEventSynchronize(e1);
            float ms;
            cudaEventElapsedTime(&ms, e0, e1);
            ts.push_back(ms);
        }
        std::sort(ts.begin(), ts.end());
        double us = ts[ts.size() / 2] * 1e3, bytes = 2.0 * s.N * s.K;
        printf("  %-11s %6.1f MB  NT %3d aw %2d: %7.2f us  %.3f TB/s\n", s.name, bytes / 1e6, nt, aw, us, bytes / us / 1e6);
    };
    auto sweep = [&](auto r, const Shape& s) {   // (D = 1, 2, 3 at 512 threads; 2 and 4 at 256)
        constexpr int R = decltype(r)::value;
        printf("%s: R = %d, D = 1/2/3 (512 threads), 2/4 (256)\n", s.name, R);
        run(stream<R, 1, 512>, s, 512, 16);
        run(stream<R, 2, 512>, s, 512, 16);
        run(stream<R, 3, 512>, s, 512, 16);
        run(stream<R, 2, 256>, s, 256, 8);
        run(stream<R, 4, 256>, s, 256, 8);
    };
    for (const Shape& s : shapes) {
        if (s.R == 2) sweep(std::integral_constant<int, 2>(), s);
        else sweep(std::integral_constant<int, 1>(), s);
    }
    cudaError_t e = cudaGetLastError();
    printf("%s\n", cudaGetErrorString(e));
    return 0;
}
