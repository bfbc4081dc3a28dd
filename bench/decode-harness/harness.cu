// Stand-alone harness for the persistent batch-1 decode kernel (kernels/engine/llama.cu), built with nvcc on a GPU
// host: a Llama-3-8B-shaped model of random bf16 weights made on the device (no files, no .NET), the kernel run step
// after step like the engine's graph does, and per variant: tokens/s, the bound from the copy rate measured in the
// same process, block 0's and every block's phase timestamps, and whether the greedy ids equal the first variant's.
// It exists to try kernel variants in seconds of device time; the figures that count come from bench/GpuOps.Bench
// (the engine as shipped, with the peers in the same run).
//
//   nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -o harness bench/decode-harness/harness.cu
//   ./harness [--steps N] [--pos P] [--layers L] [--smem BYTES] flags [flags ...]   (or bench/decode-harness/run.sh)
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cmath>
#include <vector>
#include <algorithm>
#include <string>
#ifndef KFILE
#define KFILE "../../kernels/engine/llama.cu"
#endif
#include KFILE

#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); exit(1); } } while (0)

__global__ void fill_bf16(u16* p, i64 n, u64 seed, float scale, float offset) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {
        u64 z = (u64)i * 0x9E3779B97F4A7C15ull + seed;
        z ^= z >> 31; z *= 0xBF58476D1CE4E5B9ull; z ^= z >> 29;
        float u = (float)(z >> 40) / 16777216.f * 2.f - 1.f;   // [-1, 1)
        p[i] = f2bf(offset + scale * u);
    }
}
__global__ void read_kernel(const uint4* p, i64 n, unsigned* sink) {
    uint4 acc = make_uint4(0, 0, 0, 0);
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {
        uint4 v = ldg_stream(p + i);
        acc.x ^= v.x; acc.y ^= v.y; acc.z ^= v.z; acc.w ^= v.w;
    }
    if ((acc.x ^ acc.y ^ acc.z ^ acc.w) == 0x12345678u) *sink = 1;
}


static u16* dalloc_fill(i64 n, u64 seed, float scale, float offset = 0.f) {
    u16* p;
    CK(cudaMalloc(&p, n * 2));
    fill_bf16<<<1024, 256>>>(p, n, seed, scale, offset);
    return p;
}

// HARNESS_CLUSTER=n (nvcc -D): launch in clusters of n blocks (MK_PAIR_DOWN needs 2)
static void launch_decode(int grid, int smem, MkArgs* da) {
#ifdef HARNESS_CLUSTER
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(grid); cfg.blockDim = dim3(MK_NT); cfg.dynamicSmemBytes = smem; cfg.stream = 0;
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeClusterDimension;
    at[0].val.clusterDim.x = HARNESS_CLUSTER; at[0].val.clusterDim.y = 1; at[0].val.clusterDim.z = 1;
    cfg.attrs = at; cfg.numAttrs = 1;
    CK(cudaLaunchKernelEx(&cfg, decode_b1_hd128, (const MkArgs*)da));
#else
    decode_b1_hd128<<<grid, MK_NT, smem>>>(da);
#endif
}

static double median(std::vector<double> v) { std::sort(v.begin(), v.end()); return v.empty() ? NAN : v[v.size() / 2]; }

