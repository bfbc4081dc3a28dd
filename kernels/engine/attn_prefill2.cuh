// SMEM(HD) = (128 + 4 * 64) * (HD + 8) * 2    (bytes: HD 64 -> 55296, HD 128 -> 104448)
// ---------------------------------------------------------------------------------------------------------------
// Prefill attention, 128 query rows per block (FlashAttention-2 layout). Same math and inputs as attn_prefill_impl
// above (mma.sync m16n8k16 bf16, float32 accumulate, online softmax in base 2, causal, optional sliding window):
//   qkv row t (t < Tq) holds the query at position q0 + t, q of head h at + h*HD; k/v of kv head kvh = h / (nh/nkv) at
//   kc/vc + ((slot*nkv + kvh)*maxCtx + position)*HD, positions 0..q0+Tq-1 valid; out row t at out + t*nh*HD + h*HD.
// Contract with the host: grid (ceil(Tq/128), nh, 1), block 128 (4 warps), dynamic shared memory SMEM(HD) above:
//   [Q tile 128 x (HD+8)] [stage 0: K 64 x (HD+8) | V 64 x (HD+8)] [stage 1: K | V]   (bf16, rows padded by 8 elements
//   so that the 8 row addresses of every ldmatrix land in 8 different 16-byte bank groups).
// Why this layout rather than attn_prefill_impl's 64 rows x 4 warps x 16 rows:
// - each warp owns 32 query rows = two m16 tiles, so every K or V B-fragment read by ldmatrix feeds two mma: per 64-key
//   tile a warp does 80 ldmatrix.x4 (16 of Q, 32 of K, 32 of V) for 256 mma (HD 128), against 64 for 128 before;
// - two independent accumulator sets per B fragment double the mma chains in flight per warp;
// - the Q fragments no longer live in registers (they would cost 2 x HD/16 x 4 of them on top of the 2 x HD/8 x 4 O
//   accumulators and the 2 x 8 x 4 scores): Q stays in shared memory, read by ldmatrix.x4 at each k-step. It is scaled
//   once there by scale * log2 e and rounded to bf16, exactly as attn_prefill_impl rounds its register copy, so the
//   scores are bit-identical and exp2 is used.
// - K/V tiles of 64 keys are double-buffered with cp.async (the next tile in flight while this one is used); keys past
//   the block's last query are zero-filled, tiles entirely after it are never loaded, and with a window the loop starts
//   at the first tile the block's first row can see.
// - a warp skips the whole computation of a tile none of its rows can see (the last diagonal tile for the first warps,
//   early tiles outside the window); only tiles crossing the warp's diagonal (or its window edge) pay the per-element
//   mask. Skipping is exact: a fully masked tile leaves m, l and O unchanged.
// - query tiles in reverse order (blockIdx.x 0 takes the last, longest one) so the short ones fill the last wave.
// Arithmetic against attn_prefill_impl (both kernels run in a CPU emulation of ldmatrix / mma / cp.async: 17 of 5.5M
// bf16 outputs differed, by one unit in the last place):
// - the row sum l is kept per lane and summed over the 4 lanes of a quad once at the end (the rescaling factors are the
//   same in the 4 lanes, so it is the same sum in another order);
// - P, Q and O are packed to bf16 by cvt.rn.bf16x2.f32: round to nearest even, the same bits as f2bf for non-NaN input,
//   one instruction for two values where f2bf's integer rounding costs ~8 per value (HD 128: 2797 SASS instructions in
//   all instead of 5502);
// - exp2 is ex2.approx.ftz.f32 (one MUFU.EX2; exp2f adds a fix-up for subnormal results): equal except that results
//   below 2^-126 become 0.
// Registers (NVRTC + ptxas 11.8, sm_90): HD 128 uses 255 with ~60 B of spills (the four row sums, stored and reloaded
// once per tile, and a few loop invariants: ~14 local accesses per tile of 256 mma), HD 64 212 and none. ptxas fills the
// registers by hoisting ldmatrix loads; 32-key compute steps (BC = 32) do not remove the spill (80 B).
// Rows >= Tq: Q zero-filled, computed, never written.

