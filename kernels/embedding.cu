// Embedding gather: out[i, :] = table[ids[i], :], row_bytes per row (any dtype); ids out of range give zeros.
#include "common.cuh"

extern "C" __global__ void embedding_gather(const u8* table, const int* ids, u8* out, int vocab, i64 row_bytes) {
    int id = ids[blockIdx.x];
    u8* dst = out + (i64)blockIdx.x * row_bytes;
    bool ok = id >= 0 && id < vocab;
    const u8* src = table + (i64)(ok ? id : 0) * row_bytes;
    if ((row_bytes & 15) == 0) {
        i64 n16 = row_bytes >> 4;
        uint4 zero;
        zero.x = zero.y = zero.z = zero.w = 0u;
        for (i64 j = threadIdx.x; j < n16; j += blockDim.x)
            ((uint4*)dst)[j] = ok ? ((const uint4*)src)[j] : zero;
    } else {
        for (i64 j = threadIdx.x; j < row_bytes; j += blockDim.x) dst[j] = ok ? src[j] : 0;
    }
}