int main(int argc, char** argv) {
    int steps = 64, pos0 = 300, L = 32, smemArg = 0, gridArg = 0;
    std::vector<int> variants;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--steps")) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--pos")) pos0 = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--layers")) L = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--smem")) smemArg = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--grid")) gridArg = atoi(argv[++i]);   // (fewer blocks than multiprocessors)
        else variants.push_back((int)strtol(argv[i], nullptr, 0));
    }
    if (variants.empty()) variants = {93};
    const int H = 4096, nh = 32, nkv = 8, hd = 128, I = 14336, V = 128256, maxCtx = 2048;
    const int QD = nh * hd, QKV = (nh + 2 * nkv) * hd;
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    int grid = prop.multiProcessorCount;
    if (gridArg > 0 && gridArg < grid) grid = gridArg;
    int drv = 0;
    cudaDriverGetVersion(&drv);
    printf("device %s, %d SMs, L2 %d MB, driver API %d\n", prop.name, grid, prop.l2CacheSize >> 20, drv);

    // weights (scale ~ 1/sqrt(fan-in) keeps the activations finite; norms 1 +- 0.1)
    std::vector<MkLayer> hl(L);
    u64 seed = 1;
    double bytes = 0;
    for (int l = 0; l < L; l++) {
        MkLayer& w = hl[l];
        w.attnNorm = dalloc_fill(H, seed++, 0.1f, 1.f);
        w.mlpNorm = dalloc_fill(H, seed++, 0.1f, 1.f);
        w.wqkv = dalloc_fill((i64)QKV * H, seed++, 0.03f);
        w.wo = dalloc_fill((i64)H * QD, seed++, 0.03f);
        w.wgu = dalloc_fill((i64)2 * I * H, seed++, 0.03f);
        w.wdown = dalloc_fill((i64)H * I, seed++, 0.016f);
        w.bqkv = w.bo = w.bgu = w.bdown = nullptr;
#ifdef MK_DOWN_BLOCKED
        // the per-block copy of W_down (MK_DOWN_BLOCKED), as CudaLlamaEngine makes it
        u16* wdb;
        static u16* oneDown = nullptr;   // HARNESS_ONE_DOWN=1: every layer's copy in one allocation, as the engine makes it
        if (getenv("HARNESS_ONE_DOWN") && atoi(getenv("HARNESS_ONE_DOWN"))) {
            if (!oneDown) CK(cudaMalloc(&oneDown, (size_t)L * H * I * 2));
            wdb = oneDown + (size_t)l * H * I;
        } else {
            CK(cudaMalloc(&wdb, (size_t)H * I * 2));
        }
        repack_down_blocked<<<grid, 256>>>(w.wdown, wdb, H, I, grid);
        CK(cudaGetLastError());
        w.wdownB = wdb;
#endif
        bytes += 2.0 * ((double)QKV * H + (double)H * QD + 2.0 * I * H + (double)H * I + 2.0 * H);
    }
    const u16* emb = dalloc_fill((i64)V * H, seed++, 0.5f);
    const u16* out = dalloc_fill((i64)V * H, seed++, 0.03f);
    const u16* fnorm = dalloc_fill(H, seed++, 0.1f, 1.f);
    bytes += 2.0 * ((double)V * H + H + H);   // lm_head, final norm, one embedding row
    MkLayer* dl;
    CK(cudaMalloc(&dl, sizeof(MkLayer) * L));
    CK(cudaMemcpy(dl, hl.data(), sizeof(MkLayer) * L, cudaMemcpyHostToDevice));
    i64 layerElems = (i64)nkv * maxCtx * hd;
    u16* kc = dalloc_fill(layerElems * L, seed++, 1.f);
    u16* vc = dalloc_fill(layerElems * L, seed++, 1.f);
    std::vector<float> hinvf(hd / 2);
    for (int i = 0; i < hd / 2; i++) hinvf[i] = (float)std::pow(500000.0, -2.0 * i / hd);
    float* invf;
    CK(cudaMalloc(&invf, hd / 2 * 4));
    CK(cudaMemcpy(invf, hinvf.data(), hd / 2 * 4, cudaMemcpyHostToDevice));

    int launchGrid = grid;
