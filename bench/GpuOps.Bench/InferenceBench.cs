using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using GpuOps.Core.Engine;
using GpuOps.Core.Models;
using GpuOps.Cuda.Engine;

namespace GpuOps.Bench;

/// <summary>
///   dotnet GpuOps.Bench.dll inference --model DIR [--out DIR] [--python python3] [--no-peer] [--steps 256] [--batches 1,4,16]
/// The CUDA engine on a checkpoint (e.g. `gpuops model write-random`): load speed (pinned staged upload), device copy
/// bandwidth, prefill of 2048 tokens, time to first token (128-token prompt), greedy decode at each batch (one CUDA graph
/// per step) beside its bandwidth bound, J/token from NVML; then the peers on the same files in the same run
/// (peer/hf_inference_peer.py: safetensors.torch.load_file + transformers eager; peer/peer_decode.py: PyTorch CUDA-graph
/// decode). Writes DIR/inference-*.json in the project format.
/// </summary>
public static class InferenceBench
{
    private static string? Arg(string[] args, string name) =>
        Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;

    /// <summary>GPU 0 as NVML reports it (driver version as nvidia-smi prints it, UUID, PCI bus id), or null where NVML
    /// cannot be read. The UUID tells one lent H200 from another across runs.</summary>
    private static GpuOps.Nvml.GpuInfo? NvmlGpu0()
    {
        try
        {
            var host = new GpuOps.Core.Hosting.RecordingHost();
            new GpuOps.Nvml.GetGpuOperation { Index = new[] { 0 } }.Execute(host);
            return host.Objects.OfType<GpuOps.Nvml.GpuInfo>().FirstOrDefault();
        }
        catch (Exception)
        {
            return null;
        }
    }