__device__ __forceinline__ void ap2_ldsm_x4(u32* r, u32 addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}
__device__ __forceinline__ void ap2_ldsm_x4_t(u32* r, u32 addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}
// pack_bf2 on the conversion unit: round to nearest even like f2bf (the same bits for every non-NaN input), one cvt for
// two values. cvt puts its first source in the high half.
__device__ __forceinline__ u32 ap2_pack_bf2(float lo, float hi) {
    u32 r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}
// exp2 without the subnormal-result fix-up of exp2f (one MUFU.EX2): differs from exp2f only below 2^-126
__device__ __forceinline__ float ap2_exp2(float x) {
    float r;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
    return r;
}
// Two bf16 (low half = lower address) times s, rounded back to bf16 (the rounding of attn_prefill_impl's Q fragments).
__device__ __forceinline__ u32 ap2_scale2(u32 w, float s) { return ap2_pack_bf2(bf2f((u16)(w & 0xffffu)) * s, bf2f((u16)(w >> 16)) * s); }

// BC: keys per compute step (64, or 32: two steps per loaded tile, each with its own softmax update).
template <int HD, int BC>
__device__ __forceinline__ void attn_prefill2_impl(const u16* __restrict__ qkv, const u16* __restrict__ kc, const u16* __restrict__ vc,
                                                   u16* __restrict__ out, int Tq, int q0, int slot, int nh, int nkv, int maxCtx, int window,
                                                   float scale) {
    constexpr int BM = 128, BN = 64;   // query rows per block, keys per tile
    constexpr int KS = HD + 8;         // shared row stride (elements)
    constexpr int RB = KS * 2;         // shared row stride (bytes)
    constexpr int CH = HD / 8;         // 16-byte chunks per row
    constexpr int NK = HD / 16;        // k-steps of Q K^T
    constexpr int ND = HD / 8;         // n-tiles (8 dims) of P V
    constexpr int STAGE = 2 * BN * RB; // bytes of one K|V stage
    constexpr int NJ = BC / 8;         // n-tiles (8 keys) of one compute step
    extern __shared__ __align__(16) u16 ap2_smem[];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int gq = lane >> 2, tq = lane & 3;
    const int h = blockIdx.y, kvh = h / (nh / nkv);
    const int qkvDim = (nh + 2 * nkv) * HD;
    const int qt = gridDim.x - 1 - blockIdx.x;   // reverse order: the causally longest tiles start first
    const int row0 = qt * BM;                    // first query row of the block (chunk-relative)
    const int pmax = q0 + min(Tq - 1, row0 + BM - 1);                  // largest position any query of the block sees
    const int pminStart = window > 0 ? max(0, q0 + row0 - window + 1) : 0;
    const int kStart = (pminStart / BN) * BN, nTiles = (pmax - kStart) / BN + 1;
    const u16* kbase = kc + ((i64)slot * nkv + kvh) * maxCtx * HD;
    const u16* vbase = vc + ((i64)slot * nkv + kvh) * maxCtx * HD;
    const u32 qS = smem_u32(ap2_smem);           // Q tile (byte address)
    const u32 kvS = qS + BM * RB;                // stage 0 (stage 1 at + STAGE)

    // Q tile: its own cp.async group, rows >= Tq zero-filled
    {
        const u16* qsrc = qkv + h * HD;
#pragma unroll
        for (int n = 0; n < BM * CH / 128; n++) {
            int i = threadIdx.x + n * 128;
            int r = i / CH, c = (i % CH) * 8;
            bool ok = row0 + r < Tq;
            cp_async16(qS + r * RB + c * 2, qsrc + (i64)(ok ? row0 + r : 0) * qkvDim + c, ok ? 16 : 0);
        }
        cp_commit();
    }
    // K/V copy slots of this thread: chunk column cc of rows cr + n * RPI (n < BN / RPI) of the tile
    constexpr int RPI = 128 / CH;
    const int cr = threadIdx.x / CH, cc = (threadIdx.x % CH) * 8;
    const u32 cpDst = kvS + cr * RB + cc * 2;
    const u16* kSrc = kbase + (i64)(kStart + cr) * HD + cc;
    const u16* vSrc = vbase + (i64)(kStart + cr) * HD + cc;
    auto load = [&](int tile) {
        u32 kd = cpDst + (tile & 1) * STAGE;
        int lim = pmax - (kStart + tile * BN + cr);   // row cr + n * RPI exists while n * RPI <= lim
        i64 toff = (i64)tile * BN * HD;
#pragma unroll
        for (int n = 0; n < BN / RPI; n++) {
            bool ok = n * RPI <= lim;   // keys past the block's last query: zero-filled
            cp_async16(kd + n * RPI * RB, ok ? kSrc + toff + n * RPI * HD : kbase, ok ? 16 : 0);
            cp_async16(kd + BN * RB + n * RPI * RB, ok ? vSrc + toff + n * RPI * HD : vbase, ok ? 16 : 0);
        }
    };
    load(0);
    cp_commit();
    // Scale Q in place by scale * log2 e. cp.async.wait_group 1: the Q group has landed (tile 0 may still be in flight);
    // each thread rescales exactly the chunks it copied itself (visible to it after the wait), and the first
    // __syncthreads of the loop publishes them to the other warps.
    cp_wait1();
    {
        const float qs = scale * 1.4426950408889634f;
#pragma unroll
        for (int n = 0; n < BM * CH / 128; n++) {
            int i = threadIdx.x + n * 128;
            int r = i / CH, c = (i % CH) * 8;
            uint4* p = (uint4*)(ap2_smem + r * KS + c);
            uint4 v = *p;
            v.x = ap2_scale2(v.x, qs); v.y = ap2_scale2(v.y, qs); v.z = ap2_scale2(v.z, qs); v.w = ap2_scale2(v.w, qs);
            *p = v;
        }
    }

    // this warp's rows: wRow0 + mt*16 + hf*8 + gq (mt: m16 tile 0/1, hf: fragment half, rows gq / gq + 8)
    const int wRow0 = row0 + warp * 32;
    const int wFirst = q0 + wRow0;                         // position of the warp's first row
    const int wLast = q0 + min(wRow0 + 31, Tq - 1);        // position of its last valid row
    const bool wActive = wRow0 < Tq;
    // per-lane ldmatrix byte offsets
    // Q (A operand, x4): lane L addresses row (L & 15), dims (L >> 4)*8 -> a0..a3 = (rows 0-7, dims 0-7), (rows 8-15,
    // dims 0-7), (rows 0-7, dims 8-15), (rows 8-15, dims 8-15) of the 16 x 16 block, the m16n8k16 A layout.
    const u32 qA = qS + (warp * 32 + (lane & 15)) * RB + (lane >> 4) * 16;
    // K (B operand of Q K^T, x4 over two n-tiles): lane L addresses key ((L >> 4)*8 + (L & 7)), dims ((L >> 3) & 1)*8 ->
    // registers (b0, b1) of keys 0-7 of the 16-key pair, then (b0, b1) of keys 8-15.
    const u32 kB = (((lane >> 4) << 3) + (lane & 7)) * RB + ((lane >> 3) & 1) * 16;
    // V (B operand of P V, x4.trans): lane L addresses key row L of a 32-key block -> (b0, b1) of keys 0-15, then of
    // keys 16-31 (the convention of attn_prefill_impl).
    const u32 vB = lane * RB;

    float o[2][ND][4];
#pragma unroll
    for (int mt = 0; mt < 2; mt++)
#pragma unroll
        for (int j = 0; j < ND; j++) o[mt][j][0] = o[mt][j][1] = o[mt][j][2] = o[mt][j][3] = 0.f;
    float m[2][2], l[2][2];   // [mt][hf]: running max (base-2 scaled scores) and this lane's part of the row sum
#pragma unroll
    for (int mt = 0; mt < 2; mt++) {
        m[mt][0] = m[mt][1] = NEG_INF;
        l[mt][0] = l[mt][1] = 0.f;
    }

    for (int it = 0; it < nTiles; it++) {
        if (it + 1 < nTiles) load(it + 1);
        cp_commit();
        cp_wait1();          // every group but the newest (the tile just requested) has landed
        __syncthreads();
#pragma unroll
        for (int sub = 0; sub < BN / BC; sub++) {
            const int k0 = kStart + it * BN + sub * BC;   // first key of this step
            // warp-uniform: no row of this warp sees any key of the step (all after its last row, or all before the window
            // of its first row) -> nothing to do; the result would be p = 0 everywhere and unchanged m, l, O
            if (!wActive || k0 > wLast || (window > 0 && k0 + BC - 1 <= wFirst - window)) continue;
            const u32 kT = kvS + (it & 1) * STAGE + sub * BC * RB, vT = kT + BN * RB;
            // S = Q K^T for BC keys: s[mt][j] = rows of m16 tile mt x keys j*8..j*8+7
            float s[2][NJ][4];
#pragma unroll
            for (int mt = 0; mt < 2; mt++)
#pragma unroll
                for (int j = 0; j < NJ; j++) s[mt][j][0] = s[mt][j][1] = s[mt][j][2] = s[mt][j][3] = 0.f;
#pragma unroll
            for (int kk = 0; kk < NK; kk++) {
                u32 a0[4], a1[4];
                ap2_ldsm_x4(a0, qA + kk * 32);
                ap2_ldsm_x4(a1, qA + 16 * RB + kk * 32);
#pragma unroll
                for (int jp = 0; jp < NJ / 2; jp++) {
                    u32 b[4];
                    ap2_ldsm_x4(b, kT + kB + jp * 16 * RB + kk * 32);
                    mma_bf16(s[0][2 * jp], a0, b[0], b[1]);
                    mma_bf16(s[1][2 * jp], a1, b[0], b[1]);
                    mma_bf16(s[0][2 * jp + 1], a0, b[2], b[3]);
                    mma_bf16(s[1][2 * jp + 1], a1, b[2], b[3]);
                }
            }
            // mask: only steps crossing the warp's diagonal (a key after its first row) or its window edge (a key at or
            // before last row - window); the others are seen entirely by every row of the warp
            if (k0 + BC - 1 > wFirst || (window > 0 && k0 <= wLast - window)) {
#pragma unroll
                for (int mt = 0; mt < 2; mt++) {
                    const int pa = wFirst + mt * 16 + gq, pb = pa + 8;   // positions of rows gq, gq + 8
#pragma unroll
                    for (int j = 0; j < NJ; j++) {
#pragma unroll
                        for (int e = 0; e < 2; e++) {
                            int key = k0 + j * 8 + tq * 2 + e;
                            bool okA = key <= pa && (window <= 0 || key > pa - window);
                            bool okB = key <= pb && (window <= 0 || key > pb - window);
                            if (!okA) s[mt][j][e] = NEG_INF;
                            if (!okB) s[mt][j][2 + e] = NEG_INF;
                        }
                    }
                }
            }
            // online softmax; P (bf16) straight into A fragments: pf[mt][kk] covers keys kk*16..kk*16+15 of the step
            u32 pf[2][NJ / 2][4];
#pragma unroll
            for (int mt = 0; mt < 2; mt++) {
                float ta = NEG_INF, tb = NEG_INF;
#pragma unroll
                for (int j = 0; j < NJ; j++) {
                    ta = fmaxf(ta, fmaxf(s[mt][j][0], s[mt][j][1]));
                    tb = fmaxf(tb, fmaxf(s[mt][j][2], s[mt][j][3]));
                }
                ta = fmaxf(ta, __shfl_xor_sync(0xffffffffu, ta, 1)); ta = fmaxf(ta, __shfl_xor_sync(0xffffffffu, ta, 2));
                tb = fmaxf(tb, __shfl_xor_sync(0xffffffffu, tb, 1)); tb = fmaxf(tb, __shfl_xor_sync(0xffffffffu, tb, 2));
                float na = fmaxf(m[mt][0], ta), nb = fmaxf(m[mt][1], tb);
                // a row that has seen no key yet keeps max -inf: exponents relative to 0 (all p = 0, factor 0)
                float refA = na == NEG_INF ? 0.f : na, refB = nb == NEG_INF ? 0.f : nb;
                float fa = ap2_exp2(m[mt][0] - refA), fb = ap2_exp2(m[mt][1] - refB);
                m[mt][0] = na; m[mt][1] = nb;
                float sa = 0.f, sb = 0.f;
#pragma unroll
                for (int j = 0; j < NJ; j++) {
                    float p0 = ap2_exp2(s[mt][j][0] - refA), p1 = ap2_exp2(s[mt][j][1] - refA);
                    float p2 = ap2_exp2(s[mt][j][2] - refB), p3 = ap2_exp2(s[mt][j][3] - refB);
                    sa += p0 + p1;
                    sb += p2 + p3;
                    // C layout (row gq: keys tq*2,+1; row gq+8: same keys) -> A layout (a0/a1: keys kk*16 + tq*2 of rows
                    // gq / gq+8, a2/a3: keys kk*16 + 8 + tq*2)
                    int kk = j >> 1;
                    if ((j & 1) == 0) { pf[mt][kk][0] = ap2_pack_bf2(p0, p1); pf[mt][kk][1] = ap2_pack_bf2(p2, p3); }
                    else { pf[mt][kk][2] = ap2_pack_bf2(p0, p1); pf[mt][kk][3] = ap2_pack_bf2(p2, p3); }
                }
                l[mt][0] = l[mt][0] * fa + sa;
                l[mt][1] = l[mt][1] * fb + sb;
#pragma unroll
                for (int j = 0; j < ND; j++) { o[mt][j][0] *= fa; o[mt][j][1] *= fa; o[mt][j][2] *= fb; o[mt][j][3] *= fb; }
            }
            // O += P V: one x4.trans gives the B fragments of 32 keys x 8 dims, each used by both m16 tiles
#pragma unroll
            for (int j = 0; j < ND; j++) {
#pragma unroll
                for (int kk = 0; kk < NJ / 2; kk += 2) {
                    u32 b[4];
                    ap2_ldsm_x4_t(b, vT + vB + kk * 16 * RB + j * 16);
                    mma_bf16(o[0][j], pf[0][kk], b[0], b[1]);
                    mma_bf16(o[1][j], pf[1][kk], b[0], b[1]);
                    mma_bf16(o[0][j], pf[0][kk + 1], b[2], b[3]);
                    mma_bf16(o[1][j], pf[1][kk + 1], b[2], b[3]);
                }
            }
        }
        __syncthreads();     // this stage is refilled by the next iteration's request
    }
    if (!wActive) return;    // after the loop: every thread took part in all the barriers
#pragma unroll
    for (int mt = 0; mt < 2; mt++) {
        float la = l[mt][0], lb = l[mt][1];
        la += __shfl_xor_sync(0xffffffffu, la, 1); la += __shfl_xor_sync(0xffffffffu, la, 2);
        lb += __shfl_xor_sync(0xffffffffu, lb, 1); lb += __shfl_xor_sync(0xffffffffu, lb, 2);
        float ia = la > 0.f ? 1.f / la : 0.f, ib = lb > 0.f ? 1.f / lb : 0.f;
        int ra = wRow0 + mt * 16 + gq, rb = ra + 8;
#pragma unroll
        for (int j = 0; j < ND; j++) {
            int d = j * 8 + tq * 2;
            if (ra < Tq) *(u32*)(out + (i64)ra * nh * HD + h * HD + d) = ap2_pack_bf2(o[mt][j][0] * ia, o[mt][j][1] * ia);
            if (rb < Tq) *(u32*)(out + (i64)rb * nh * HD + h * HD + d) = ap2_pack_bf2(o[mt][j][2] * ib, o[mt][j][3] * ib);
        }
    }
}
// keys per compute step; a file that includes this one may define AP2_BC 32 first to compare
#ifndef AP2_BC
#define AP2_BC 64
#endif
#define ATTN_PREFILL2(HD)                                                                                                      \
    extern "C" __global__ void __launch_bounds__(128, 2) attn_prefill2_hd##HD(const u16* qkv, const u16* kc, const u16* vc, u16* out, \
        int Tq, int q0, int slot, int nh, int nkv, int maxCtx, int window, float scale) {                                      \
        attn_prefill2_impl<HD, AP2_BC>(qkv, kc, vc, out, Tq, q0, slot, nh, nkv, maxCtx, window, scale);                                \
    }
ATTN_PREFILL2(64)
ATTN_PREFILL2(128)