#ifdef MK_VIRTUAL_BLOCKS
    {   // one block per multiprocessor; grid of them take work ids 0..grid-1, the others sit out. HARNESS_VB: slow (the
        // slowest sit out, by each multiprocessor's streaming time over the lm_head weights), fast (the fastest: a
        // control), high (the highest %smid)
        int sms = prop.multiProcessorCount;
        launchGrid = sms;
        unsigned long long* dout;
        CK(cudaMalloc(&dout, 16 * (size_t)sms));
        i64 per = (i64)V * H / 8 / sms;
        std::vector<double> tsm(1024, 0.0);
        std::vector<unsigned long long> ho(2 * (size_t)sms);
        std::vector<int> present;
        for (int r = 0; r < 6; r++) {
            sm_rate<<<sms, 512>>>((const uint4*)out, (long long)per, dout);
            CK(cudaDeviceSynchronize());
            CK(cudaMemcpy(ho.data(), dout, 16 * (size_t)sms, cudaMemcpyDeviceToHost));
            if (r == 0) {
                for (int b = 0; b < sms; b++) present.push_back((int)ho[2 * b]);
                continue;
            }
            for (int b = 0; b < sms; b++) tsm[ho[2 * b] & 1023] += ho[2 * b + 1] / 5e3;
        }
        std::sort(present.begin(), present.end(), [&](int x, int y) { return tsm[x] < tsm[y]; });   // fastest first
        const char* mode = getenv("HARNESS_VB") ? getenv("HARNESS_VB") : "slow";
        int k = sms - grid;
        std::vector<char> sitOut(1024, 0);
        if (!strcmp(mode, "fast")) for (int j = 0; j < k; j++) sitOut[present[j]] = 1;
        else if (!strcmp(mode, "high")) { std::vector<int> byId = present; std::sort(byId.begin(), byId.end()); for (int j = 0; j < k; j++) sitOut[byId[sms - 1 - j]] = 1; }
        else for (int j = 0; j < k; j++) sitOut[present[sms - 1 - j]] = 1;
        std::vector<int> table(1024, -1);
        int vid = 0;
        for (int smi = 0; smi < 1024; smi++)
            if (tsm[smi] > 0 && !sitOut[smi]) table[smi] = vid++;
        CK(cudaMemcpyToSymbol(mk_smvid, table.data(), 4 * 1024));
        CK(cudaMemcpyToSymbol(mk_vgrid_g, &grid, 4));
        double med = tsm[present[sms / 2]];
        printf("multiprocessors' streaming time (8 MB each, all at once, mean of 5): fastest %.1f, median %.1f, slowest %.1f us; slowest 8 (sm: us):",
               tsm[present[0]], med, tsm[present[sms - 1]]);
        for (int j = sms - 1; j >= sms - 8; j--) printf(" %d:%.1f", present[j], tsm[present[j]]);
        printf("; fastest 4:");
        for (int j = 0; j < 4; j++) printf(" %d:%.1f", present[j], tsm[present[j]]);
        printf("\nHARNESS_VB=%s: %d work ids; sitting out:", mode, vid);
        for (int smi = 0; smi < 1024; smi++) if (sitOut[smi]) printf(" %d", smi);
        printf("\n");
        if (vid != grid) { printf("work ids %d != grid %d\n", vid, grid); return 1; }
    }