    public static int Run(string[] args)
    {
        string model = Arg(args, "--model") ?? throw new ArgumentException("--model DIR is required");
        string outDir = Arg(args, "--out") ?? Path.Combine(Directory.GetCurrentDirectory(), "bench-out");
        string python = Arg(args, "--python") ?? "python3";
        int steps = int.Parse(Arg(args, "--steps") ?? "256", CultureInfo.InvariantCulture);
        var batches = (Arg(args, "--batches") ?? "1,4,16").Split(',').Select(int.Parse).ToArray();
        bool peer = !args.Contains("--no-peer");
        Directory.CreateDirectory(outDir);
        var log = new List<string>();
        void Say(string s)
        {
            Console.WriteLine(s);
            log.Add(s);
        }

        var ours = new Dictionary<string, double>();
        string? sitOutNote = null;   // (the decode sweep chose multiprocessors sitting out: said in the batch-1 result note)
        string gpu, driver;
        var nvGpu = NvmlGpu0();
        long weightBytesPerToken, fileBytes;
        double bw;
        {
            using var bundle = ModelFiles.Open(model);
            fileBytes = Directory.GetFiles(model, "*.safetensors").Sum(f => new FileInfo(f).Length);
            var sw = Stopwatch.StartNew();
            using var engine = CudaLlamaEngine.Load(bundle.Config, bundle.Weights, 0, null, CancellationToken.None);
            double loadWall = sw.Elapsed.TotalSeconds;
            var ls = engine.LoadStats!;
            gpu = engine.GpuName;
            driver = nvGpu?.DriverVersion is { } nv ? $"{nv} (CUDA {engine.Ctx.DriverVersionText})" : engine.Ctx.DriverVersionText;
            Say($"load: {ls.Bytes / 1e9:F2} GB arena in {ls.Seconds:F3} s = {ls.GigabytesPerSecond:F2} GB/s (chunks {ls.Chunks} x {ls.ChunkBytes >> 20} MiB, {ls.StagingBuffers} pinned buffers, {ls.Threads} threads); whole load incl. context and NVRTC {loadWall:F2} s");
            ours["load_GBps"] = ls.GigabytesPerSecond;
            ours["load_s"] = ls.Seconds;
            ours["load_wall_s"] = loadWall;
            bw = engine.MeasureCopyBytesPerSecond(2L << 30);
            Say($"device copy: {bw / 1e12:F3} TB/s (read + write)");
            weightBytesPerToken = engine.WeightBytesPerToken;
            var rng = new Random(7);
            int V = engine.Config.VocabSize;
            int[] Tok(int n) => Enumerable.Range(0, n).Select(_ => rng.Next(V)).ToArray();

            // prefill 2048
            {
                using var cache = engine.CreateCache(1, 2048);
                var p = Tok(2048);
                // median of 7 after three warm-up passes (clocks ramp from idle), for each prefill attention kernel in turn
                // (attn_prefill2: 128 query rows per block; attn_prefill: 64), twice, so both see the same machine state
                double Median(string kernel)
                {
                    engine.PrefillAttentionKernel = kernel;
                    var times = new List<double>();
                    for (int i = 0; i < 10; i++)
                    {
                        cache.ResetAll();
                        var t = Stopwatch.StartNew();
                        engine.ForwardArgMax(cache, new[] { new SequenceChunk(0, p) });
                        if (i >= 3) times.Add(t.Elapsed.TotalSeconds);
                    }

                    times.Sort();
                    Say($"  prefill 2048 with {kernel}: {times[3] * 1000:F1} ms = {2048 / times[3]:F0} tok/s (median of 7; runs: " +
                        $"{string.Join(", ", times.Select(x => (x * 1000).ToString("F1", CultureInfo.InvariantCulture)))} ms)");
                    return times[3];
                }

                var meds = new Dictionary<string, List<double>> { ["attn_prefill2"] = new(), ["attn_prefill"] = new() };
                for (int round = 0; round < 2; round++)
                    foreach (var k in meds.Keys) meds[k].Add(Median(k));
                string bestAttn = meds.OrderBy(kv => kv.Value.Min()).First().Key;
                foreach (var (k, v) in meds) ours[$"prefill_2048_{k}_tok_s"] = 2048 / v.Min();
                engine.PrefillAttentionKernel = bestAttn;
                double med = meds[bestAttn].Min();
                ours["prefill_2048_tok_s"] = 2048 / med;
                Say($"prefill 2048: {med * 1000:F1} ms = {2048 / med:F0} tok/s (the better of two medians of 7, with {bestAttn}; " +
                    $"{string.Join(", ", meds.Select(kv => $"{kv.Key} {2048 / kv.Value.Min():F0}"))} tok/s)");
                foreach (var line in engine.Gemm.TuneLog) Say("  cuBLASLt " + line);
                // where the time goes: the same prefill with one stage left out (METHOD.md: time variants, take differences)
                foreach (var skip in new[] { "attention", "gemm" })
                {
                    engine.SkipStage = skip;
                    var st = new List<double>();
                    for (int i = 0; i < 3; i++)
                    {
                        cache.ResetAll();
                        var t = Stopwatch.StartNew();
                        engine.ForwardArgMax(cache, new[] { new SequenceChunk(0, p) });
                        st.Add(t.Elapsed.TotalSeconds);
                    }

                    engine.SkipStage = null;
                    st.Sort();
                    ours[$"prefill_2048_without_{skip}_ms"] = st[1] * 1000;
                    Say($"  prefill 2048 without {skip}: {st[1] * 1000:F1} ms (so {skip} ~ {(med - st[1]) * 1000:F1} ms)");
                }

                // per-kernel time of one prefill pass (eager launches with an event pair around each: the sum is over the pass time)
                var prof = engine.ProfileKernels(() =>
                {
                    cache.ResetAll();
                    engine.ForwardArgMax(cache, new[] { new SequenceChunk(0, p) });
                });
                Say($"  prefill 2048 per kernel (sum {prof.Sum(x => x.Ms):F1} ms):");
                foreach (var (name, ms, n) in prof)
                {
                    ours[$"prefill_2048_kernel_{name.Replace(' ', '_').Replace('/', '_')}_ms"] = ms;
                    Say($"    {name,-22} {ms,8:F2} ms  ({n} launches, {ms * 1000 / n:F1} us each)");
                }

            }

            // batch-1 GEMVs alone (successive layers' weights, no L2 reuse): achieved bandwidth against the copy rate
            foreach (var g in new[] { "qkv", "o", "gateup", "down", "lmhead" })
            {
                var (ms, bytes) = engine.TimeGemv(g, 64);
                ours[$"gemv_{g}_TBps"] = bytes / (ms / 1000) / 1e12;
                Say($"  GEMV {g,-6} {bytes / 1e6,8:F1} MB in {ms * 1000,7:F1} us = {bytes / (ms / 1000) / 1e12:F3} TB/s ({bytes / (ms / 1000) / bw:P1} of copy)");
            }

            // time to first token, 128-token prompt
            {
                using var cache = engine.CreateCache(1, 128);
                var p = Tok(128);
                var times = new List<double>();
                for (int i = 0; i < 6; i++)
                {
                    cache.ResetAll();
                    var t = Stopwatch.StartNew();
                    engine.ForwardArgMax(cache, new[] { new SequenceChunk(0, p) });
                    if (i > 0) times.Add(t.Elapsed.TotalSeconds);
                }

                times.Sort();
                ours["ttft_128_ms"] = times[2] * 1000;
                Say($"time to first token (128-token prompt): {times[2] * 1000:F2} ms");
            }

            // batch 1: programmatic dependent launch x GEMV grid (blocks of 4 warps per multiprocessor) x fused RoPE,
            // each with its own cache and graph, same prompt; ids must equal the plain configuration's
            {
                var prompt = Tok(16);
                const int sweepSteps = 128;
                (double Tps, int[] Ids) Decode()
                {
                    using var cache = engine.CreateCache(1, 16 + sweepSteps + 16);
                    var nx = engine.ForwardArgMax(cache, new[] { new SequenceChunk(0, prompt) });
                    var warm = engine.DecodeGreedy(cache, nx, 4);
                    var r = engine.DecodeGreedy(cache, warm.Ids[^1], sweepSteps);
                    return (sweepSteps / r.Seconds, warm.Ids.Concat(r.Ids).Select(x => x[0]).ToArray());
                }

                // the persistent kernel (default) first, then the multi-kernel path (GEMV grid sweep, fused/unfused RoPE)
                engine.PersistentDecode = true;
                // its variants (CudaLlamaEngine.PersistentFlags): attention two-pass / one-pass, L2 pulls of the o weights
                // and of the cached k/v, early RMSNorm-weight / residual loads, attention + o in one phase split over
                // the heads; GPUOPS_BENCH_MK_FLAGS="1,9,..." overrides the list
                {
                    int bestFlags = engine.PersistentFlags;
                    double bestV = 0;
                    int[]? firstIds = null;
                    var variants = Environment.GetEnvironmentVariable("GPUOPS_BENCH_MK_FLAGS") is { Length: > 0 } fl
                        ? fl.Split(',').Select(int.Parse).ToArray()
                        : new[] { 1, 13, 93, 221, 3293, 7389 };
                    foreach (int flags in variants)
                    {
                        engine.PersistentFlags = flags;
                        using var cache = engine.CreateCache(1, 16 + sweepSteps + 16);
                        var nx = engine.ForwardArgMax(cache, new[] { new SequenceChunk(0, prompt) });
                        var warm = engine.DecodeGreedy(cache, nx, 4);
                        var r = engine.DecodeGreedy(cache, warm.Ids[^1], sweepSteps);
                        var ids = warm.Ids.Concat(r.Ids).Select(x => x[0]).ToArray();
                        firstIds ??= ids;
                        double tps = sweepSteps / r.Seconds;
                        var tr = engine.PersistentTrace(cache);
                        string Ph(string name) => $"{tr.Where(x => x.Phase == name).Average(x => x.WorkUs + x.WaitUs):F1}";
                        ours[$"decode_b1_persistent_flags{flags}_tok_s"] = tps;
                        Say($"  persistent variant {flags,2} (grid {engine.PersistentGridInUse}, {((flags & 1) != 0 ? "one-pass" : "two-pass")} attention{((flags & 2) != 0 ? ", o pulled into L2" : "")}" +
                            $"{((flags & 4) != 0 ? ", k/v pulled into L2" : "")}{((flags & 8) != 0 ? ", early loads" : "")}{((flags & 16) != 0 ? ", attention + o split over the heads" : "")}{((flags & 64) != 0 ? ", next group's first batch early" : "")}{((flags & 128) != 0 ? ", gate/up + down in one phase" : "")}" +
                            $"{((flags & 1024) != 0 ? ", arrive before the preloads" : "")}{((flags & 2048) != 0 ? ", light arrival" : "")}" +
                            $"{((flags & 4096) != 0 ? (engine.DownBlockedBytes > 0 ? $", W_down from the per-block copy ({engine.DownBlockedBytes / 1e9:F2} GB)" : $", W_down copy refused: {engine.DownBlockedNote}") : "")}" +
                            "): " +
                            $"{tps:F1} tok/s; per layer qkv {Ph("qkv")} attention {Ph("attention")} o {Ph("o")} gate/up {Ph("gate/up")} down {Ph("down")} us, " +
                            $"lm_head {Ph("lm_head")} us; ids equal to the first variant's: {ids.SequenceEqual(firstIds)}");
                        // every block's timestamps of the variant's last step, per phase averaged over the layers
                        foreach (var g in engine.PersistentBlockTrace(cache).GroupBy(x => x.Phase))
                            Say($"      {g.Key,-10} staged med {g.Average(x => x.StagedMed),6:F2} max {g.Average(x => x.StagedMax),6:F2}  arrive min {g.Average(x => x.ArriveMin),6:F2} " +
                                $"med {g.Average(x => x.ArriveMed),6:F2} max {g.Average(x => x.ArriveMax),6:F2}  release {g.Average(x => x.Release),6:F2} us");
                        if (tps > bestV) { bestV = tps; bestFlags = flags; }
                    }

                    engine.PersistentFlags = bestFlags;
                    ours["decode_b1_persistent_flags"] = bestFlags;
                    Say($"  best persistent variant: {bestFlags}");

                    // the grid: one block per multiprocessor, the largest multiple of the head count as a plain launch of
                    // that many blocks (CudaLlamaEngine.PersistentGrid; every block an attention + o block: for the 8B shape
                    // on 132 multiprocessors 128, where every phase divides evenly), or that many blocks of a
                    // one-per-multiprocessor launch with the fastest streamers sitting out (CudaLlamaEngine.PersistentSitOut,
                    // the engine's default where AutoSitOut > 0), each twice, alternating
                    int sms = engine.MultiprocessorCount, auto = sms - engine.AutoSitOut;
                    if (auto != sms)
                    {
                        var byGrid = new Dictionary<string, double>();
                        // and the sit-out launch from the builds of llama.cu's compile-time experiments (GPUOPS_BENCH_MK_BUILDS:
                        // "name:-DA=1 -DB;name2:-DC", each as CudaLlamaEngine.PersistentDefines; by default the down part's batches
                        // in order, MK_DOWN_ROTATE=0, against the engine's rotated ones, and the arguments read from global memory,
                        // MK_ARGS_SMEM=0; session 14's MK_GROUP_QKV=1 lost, 0.4-0.8%)
                        var defDefault = engine.PersistentDefines;
                        var configs = new List<(string Name, int Grid, int SitOut, IReadOnlyList<string> Defines)>
                            { ($"{sms}", 0, 0, defDefault), ($"{auto}", auto, 0, defDefault), ($"{auto}-sit-out", 0, sms - auto, defDefault) };
                        foreach (var b in (Environment.GetEnvironmentVariable("GPUOPS_BENCH_MK_BUILDS") ?? "in-order-down:-DMK_DOWN_ROTATE=0;args-in-global:-DMK_ARGS_SMEM=0")
                                     .Split(';', StringSplitOptions.RemoveEmptyEntries))
                        {
                            var parts = b.Split(':', 2);
                            var defs = (parts.Length > 1 ? parts[1] : "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
                            configs.Add(($"{auto}-sit-out-{parts[0].Trim()}", 0, sms - auto, CudaLlamaEngine.CheckDefines(defs.Concat(defDefault).Distinct().ToArray())));
                        }

                        var idsOf = new Dictionary<string, int[]>();
                        foreach (var (name, grid, sitOut, defines) in configs.Concat(configs))
                        {
                            engine.PersistentGrid = grid;
                            engine.PersistentSitOut = sitOut;
                            engine.PersistentDefines = defines;
                            using var cache = engine.CreateCache(1, 16 + sweepSteps + 16);
                            var nx = engine.ForwardArgMax(cache, new[] { new SequenceChunk(0, prompt) });
                            DeviceDecodeResult r, warm;
                            try
                            {
                                warm = engine.DecodeGreedy(cache, nx, 4);
                                r = engine.DecodeGreedy(cache, warm.Ids[^1], sweepSteps);
                            }
                            catch (Exception ex) when (sitOut > 0 || defines.Count > 0)
                            {
                                // (the sit-out and experiment builds are compiled on first use: report and go on without them)
                                Say($"  persistent kernel, {name}: failed: {ex.Message}");
                                byGrid[name] = 0;
                                continue;
                            }

                            double tps = sweepSteps / r.Seconds;
                            // (the experiments add the same sums in the same order as the plain sit-out launch: the same ids)
                            var sweepIds = warm.Ids.Concat(r.Ids).Select(x => x[0]).ToArray();
                            idsOf.TryAdd(name, sweepIds);
                            string same = name.StartsWith($"{auto}-sit-out-", StringComparison.Ordinal) && idsOf.TryGetValue($"{auto}-sit-out", out var so)
                                ? $"; ids equal to {auto}-sit-out's: {sweepIds.SequenceEqual(so)}" : "";
                            byGrid[name] = Math.Max(byGrid.GetValueOrDefault(name), tps);
                            ours[$"decode_b1_persistent_grid{name.Replace('-', '_')}_tok_s"] = byGrid[name];
                            Say($"  persistent kernel ({bestFlags}), work grid {engine.PersistentGridInUse} of {sms} multiprocessors" +
                                $"{(sitOut > 0 ? $" (sitting out: {string.Join(' ', engine.SittingOut)})" : grid > 0 ? " (a launch of that many blocks)" : "")}" +
                                $"{(engine.GroupQkvInUse ? ", q/k/v rows by kv group" : "")}{(defines.Count > 0 ? $", built with {string.Join(' ', defines)}" : "")}: {tps:F1} tok/s{same}");
                        }

                        var best = configs.MaxBy(c => byGrid[c.Name]);
                        engine.PersistentGrid = best.Grid;
                        engine.PersistentSitOut = best.SitOut;
                        engine.PersistentDefines = best.Defines;
                        if (best.SitOut > 0) sitOutNote = $"multiprocessors sitting out: {string.Join(' ', engine.SittingOut)}" +
                            (!best.Defines.SequenceEqual(defDefault) ? $", llama.cu built with {string.Join(' ', best.Defines)} (not the engine's default)"
                                : best.SitOut == engine.AutoSitOut ? " (the engine's default)" : "");
                        else sitOutNote = best.Grid > 0 ? $"a plain launch of {best.Grid} blocks (not the engine's default)" : $"all {sms} multiprocessors (not the engine's default)";
                        ours["decode_b1_persistent_grid"] = best.Grid > 0 ? best.Grid : sms - best.SitOut;
                        Say($"  best persistent grid: {best.Name}");
                    }
                }

                var (persistentTps, persistentIds) = Decode();
                var (persistentTps2, persistentIds2) = Decode();
                ours["decode_b1_persistent_tok_s"] = Math.Max(persistentTps, persistentTps2);
                Say($"  decode batch 1, persistent kernel: {persistentTps:F1} / {persistentTps2:F1} tok/s (two runs; ids equal: {persistentIds.SequenceEqual(persistentIds2)})");
                // where a persistent step goes: block 0's barrier timestamps, averaged over the layers of the last step
                {
                    using var cache = engine.CreateCache(1, 16 + sweepSteps + 16);
                    var nx = engine.ForwardArgMax(cache, new[] { new SequenceChunk(0, prompt) });
                    var r = engine.DecodeGreedy(cache, nx, 64);
                    var trace = engine.PersistentTrace(cache);
                    long Hh = engine.H, Ii = engine.I, Q = engine.QDim, Qkv = engine.QkvDim, Vv = engine.V;
                    var bytes = new Dictionary<string, long>
                    {
                        ["qkv"] = Qkv * Hh * 2, ["attention"] = 0, ["o"] = Hh * Q * 2, ["gate/up"] = 2 * Ii * Hh * 2, ["down"] = Hh * Ii * 2, ["lm_head"] = Vv * Hh * 2,
                    };
                    Say($"  persistent step, per phase (block 0; work = previous barrier's exit to arrival, wait = arrival to exit; {64 / r.Seconds:F1} tok/s):");
                    foreach (var g in trace.GroupBy(x => x.Phase))
                    {
                        double work = g.Average(x => x.WorkUs), wait = g.Average(x => x.WaitUs), tot = work + wait;
                        string rate = bytes[g.Key] > 0 ? $"{bytes[g.Key] / (tot * 1e-6) / 1e12:F2} TB/s incl. barrier" : "";
                        ours[$"persistent_phase_{g.Key.Replace('/', '_')}_us"] = tot;
                        Say($"    {g.Key,-10} work {work,7:F2} us  wait {wait,6:F2} us  (x{g.Count()})  {rate}");
                    }
                }

                engine.PersistentDecode = false;

                // where one batch-1 step of the multi-kernel path goes: eager launches with events around each kernel
                {
                    using var cache = engine.CreateCache(1, 64);
                    var nx = engine.ForwardArgMax(cache, new[] { new SequenceChunk(0, prompt) });
                    var prof = engine.ProfileKernels(() =>
                    {
                        for (int i = 0; i < 4; i++) nx = engine.ForwardArgMax(cache, new[] { new SequenceChunk(0, nx) });
                    });
                    Say($"  decode batch 1 per kernel, eager (4 steps; sum {prof.Sum(x => x.Ms) / 4 * 1000:F0} us/step):");
                    foreach (var (name, ms, n) in prof) Say($"    {name,-22} {ms / 4 * 1000,8:F1} us/step  ({n / 4} launches, {ms * 1000 / n:F2} us each)");
                }

                foreach (var (name, regs, local) in engine.KernelResources("decode_b1_hd128", "gemv_b1_n1_e2_r2", "gemv_b1_n0_e1_r1", "gemv_qkv_b1_n1_r2", "gemv_b1_n1_e3_r1", "attn_token_hd128", "attn_prefill_hd128", "attn_prefill2_hd128"))
                    Say($"  {name}: {regs} registers, {local} B local memory per thread");

                engine.FusedRope = true;
                engine.GemvBlocksPerSm = 8;
                var (plainTps, plainIds) = Decode();
                ours["decode_b1_8bps_tok_s"] = plainTps;
                Say($"  decode batch 1, 8 GEMV blocks/SM, fused RoPE: {plainTps:F1} tok/s");
                engine.FusedRope = false;
                var (unfusedTps, unfusedIds) = Decode();
                engine.FusedRope = true;
                ours["decode_b1_unfused_rope_tok_s"] = unfusedTps;
                Say($"  decode batch 1, GEMV + rope_kv (not fused): {unfusedTps:F1} tok/s; ids equal: {unfusedIds.SequenceEqual(plainIds)}");
                double bestTps = plainTps;
                int bestBps = 8;
                foreach (int bps in new[] { 4, 6, 12, 16, 24, 32 })
                {
                    engine.GemvBlocksPerSm = bps;
                    var (tps, ids) = Decode();
                    bool same = ids.SequenceEqual(plainIds);
                    ours[$"decode_b1_{bps}bps_tok_s"] = tps;
                    // (another grid adds the sum-of-squares partials in another order: ids may part where logits nearly tie)
                    Say($"  decode batch 1, {bps} GEMV blocks/SM: {tps:F1} tok/s; ids equal to 8 blocks/SM: {same}");
                    if (tps > bestTps) { bestTps = tps; bestBps = bps; }
                }

                engine.GemvBlocksPerSm = bestBps;
                ours["gemv_blocks_per_sm"] = bestBps;
                int agree = persistentIds.Zip(plainIds).TakeWhile(z => z.First == z.Second).Count();
                Say($"  persistent kernel vs multi-kernel path: greedy ids agree for the first {agree} of {plainIds.Length} steps");
                engine.PersistentDecode = ours["decode_b1_persistent_tok_s"] > bestTps;
                ours["decode_b1_persistent_used"] = engine.PersistentDecode ? 1 : 0;
                Say(engine.PersistentDecode
                    ? $"  using the persistent kernel for batch 1 and {bestBps} GEMV blocks/SM for batches 2..4 below"
                    : $"  using the multi-kernel path with {bestBps} GEMV blocks/SM for the figures below");
            }

            foreach (int b in batches)
            {
                using var cache = engine.CreateCache(b, 16 + steps + 16);
                var next = engine.ForwardArgMax(cache, Enumerable.Range(0, b).Select(i => new SequenceChunk(i, Tok(16))).ToList());
                var warm = engine.DecodeGreedy(cache, next, 4);
                next = warm.Ids[^1];
                var r = engine.DecodeGreedy(cache, next, steps);
                double tps = b * steps / r.Seconds;
                double bound = b * bw / weightBytesPerToken;
                ours[$"decode_b{b}_tok_s"] = tps;
                ours[$"decode_b{b}_bound"] = bound;
                if (r.Joules is double j) ours[$"decode_b{b}_J_per_tok"] = j / (b * steps);
                Say($"decode batch {b}: {tps:F1} tok/s over {steps} steps ({r.Seconds * 1000 / steps:F3} ms/step); bound {bound:F1} tok/s ({tps / bound:P1}); " +
                    (r.Joules is double jj ? $"{jj / (b * steps):F3} J/token" : "energy unavailable"));
            }
        }

        JsonNode? hf = null, pd = null;
        string? hfErr = null, pdErr = null;
        if (peer)
        {
            GC.Collect();
            (hf, hfErr) = RunPython(python, new[] { Path.Combine(AppContext.BaseDirectory, "peer", "hf_inference_peer.py"), model, "--batches", string.Join(',', batches) }, null);
            Say(hf is null ? $"transformers peer failed: {hfErr}" : $"transformers peer: {hf.ToJsonString()}");
            var pdOut = Path.Combine(Path.GetTempPath(), "gpuops-peer-decode");
            Directory.CreateDirectory(pdOut);
            (_, pdErr) = RunPython(python, new[] { Path.Combine(AppContext.BaseDirectory, "peer", "peer_decode.py") }, pdOut);
            var pdFile = Path.Combine(pdOut, "peer_decode.json");
            if (pdErr is null && File.Exists(pdFile)) pd = JsonNode.Parse(File.ReadAllText(pdFile));
            else pdErr ??= "peer_decode.json not written";
            Say(pd is null ? $"peer_decode failed: {pdErr}" : $"peer_decode: {pd.ToJsonString()}");
        }

        double? H(string k) => hf?[k]?.GetValue<double>();
        string hfName = hf?["peer"]?.GetValue<string>() ?? "transformers eager generate" + (hfErr is null ? " (not run)" : $" (failed: {hfErr})");
        var rows = new JsonArray();
        void Row(string name, string unit, double? o, double? p, string peerName, double? bound, string? note = null)
        {
            rows.Add(new JsonObject
            {
                ["name"] = name,
                ["unit"] = unit,
                ["ours"] = o is null ? null : Math.Round(o.Value, 3),
                ["peer"] = p is null ? null : Math.Round(p.Value, 3),
                ["peer_name"] = peerName,
                ["ratio"] = o is > 0 && p is > 0 ? Math.Round(unit == "ms" ? p.Value / o.Value : o.Value / p.Value, 4) : null,
                ["bound"] = bound is null ? null : Math.Round(bound.Value, 2),
                ["note"] = note,
            });
        }

        string stName = "safetensors.torch.load_file(device=\"cuda\"), same files, page cache warm";
        Row("load weights to GPU (bf16, page cache warm)", "GB/s", ours["load_GBps"], H("safetensors_load_GBps"), stName, null,
            $"ours: {ours["load_s"]:F3} s for the {fileBytes / 1e9:F2} GB checkpoint through pinned staging (ratio = ours / peer)");
        double? pdTps = pd?["decode_tok_s"]?.GetValue<double>();
        foreach (int b in batches)
        {
            Row($"decode batch {b} (greedy, CUDA graph per step)", "tok/s", ours[$"decode_b{b}_tok_s"], H($"decode_b{b}_tok_s"), hfName, ours[$"decode_b{b}_bound"],
                $"bound = {b} x copy bandwidth {bw / 1e12:F3} TB/s / {weightBytesPerToken / 1e9:F3} GB of weights per step; ours = {ours[$"decode_b{b}_tok_s"] / ours[$"decode_b{b}_bound"]:P1} of the bound" +
                (b == 1 && ours.ContainsKey("decode_b1_persistent_flags")
                    ? $"; persistent kernel, flags {ours["decode_b1_persistent_flags"]}, work grid {ours.GetValueOrDefault("decode_b1_persistent_grid")} (the sweep's best; 0 = one block per multiprocessor){(sitOutNote is null ? "" : $", {sitOutNote}")}"
                    : ""));
            if (b == 1)
                Row("decode batch 1 vs PyTorch CUDA-graph peer", "tok/s", ours["decode_b1_tok_s"], pdTps,
                    pd?["peer"]?.GetValue<string>() ?? $"peer_decode.py ({pdErr ?? "not run"})", ours["decode_b1_bound"]);
        }

        Row("prefill 2048 tokens", "tok/s", ours["prefill_2048_tok_s"], H("prefill_2048_tok_s"), hfName, null);
        Row("time to first token (128-token prompt, batch 1)", "ms", ours["ttft_128_ms"], H("ttft_128_ms"), hfName, null, "ratio = peer / ours (higher is better for us)");
        foreach (int b in batches)
            if (ours.TryGetValue($"decode_b{b}_J_per_tok", out var j)) Row($"energy per token, decode batch {b}", "J/token", j, null, "not measured", null, "NVML total-energy counter over the timed decode steps");

        var summary = new JsonObject
        {
            ["gpu"] = gpu,
            ["driver"] = driver,
            ["gpu_uuid"] = nvGpu?.Uuid,
            ["gpu_pci_bus_id"] = nvGpu?.PciBusId,
            ["date"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            ["model"] = "Llama-3-8B-shaped bf16 checkpoint with random weights written by `gpuops model write-random`",
            ["copy_TBps"] = Math.Round(bw / 1e12, 4),
            ["weight_bytes_per_token"] = weightBytesPerToken,
            ["results"] = rows,
            ["ours_raw"] = JsonSerializer.SerializeToNode(ours),
            ["peer_transformers_raw"] = hf?.DeepClone(),
            ["peer_decode_raw"] = pd?.DeepClone(),
            ["log"] = JsonSerializer.SerializeToNode(log),
        };
        string stamp = DateTime.UtcNow.ToString("yyyy-MM-ddTHHmmssZ", CultureInfo.InvariantCulture);
        string tag = gpu.Replace("NVIDIA ", "").Replace(' ', '-').ToLowerInvariant();
        string path = Path.Combine(outDir, $"inference-{tag}-{stamp}.json");
        File.WriteAllText(path, summary.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        Console.WriteLine();
        Console.WriteLine($"{"result",-50} {"ours",10} {"peer",10} {"ratio",8} {"bound",9}");
        foreach (var r in rows)
            Console.WriteLine($"{r!["name"],-50} {r["ours"],10} {r["peer"],10} {r["ratio"],8} {r["bound"],9}");
        Console.WriteLine($"wrote {path}");
        return 0;
    }

    private static (JsonNode?, string?) RunPython(string python, string[] args, string? outDir)
    {
        var psi = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["PYTHONUNBUFFERED"] = "1";
        if (outDir is not null) psi.Environment["OUT"] = outDir;
        try
        {
            using var p = Process.Start(psi) ?? throw new InvalidOperationException("python did not start");
            var stderr = p.StandardError.ReadToEndAsync();
            var stdout = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0) return (null, $"exit {p.ExitCode}: {string.Join(" | ", stderr.Result.Trim().Split('\n').TakeLast(3))}");
            var line = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault(l => l.TrimStart().StartsWith('{') && l.TrimEnd().EndsWith('}'));
            return (line is null ? null : JsonNode.Parse(line), null);
        }
        catch (Exception ex) when (ex is System.ComponentModel.Win32Exception or InvalidOperationException or JsonException)
        {
            return (null, ex.Message);
        }
    }
}