#endif
    MkArgs a{};
    a.layers = dl; a.emb = emb; a.finalNorm = fnorm; a.out = out; a.invf = invf; a.kc = kc; a.vc = vc;
    int phases = 6 * L + 4;
    CK(cudaMalloc(&a.x, H * 4));
    CK(cudaMalloc(&a.qkv, QKV * 2));
    CK(cudaMalloc(&a.attn, QD * 2));
    CK(cudaMalloc(&a.act, I * 2));
    CK(cudaMalloc(&a.logits, (size_t)V * 4));
    CK(cudaMalloc(&a.tokens, 4));
    CK(cudaMalloc(&a.slot, 4));
    CK(cudaMalloc(&a.pos, 4));
    CK(cudaMalloc(&a.outIds, 4 * 65536));
    CK(cudaMalloc(&a.count, 4));
    CK(cudaMalloc(&a.bar, 8 * (3 + nh + nkv)));   // (grid, stagings, heads; MK_GROUP_QKV: groups, q/k/v stagings)
    CK(cudaMalloc(&a.part, 4 * (size_t)grid * (hd + 2)));
    CK(cudaMalloc(&a.candV, 4 * 1024));
    CK(cudaMalloc(&a.candI, 4 * 1024));
    CK(cudaMalloc(&a.trace, 16 * phases));
    CK(cudaMalloc(&a.acco, 8 * H));
    CK(cudaMalloc(&a.btrace, 16 * (size_t)phases * grid));
    CK(cudaMemset(a.bar, 0, 8 * (3 + nh + nkv)));
    CK(cudaMemset(a.acco, 0, 8 * H));
    CK(cudaMemset(a.slot, 0, 4));
    a.layerElems = layerElems;
    a.L = L; a.H = H; a.I = I; a.V = V; a.nh = nh; a.nkv = nkv; a.hd = hd; a.maxCtx = maxCtx; a.window = 0;
    a.eps = 1e-5f; a.scale = 1.f / std::sqrt((float)hd);
    MkArgs* da;
    CK(cudaMalloc(&da, sizeof(MkArgs)));
    int smem = std::max(std::max(H * 4, std::max(QD * 2, I * 2)), (2 * hd + MK_NT / (hd / 8) * (hd + 2) + maxCtx) * 4);
    if (smemArg > smem) smem = smemArg;   // (more dynamic shared memory than the kernel uses: what it costs the rest)
    CK(cudaFuncSetAttribute(decode_b1_hd128, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    cudaFuncAttributes fa;
    CK(cudaFuncGetAttributes(&fa, decode_b1_hd128));
    printf("decode_b1_hd128: %d registers, %zu B local (spills), %d B dynamic shared\n", fa.numRegs, fa.localSizeBytes, smem);
    CK(cudaDeviceSynchronize());

    // copy rate (read + write, the engine's bound) and plain read rate over 2 GB
    {
        size_t n = (size_t)2 << 30;
        void *s, *d;
        unsigned* sink;
        CK(cudaMalloc(&s, n)); CK(cudaMalloc(&d, n)); CK(cudaMalloc(&sink, 4));
        cudaEvent_t e0, e1;
        cudaEventCreate(&e0); cudaEventCreate(&e1);
        std::vector<double> cp, rd;
        for (int r = 0; r < 7; r++) {
            cudaEventRecord(e0); cudaMemcpyAsync(d, s, n, cudaMemcpyDeviceToDevice); cudaEventRecord(e1); cudaEventSynchronize(e1);
            float ms; cudaEventElapsedTime(&ms, e0, e1); cp.push_back(2.0 * n / (ms * 1e-3) / 1e12);
            cudaEventRecord(e0); read_kernel<<<grid * 4, 512>>>((const uint4*)s, n / 16, sink); cudaEventRecord(e1); cudaEventSynchronize(e1);
            cudaEventElapsedTime(&ms, e0, e1); rd.push_back(n / (ms * 1e-3) / 1e12);
        }
        CK(cudaGetLastError());
        double copy = median(cp), read = median(rd);
        printf("copy %.3f TB/s (read + write), read %.3f TB/s; weight bytes per step %.3f GB -> bound %.1f tok/s (90%%: %.1f)\n",
               copy, read, bytes / 1e9, copy * 1e12 / bytes, 0.9 * copy * 1e12 / bytes);
        cudaFree(s); cudaFree(d); cudaFree(sink);
        setenv("HARNESS_BOUND", std::to_string(copy * 1e12 / bytes).c_str(), 1);
    }
    double bound = atof(getenv("HARNESS_BOUND"));

    std::vector<int> firstIds;
    cudaEvent_t ev0, ev1;
    cudaEventCreate(&ev0); cudaEventCreate(&ev1);
    for (int flags : variants) {
        a.flags = flags;
        CK(cudaMemcpy(da, &a, sizeof(MkArgs), cudaMemcpyHostToDevice));
        int tok = 1234, zero = 0;
        CK(cudaMemcpy(a.tokens, &tok, 4, cudaMemcpyHostToDevice));
        CK(cudaMemcpy(a.pos, &pos0, 4, cudaMemcpyHostToDevice));
        CK(cudaMemcpy(a.count, &zero, 4, cudaMemcpyHostToDevice));
        CK(cudaMemset(a.btrace, 0, 16 * (size_t)phases * grid));
        // the embedding of the first token is read by the kernel itself (layer 0 stages emb[tok])
        std::vector<double> ms;
        int total = steps + 8;
        {   // the first step's logits: saved (HARNESS_LOGITS_OUT) or compared with a saved run's (HARNESS_LOGITS_REF)
            launch_decode(launchGrid, smem, da);
            CK(cudaDeviceSynchronize());
            std::vector<float> lg(V);
            CK(cudaMemcpy(lg.data(), a.logits, 4 * (size_t)V, cudaMemcpyDeviceToHost));
            if (const char* o = getenv("HARNESS_LOGITS_OUT")) { FILE* f = fopen(o, "wb"); fwrite(lg.data(), 4, V, f); fclose(f); }
            if (const char* r = getenv("HARNESS_LOGITS_REF")) {
                std::vector<float> ref(V);
                FILE* f = fopen(r, "rb");
                if (f && fread(ref.data(), 4, V, f) == (size_t)V) {
                    double md = 0, mx = 0;
                    int a1 = 0, a2 = 0;
                    for (int i = 0; i < V; i++) {
                        md = std::max(md, (double)std::fabs(lg[i] - ref[i])); mx = std::max(mx, (double)std::fabs(ref[i]));
                        if (lg[i] > lg[a1]) a1 = i;
                        if (ref[i] > ref[a2]) a2 = i;
                    }
                    printf("  first-step logits against %s: max |diff| %.3g (max |ref| %.3g, rel %.3g), argmax %d vs %d\n", r, md, mx, md / mx, a1, a2);
                }
                if (f) fclose(f);
            }
            CK(cudaMemcpy(a.tokens, &tok, 4, cudaMemcpyHostToDevice));
            CK(cudaMemcpy(a.pos, &pos0, 4, cudaMemcpyHostToDevice));
            CK(cudaMemcpy(a.count, &zero, 4, cudaMemcpyHostToDevice));
        }
        for (int s = 0; s < total; s++) {
            cudaEventRecord(ev0);
            launch_decode(launchGrid, smem, da);
            cudaEventRecord(ev1);
            cudaError_t e = cudaEventSynchronize(ev1);
            if (e != cudaSuccess) { printf("flags %d: step %d failed: %s\n", flags, s, cudaGetErrorString(e)); return 1; }
            float t;
            cudaEventElapsedTime(&t, ev0, ev1);
            if (s >= 8) ms.push_back(t);
        }
        // back to back (as the engine's graph replays), for the throughput figure
        CK(cudaMemcpy(a.tokens, &tok, 4, cudaMemcpyHostToDevice));
        CK(cudaMemcpy(a.pos, &pos0, 4, cudaMemcpyHostToDevice));
        CK(cudaMemcpy(a.count, &zero, 4, cudaMemcpyHostToDevice));
        cudaEventRecord(ev0);
        for (int s = 0; s < steps; s++) launch_decode(launchGrid, smem, da);
        cudaEventRecord(ev1);
        CK(cudaEventSynchronize(ev1));
        float tt;
        cudaEventElapsedTime(&tt, ev0, ev1);
        std::vector<int> ids(steps);
        CK(cudaMemcpy(ids.data(), a.outIds, 4 * steps, cudaMemcpyDeviceToHost));
        if (firstIds.empty()) firstIds = ids;
        double tps = steps / (tt * 1e-3), tpsMed = 1e3 / median(ms);
        printf("flags %7d (0x%05x): %.1f tok/s back to back (%.1f%% of bound), median step %.3f ms (%.1f tok/s); ids %s the first variant's (%d %d %d ...)\n",
               flags, flags, tps, 100 * tps / bound, median(ms), tpsMed, ids == firstIds ? "equal to" : "DIFFER from", ids[0], ids[1], ids[2]);
        // phase timestamps of the last step (block 0 and every block), averaged over the layers
        int n = 5 * L + 1;
        std::vector<u64> t(2 * n), b(2 * (size_t)n * grid);
        CK(cudaMemcpy(t.data(), a.trace, 16 * n, cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(b.data(), a.btrace, 16 * (size_t)n * grid, cudaMemcpyDeviceToHost));
        const char* names[] = {"qkv", "attention", "o", "gate/up", "down"};
        for (int ph = 0; ph < 6; ph++) {
            double sm = 0, sx = 0, am = 0, amed = 0, ax = 0, rel = 0;
            int cnt = 0;
            for (int k = 1; k < n; k++) {
                bool lm = k == n - 1;
                if (lm != (ph == 5) || (!lm && k % 5 != ph)) continue;
                u64 start = t[2 * k - 1], release = t[2 * k + 1], end = t[2 * n - 1];
                std::vector<double> st, ar;
                for (int g = 0; g < grid; g++) {
                    u64 s0 = b[(2 * (size_t)k) * grid + g], a0 = b[(2 * (size_t)k + 1) * grid + g];
                    if (s0 >= start && s0 <= end) st.push_back((s0 - start) / 1e3);
                    if (a0 >= start && a0 <= end) ar.push_back((a0 - start) / 1e3);
                }
                if (st.empty() || ar.empty()) continue;
                sm += median(st); sx += *std::max_element(st.begin(), st.end());
                am += *std::min_element(ar.begin(), ar.end()); amed += median(ar); ax += *std::max_element(ar.begin(), ar.end());
                rel += (release - start) / 1e3;
                cnt++;
            }
            if (cnt == 0) continue;
            printf("    %-10s staged med %6.2f max %6.2f  arrive min %6.2f med %6.2f max %6.2f  release %6.2f us\n", ph == 5 ? "lm_head" : names[ph],
                   sm / cnt, sx / cnt, am / cnt, amed / cnt, ax / cnt, rel / cnt);
        }
#ifdef MK_ATTN_TRACE
        {
            long long ct[16];
            unsigned long long gt[16];
            CK(cudaMemcpyFromSymbol(ct, mk_attn_t, sizeof ct));
            CK(cudaMemcpyFromSymbol(gt, mk_attn_g, sizeof gt));
            int khz = 0;
            cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, 0);
            printf("    attention of layer 5, block 0 (clock64 at %.0f MHz / globaltimer ns) from the q/k/v barrier's release:", khz / 1e3);
            const char* nm[] = {"enter", "q load issued (overlaps the k/v loads)", "k/v loop done", "partials staged", "combined", "end", "o part end"};
            int ix[] = {0, 1, 2, 3, 4, 5, 6};
            for (int i : ix) printf(" %s %lld cy / %lld ns;", nm[i], ct[i] - ct[8], (long long)(gt[i] - gt[8]));
            printf("\n");
        }
#endif
        if (getenv("HARNESS_BLOCKS")) {
            // is a block's speed its own (the same blocks late in every layer) or chance? per phase kind: each block's
            // arrival after its phase's start, the correlation between consecutive layers, and the latest blocks
            for (int ph : {0, 2, 3, 4}) {
                std::vector<std::vector<double>> arr;
                for (int l = 0; l < L; l++) {
                    int k = 5 * l + ph;
                    if (k == 0) continue;
                    u64 start = t[2 * (5 * l + (ph == 4 ? 3 : ph)) - 1];
                    std::vector<double> v(grid);
                    for (int g = 0; g < grid; g++) v[g] = ((double)b[(2 * (size_t)k + 1) * grid + g] - (double)start) / 1e3;
                    arr.push_back(v);
                }
                double cs = 0;
                int cn = 0;
                for (size_t i = 0; i + 1 < arr.size(); i++) {
                    double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
                    for (int g = 0; g < grid; g++) { ma += arr[i][g]; mb += arr[i + 1][g]; }
                    ma /= grid; mb /= grid;
                    for (int g = 0; g < grid; g++) {
                        double x = arr[i][g] - ma, y = arr[i + 1][g] - mb;
                        sab += x * y; saa += x * x; sbb += y * y;
                    }
                    if (saa > 0 && sbb > 0) { cs += sab / std::sqrt(saa * sbb); cn++; }
                }
                printf("    blocks, %s: arrival correlation between consecutive layers %.2f; latest blocks in layers 5/15/25:", names[ph], cn ? cs / cn : 0.0);
                for (int l : {5, 15, 25}) {
                    if (l >= (int)arr.size()) continue;
                    std::vector<int> ix(grid);
                    for (int g = 0; g < grid; g++) ix[g] = g;
                    std::sort(ix.begin(), ix.end(), [&](int x, int y) { return arr[l][x] > arr[l][y]; });
                    printf(" [");
                    for (int j = 0; j < 6; j++) printf("%d:%.1f%s", ix[j], arr[l][ix[j]], j < 5 ? " " : "");
                    printf("]");
                }
                printf("\n");
            }
#ifdef MK_SMID_TRACE
            {   // per block, its lateness in the fused phase (down arrival minus the layer's median) averaged over the
                // layers: systematic (the same multiprocessors late: the spread of the means near the per-layer spread)
                // or chance (the means' spread ~ per-layer spread / sqrt(layers))
                unsigned sm[1024];
                CK(cudaMemcpyFromSymbol(sm, mk_smid, sizeof sm));
                for (int ph : {2, 4, 5}) {
                    std::vector<double> mean(grid, 0.0);
                    double perLayerVar = 0;
                    int nl = 0;
                    for (int l = 1; l < L + (ph == 5 ? 0 : 0); l++) {
                        int k = ph == 5 ? 5 * L : 5 * l + ph;
                        if (ph == 5 && l > 1) break;
                        std::vector<double> v(grid);
                        for (int g = 0; g < grid; g++) v[g] = (double)b[(2 * (size_t)k + 1) * grid + g];
                        double med = median(v), var = 0;
                        for (int g = 0; g < grid; g++) { v[g] = (v[g] - med) / 1e3; mean[g] += v[g]; var += v[g] * v[g]; }
                        perLayerVar += var / grid;
                        nl++;
                    }
                    double mv = 0;
                    for (int g = 0; g < grid; g++) { mean[g] /= nl; mv += mean[g] * mean[g]; }
                    std::vector<int> ix(grid);
                    for (int g = 0; g < grid; g++) ix[g] = g;
                    std::sort(ix.begin(), ix.end(), [&](int x, int y) { return mean[x] > mean[y]; });
                    printf("    %s lateness over %d layers: rms per layer %.2f us, rms of the per-block means %.2f us; latest (block/sm: us):",
                           ph == 2 ? "o" : ph == 4 ? "fused (down arrival)" : "lm_head", nl, std::sqrt(perLayerVar / nl), std::sqrt(mv / grid));
                    for (int j = 0; j < 8; j++) printf(" %d/%u:%.2f", ix[j], sm[ix[j]], mean[ix[j]]);
                    printf("; earliest:");
                    for (int j = grid - 4; j < grid; j++) printf(" %d/%u:%.2f", ix[j], sm[ix[j]], mean[ix[j]]);
                    printf("\n");
                }
            }
#endif
        }
    }
    return 0;
}
