using System.Runtime.InteropServices;
using System.Text.Json;
using GpuOps.Core.Engine;
using GpuOps.Core.Hosting;
using GpuOps.Cuda.Driver;
using GpuOps.Cuda.Engine;
using GpuOps.Tests.Engine;
using GpuOps.Tests.Support;
using Xunit;
using static GpuOps.Cuda.Driver.CudaApi;

namespace GpuOps.Tests.CudaEngine;

/// <summary>The fixture model on the CUDA bf16 engine, loaded once (lazily: nothing is touched where there is no GPU).</summary>
public sealed class CudaFortuneFixture : IDisposable
{
    private readonly Lazy<GpuModelHandle> _handle = new(() => GpuModelHandle.Load(Repo.Data("fortune-llama"), "cuda:0", "auto", null, CancellationToken.None));
    private readonly Lazy<JsonDocument> _reference = new(() => JsonDocument.Parse(File.ReadAllText(Repo.Data("fortune-llama", "reference.json"))));
    private readonly Lazy<Dictionary<string, (long[] Shape, float[] Data)>> _logits = new(() => TestSafetensors.Read(Repo.Data("fortune-llama", "reference_logits.safetensors")));

    public GpuModelHandle Handle => _handle.Value;
    public JsonDocument Reference => _reference.Value;
    public Dictionary<string, (long[] Shape, float[] Data)> Logits => _logits.Value;

    public void Dispose()
    {
        if (_handle.IsValueCreated) _handle.Value.Dispose();
        if (_reference.IsValueCreated) _reference.Value.Dispose();
    }
}

/// <summary>The CUDA bf16 engine against transformers' float32 results on the fixture (tests/data/README.md tolerances for bf16).</summary>
public class CudaFortuneLlamaTests(CudaFortuneFixture fx, ITestOutputHelper output) : IClassFixture<CudaFortuneFixture>
{
    private const int Vocab = 4096;

    private static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();

    private static double Top1Agreement(float[] got, float[] want, int rows)
    {
        int same = 0;
        for (int r = 0; r < rows; r++)
        {
            if (Sampler.ArgMax(got.AsSpan(r * Vocab, Vocab)) == Sampler.ArgMax(want.AsSpan(r * Vocab, Vocab))) same++;
        }

        return same / (double)rows;
    }

    [GpuFact]
    public void PrefillLogitsWithin2e2AndTop1Agrees()
    {
        var e = fx.Handle.Engine;
        Assert.Equal("bfloat16", e.DType);
        Assert.StartsWith("cuda:", fx.Handle.Device);
        int rows = 0, same = 0;
        foreach (var p in fx.Reference.RootElement.GetProperty("logits").EnumerateArray())
        {
            var ids = Ints(p.GetProperty("ids"));
            using var cache = e.CreateCache(1, ids.Length);
            var got = e.Forward(cache, new[] { new SequenceChunk(0, ids) }, allLogits: true)[0];
            var want = fx.Logits[p.GetProperty("tensor").GetString()!].Data;
            Assert.All(got, v => Assert.True(float.IsFinite(v)));
            double err = ReferenceLlama.RelativeError(got, want);
            double agree = Top1Agreement(got, want, ids.Length);
            rows += ids.Length;
            same += (int)Math.Round(agree * ids.Length);
            output.WriteLine($"prefill {ids.Length} tokens: relative error {err:E2}, top-1 agreement {agree:P1}");
            Assert.InRange(err, 0, 2e-2);
        }

        Assert.True(same >= 0.98 * rows, $"top-1 agreement {same}/{rows}");
    }

    /// <summary>Each reference prompt fed one token at a time through the decode graph (GEMV path at batch 1 and 3, cuBLASLt path at batch 6).</summary>
    [GpuTheory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(6)]
    public void DecodeStepsMatchTheReferenceAtEveryPosition(int batch)
    {
        var e = fx.Handle.Engine;
        foreach (var p in fx.Reference.RootElement.GetProperty("logits").EnumerateArray())
        {
            var ids = Ints(p.GetProperty("ids"));
            var want = fx.Logits[p.GetProperty("tensor").GetString()!].Data;
            using var cache = e.CreateCache(batch, ids.Length + 1);
            var got = new float[ids.Length * Vocab];
            for (int t = 0; t < ids.Length; t++)
            {
                var chunks = Enumerable.Range(0, batch).Select(b => new SequenceChunk(b, new[] { ids[t] })).ToList();
                var l = e.Forward(cache, chunks, allLogits: false);
                l[0].CopyTo(got, t * Vocab);
                for (int b = 1; b < batch; b++) Assert.InRange(ReferenceLlama.RelativeError(l[b], l[0]), 0, 1e-3); // every slot computes the same sequence
            }

            double err = ReferenceLlama.RelativeError(got, want);
            double agree = Top1Agreement(got, want, ids.Length);
            output.WriteLine($"batch {batch}, {ids.Length} decode steps: relative error {err:E2}, top-1 agreement {agree:P1}");
            Assert.InRange(err, 0, 2e-2);
            Assert.True(agree >= 0.98 || ids.Length - agree * ids.Length <= 1, $"top-1 agreement {agree:P1}");
        }
    }

    /// <summary>
    /// Decode is reproducible to the bit (no float atomics anywhere in a step); the multi-kernel path with and without
    /// the fused q/k/v + RoPE kernel gives the same bits; at batch 1 the persistent kernel (its own summation orders)
    /// agrees with the multi-kernel path to bf16 rounding and picks the same token at every position.
    /// </summary>
    [GpuTheory]
    [InlineData(1)]
    [InlineData(3)]
    public void DecodeIsBitReproducibleAndItsVariantsAgree(int batch)
    {
        var e = (CudaLlamaEngine)fx.Handle.Engine;
        var p = fx.Reference.RootElement.GetProperty("logits").EnumerateArray().Last();
        var ids = Ints(p.GetProperty("ids"));
        var want = fx.Logits[p.GetProperty("tensor").GetString()!].Data;
        float[] Run(bool persistent, bool fusedRope)
        {
            e.PersistentDecode = persistent;
            e.FusedRope = fusedRope;
            try
            {
                using var cache = e.CreateCache(batch, ids.Length + 1);
                var got = new float[ids.Length * Vocab];
                long before = e.PersistentSteps;
                for (int t = 0; t < ids.Length; t++)
                {
                    var l = e.Forward(cache, Enumerable.Range(0, batch).Select(b => new SequenceChunk(b, new[] { ids[t] })).ToList(), false);
                    l[batch - 1].CopyTo(got, t * Vocab);
                }

                // the persistent kernel runs at batch 1 only, and only when asked for
                Assert.Equal(persistent && batch == 1, e.PersistentSteps > before);
                return got;
            }
            finally
            {
                e.PersistentDecode = true;
                e.FusedRope = true;
            }
        }

        static int Differ(float[] a, float[] b) => a.Zip(b).Count(z => BitConverter.SingleToInt32Bits(z.First) != BitConverter.SingleToInt32Bits(z.Second));
        var first = Run(true, true);
        var again = Run(true, true);
        var multi = Run(false, true);
        var unfused = Run(false, false);
        double diff = ReferenceLlama.RelativeError(first, multi);
        output.WriteLine($"batch {batch}: logits differing between two runs {Differ(first, again)}; multi-kernel fused vs GEMV + rope_kv {Differ(multi, unfused)} " +
                         $"of {first.Length}; default vs multi-kernel relative difference {diff:E2}; against the reference {ReferenceLlama.RelativeError(first, want):E2}");
        Assert.Equal(0, Differ(first, again));
        Assert.Equal(0, Differ(multi, unfused));
        Assert.InRange(ReferenceLlama.RelativeError(first, want), 0, 2e-2);
        // (at batch 1 the persistent kernel sums in its own fixed orders: its own RMSNorm sums and, by default, one-pass attention)
        if (batch > 1) Assert.Equal(0, Differ(first, multi));
        else Assert.InRange(diff, 0, 1e-3);
        for (int t = 0; t < ids.Length; t++)
            Assert.Equal(Sampler.ArgMax(multi.AsSpan(t * Vocab, Vocab)), Sampler.ArgMax(first.AsSpan(t * Vocab, Vocab)));
        if (batch == 1)
        {
            // every variant of the persistent kernel (two-pass or one-pass attention, L2 pulls of the o weights and of
            // the cached k/v, early loads, attention + o in one phase split over the heads, gate/up + down in one phase):
            // within a kind (attention, o summation, down summation) the variants only move loads, so their logits must
            // be the same bits
            int saved = e.PersistentFlags;
            try
            {
                var byAttention = new Dictionary<int, float[]>();
                foreach (int flags in new[] { 0, 1, 2, 3, 1 | 4, 1 | 8, 1 | 64, 1 | 16, 1 | 4 | 8 | 16, 1 | 2 | 16, 1 | 8 | 16, 1 | 4 | 8 | 16 | 64, 16, 4 | 8 | 16 | 64,
                                              128, 1 | 128, 1 | 16 | 128, 1 | 8 | 16 | 128, 1 | 4 | 8 | 16 | 64 | 128, 1 | 4 | 8 | 64 | 128,
                                              1 | 16 | 128 | 512, 1 | 4 | 8 | 16 | 64 | 128 | 512, 1 | 16 | 512,
                                              3293, 3293 | 512, 1 | 16 | 1024, 1 | 2048, 128 | 1024 | 2048,
                                              7389, 7389 | 512, 128 | 4096, 1 | 16 | 128 | 4096, 4096 })
                {
                    e.PersistentFlags = flags;
                    var v = Run(true, true);
                    double d = ReferenceLlama.RelativeError(v, multi);
                    output.WriteLine($"persistent variant {flags}: relative difference to the multi-kernel path {d:E2}");
                    Assert.InRange(d, 0, 1e-3);
                    for (int t = 0; t < ids.Length; t++)
                        Assert.Equal(Sampler.ArgMax(multi.AsSpan(t * Vocab, Vocab)), Sampler.ArgMax(v.AsSpan(t * Vocab, Vocab)));
                    // (split o only with one-pass attention; 128: the fused MLP phase's down sums; 512 with 17: attention split over a head's blocks;
                    // 1024 / 2048 only move fences and loads; 4096 with 128: other slices, so other down sums; 4096 alone does nothing)
                    int kind = ((flags & 1) != 0 ? flags & 17 : 0) | (flags & 128) | ((flags & 17) == 17 ? flags & 512 : 0) |
                               ((flags & 128) != 0 ? flags & 4096 : 0);
                    if ((flags & 4096) != 0 && (flags & 128) != 0) Assert.True(e.DownBlockedBytes > 0, "the per-block copy of W_down was made");
                    if (byAttention.TryGetValue(kind, out var baseline)) Assert.Equal(0, Differ(baseline, v));
                    else byAttention[kind] = v;
                }
            }
            finally
            {
                e.PersistentFlags = saved;
            }
        }
    }

    /// <summary>
    /// Batch-1 decode of the fixture's last reference ids one Forward at a time on one cache, with the persistent kernel
    /// (or the multi-kernel path), step t at PersistentGrid gridAt(t) and PersistentSitOut sitOut; checks the work grid of
    /// every step (<paramref name="workGrid"/>) and that the persistent kernel ran. Returns every step's logits.
    /// </summary>
    private float[] DecodeSteps(CudaLlamaEngine e, int[] ids, bool persistent, Func<int, int> gridAt, int sitOut, Func<int, int> workGrid)
    {
        e.PersistentDecode = persistent;
        e.PersistentSitOut = sitOut;
        try
        {
            using var cache = e.CreateCache(1, ids.Length + 1);
            var got = new float[ids.Length * Vocab];
            // (PersistentSteps counts the kernels enqueued or captured, not the graph's replays: checked once per run)
            long before = e.PersistentSteps;
            for (int t = 0; t < ids.Length; t++)
            {
                e.PersistentGrid = gridAt(t);
                e.Forward(cache, new[] { new SequenceChunk(0, new[] { ids[t] }) }, false)[0].CopyTo(got, t * Vocab);
                if (persistent) Assert.Equal(workGrid(t), e.PersistentGridInUse);
            }

            Assert.Equal(persistent, e.PersistentSteps > before);
            return got;
        }
        finally
        {
            e.PersistentDecode = true;
            e.PersistentGrid = 0;
            e.PersistentSitOut = -1;
        }
    }

    /// <summary>
    /// The persistent kernel's grid (CudaLlamaEngine.PersistentGrid) changed in the middle of a sequence, on one cache:
    /// the grid-barrier counts restart and the step's graph is captured again, and every grid (other fused-MLP slices and
    /// o-row splits, so other sums) agrees with the multi-kernel path as the default does; the same grid twice gives the
    /// same bits.
    /// </summary>
    [GpuFact]
    public void PersistentGridCanChangeMidSequence()
    {
        var e = (CudaLlamaEngine)fx.Handle.Engine;
        var ids = Ints(fx.Reference.RootElement.GetProperty("logits").EnumerateArray().Last().GetProperty("ids"));
        int sms = e.MultiprocessorCount;
        int[] grids = { 0, sms - 4, sms - 4, 100, 0, sms - 4 };
        int GridAt(int t) => grids[t * grids.Length / ids.Length];
        int WorkGrid(int t) => GridAt(t) > 0 ? Math.Min(GridAt(t), sms) : sms;
        var multi = DecodeSteps(e, ids, false, _ => 0, 0, _ => 0);
        var mixed = DecodeSteps(e, ids, true, GridAt, 0, WorkGrid);
        var mixed2 = DecodeSteps(e, ids, true, GridAt, 0, WorkGrid);
        double d = ReferenceLlama.RelativeError(mixed, multi);
        output.WriteLine($"grids {string.Join(", ", grids)} over {ids.Length} steps ({sms} multiprocessors): relative difference to the multi-kernel path {d:E2}");
        Assert.InRange(d, 0, 1e-3);
        Assert.Equal(mixed, mixed2);
        for (int t = 0; t < ids.Length; t++)
            Assert.Equal(Sampler.ArgMax(multi.AsSpan(t * Vocab, Vocab)), Sampler.ArgMax(mixed.AsSpan(t * Vocab, Vocab)));
    }

    /// <summary>
    /// Multiprocessors sitting out (CudaLlamaEngine.PersistentSitOut: one block per multiprocessor from the
    /// MK_VIRTUAL_BLOCKS build, work ids by %smid): the same work division as a launch of that many blocks, so the same
    /// bits, whichever multiprocessors take which work ids.
    /// </summary>
    [GpuFact]
    public void SitOutGivesTheBitsOfTheSameWorkGrid()
    {
        var e = (CudaLlamaEngine)fx.Handle.Engine;
        var ids = Ints(fx.Reference.RootElement.GetProperty("logits").EnumerateArray().Last().GetProperty("ids"));
        int sms = e.MultiprocessorCount;
        var plain = DecodeSteps(e, ids, true, _ => sms - 4, 0, _ => sms - 4);
        var sitting = DecodeSteps(e, ids, true, _ => 0, 4, _ => sms - 4);
        output.WriteLine($"sitting out: {string.Join(' ', e.SittingOut)} of {sms} multiprocessors");
        Assert.Equal(4, e.SittingOut.Count);
        Assert.Equal(plain, sitting);
        Assert.Equal(sitting, DecodeSteps(e, ids, true, _ => 0, 4, _ => sms - 4));
    }

    /// <summary>
    /// The q/k/v rows made by kv group, attention waiting on its group's count instead of the grid barrier
    /// (-DMK_GROUP_QKV=1 through CudaLlamaEngine.PersistentDefines): the same sums in the same order, so the same bits
    /// as the grid barrier, in a plain launch and with multiprocessors sitting out (the fixture's 4 heads at a work grid of 64).
    /// </summary>
    [GpuFact]
    public void GroupQkvGivesTheSameBits()
    {
        var e = (CudaLlamaEngine)fx.Handle.Engine;
        var ids = Ints(fx.Reference.RootElement.GetProperty("logits").EnumerateArray().Last().GetProperty("ids"));
        int sms = e.MultiprocessorCount, grid = 64;
        Assert.True(CudaLlamaEngine.GroupQkvAppliesFor(grid, e.Nh, e.Nkv, e.Hd));
        var barrier = DecodeSteps(e, ids, true, _ => grid, 0, _ => grid);
        Assert.False(e.GroupQkvInUse);
        e.PersistentDefines = new[] { "-DMK_GROUP_QKV=1" };
        try
        {
            var grouped = DecodeSteps(e, ids, true, _ => grid, 0, _ => grid);
            Assert.True(e.GroupQkvInUse);
            Assert.Equal(barrier, grouped);
            // (the grid barrier's and the group counts' bases carry on from the launches before, whichever build made them)
            var sitting = DecodeSteps(e, ids, true, _ => 0, sms - grid, _ => grid);
            Assert.True(e.GroupQkvInUse);
            Assert.Equal(barrier, sitting);
        }
        finally
        {
            e.PersistentDefines = Array.Empty<string>();
        }

        Assert.Equal(barrier, DecodeSteps(e, ids, true, _ => grid, 0, _ => grid));
    }

    /// <summary>
    /// The down part's batches from each block's own start (MK_DOWN_ROTATE, the default) against every block in order
    /// (-DMK_DOWN_ROTATE=0 through CudaLlamaEngine.PersistentDefines): the same adds in another order, so the same bits,
    /// with every multiprocessor and with 4 sitting out.
    /// </summary>
    [GpuFact]
    public void RotatedDownBatchesGiveTheSameBits() => AssertBuildsGiveTheDefaultsBits("-DMK_DOWN_ROTATE=0");

    /// <summary>
    /// The persistent kernel's steps from the default build against each of <paramref name="builds"/> (one
    /// CudaLlamaEngine.PersistentDefines each, compiled as its own NVRTC build): the same bits with every multiprocessor
    /// and with 4 sitting out.
    /// </summary>
    private void AssertBuildsGiveTheDefaultsBits(params string[] builds)
    {
        var e = (CudaLlamaEngine)fx.Handle.Engine;
        var ids = Ints(fx.Reference.RootElement.GetProperty("logits").EnumerateArray().Last().GetProperty("ids"));
        int sms = e.MultiprocessorCount;
        var all = DecodeSteps(e, ids, true, _ => 0, 0, _ => sms);
        var sitting = DecodeSteps(e, ids, true, _ => 0, 4, _ => sms - 4);
        try
        {
            foreach (var build in builds)
            {
                e.PersistentDefines = new[] { build };
                Assert.Equal(all, DecodeSteps(e, ids, true, _ => 0, 0, _ => sms));
                Assert.Equal(sitting, DecodeSteps(e, ids, true, _ => 0, 4, _ => sms - 4));
            }
        }
        finally
        {
            e.PersistentDefines = Array.Empty<string>();
        }
    }

    /// <summary>
    /// Attention split over a head's blocks (flag 512 forces it at any length): the partials read back staged through
    /// shared memory with every load in flight (MK_ATTN_XCHG=1, the default) or part after part from L2 (-DMK_ATTN_XCHG=0)
    /// are the same sums in the same order, so the same bits, with every multiprocessor and with 4 sitting out.
    /// </summary>
    [GpuFact]
    public void SplitAttentionExchangeGivesTheSameBits()
    {
        var e = (CudaLlamaEngine)fx.Handle.Engine;
        int saved = e.PersistentFlags;
        try
        {
            e.PersistentFlags = 7389 | 512;
            AssertBuildsGiveTheDefaultsBits("-DMK_ATTN_XCHG=0");
        }
        finally
        {
            e.PersistentFlags = saved;
        }
    }

    /// <summary>
    /// The persistent kernel's arguments read from shared memory (MK_ARGS_SMEM=1, the default), from global memory
    /// (-DMK_ARGS_SMEM=0) and with each layer's pointers pulled ahead into shared memory too (-DMK_ARGS_SMEM=2): the
    /// same pointers, so the same bits, with every multiprocessor and with 4 sitting out.
    /// </summary>
    [GpuFact]
    public void ArgumentsInSharedMemoryGiveTheSameBits() => AssertBuildsGiveTheDefaultsBits("-DMK_ARGS_SMEM=0", "-DMK_ARGS_SMEM=2");

    [GpuFact]
    public void PerplexityWithinHalfAPercent()
    {
        var text = File.ReadAllText(Repo.Data("fortune-corpus", "test.txt"));
        var tokens = PerplexityCalculator.TokenStream(fx.Handle.Tokenizer, text);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var r = PerplexityCalculator.Compute(fx.Handle.Engine, tokens, 256);
        output.WriteLine($"perplexity {r.Perplexity:F4} over {r.ScoredTokens} tokens in {sw.Elapsed.TotalSeconds:F2} s (reference 80.072)");
        Assert.Equal(42585, r.ScoredTokens);
        Assert.InRange(r.Perplexity, 80.072 * 0.995, 80.072 * 1.005);
    }

    [GpuFact]
    public void GreedyGenerationOnTheDeviceMatchesStepByStepChoices()
    {
        var e = fx.Handle.Engine;
        var g = fx.Reference.RootElement.GetProperty("greedy").EnumerateArray().First();
        var prompt = Ints(g.GetProperty("prompt_ids"));
        var refIds = Ints(g.GetProperty("new_ids"));
        // host loop: one ForwardArgMax per token
        using var c1 = e.CreateCache(1, prompt.Length + 49);
        int next = e.ForwardArgMax(c1, new[] { new SequenceChunk(0, prompt) })[0];
        var hostIds = new List<int> { next };
        for (int i = 0; i < 47; i++)
        {
            next = e.ForwardArgMax(c1, new[] { new SequenceChunk(0, new[] { next }) })[0];
            hostIds.Add(next);
        }

        // device loop: the captured graph replayed 47 times
        using var c2 = e.CreateCache(1, prompt.Length + 49);
        int first = e.ForwardArgMax(c2, new[] { new SequenceChunk(0, prompt) })[0];
        var dec = ((IDeviceGreedyDecoder)e).DecodeGreedy(c2, new[] { first }, 47);
        var devIds = new List<int> { first };
        devIds.AddRange(dec.Ids.Select(s => s[0]));
        int agreeRef = hostIds.Zip(refIds).TakeWhile(z => z.First == z.Second).Count();
        output.WriteLine($"greedy: host and device loops agree on {hostIds.Zip(devIds).Count(z => z.First == z.Second)}/48; reference prefix {agreeRef}/48; {47 / dec.Seconds:F0} tok/s");
        Assert.True(hostIds.Zip(devIds).Count(z => z.First == z.Second) >= 44, "the device loop departs from the host loop");
        Assert.True(agreeRef >= 8, $"only the first {agreeRef} greedy tokens equal transformers' float32 ones");
        Assert.Equal(prompt.Length + 47, c2.Length(0)); // the 48th choice is not fed back yet
    }

    [GpuFact]
    public void InvokeGpuInferenceRunsOnCuda()
    {
        var host = new RecordingHost();
        new InvokeGpuInferenceOperation { Model = fx.Handle, Prompts = new[] { "A fortune:", "Love is" }, MaxTokens = 16, Temperature = 0, IgnoreEos = true }.Execute(host);
        var results = host.Objects.OfType<GpuInferenceResult>().ToList();
        Assert.Equal(2, results.Count);
        Assert.All(results, r => Assert.Equal(16, r.GeneratedTokens));
        Assert.All(results, r => Assert.StartsWith("cuda:", r.Device));
        output.WriteLine(string.Join(" | ", results.Select(r => r.Text.ReplaceLineEndings(" "))));
    }

    /// <summary>Energy from NVML's counter for the whole batch (a run long enough for the counter), and J/token over its new tokens.</summary>
    [GpuFact]
    public void InvokeGpuInferenceReportsTheBatchEnergy()
    {
        if (!GpuOps.Core.Native.NativeLibraries.IsAvailable(GpuOps.Core.Native.NativeLibraryKind.Nvml)) Assert.Skip("no NVML");
        var host = new RecordingHost();
        new InvokeGpuInferenceOperation { Model = fx.Handle, Prompts = new[] { "A fortune:", "Love is", "You will", "The sea" }, MaxTokens = 900, Temperature = 0, IgnoreEos = true }.Execute(host);
        var results = host.Objects.OfType<GpuInferenceResult>().ToList();
        Assert.Equal(4, results.Count);
        double j = Assert.IsType<double>(results[0].EnergyJoules);
        Assert.True(j > 0);
        Assert.All(results, r => Assert.Equal(j, r.EnergyJoules));
        Assert.Equal(j / results.Sum(r => r.GeneratedTokens), results[0].JoulesPerToken!.Value, 9);
        output.WriteLine($"{j:F1} J for {results.Sum(r => r.GeneratedTokens)} tokens in {results[0].TotalSeconds:F3} s: {results[0].JoulesPerToken:F4} J/token, {j / results[0].TotalSeconds:F0} W");
    }
}

/// <summary>Kernel-level checks: fresh random inputs, outputs poisoned with NaN before each run, CPU references in double.</summary>
public class CudaEngineKernelTests(ITestOutputHelper output)
{
    private static float Bf(ushort b) => BitConverter.UInt32BitsToSingle((uint)b << 16);

    private static ushort[] RandomBf16(Random rng, int n, double scale = 1) =>
        Enumerable.Range(0, n).Select(_ => CudaLlamaEngine.ToBf16((float)((rng.NextDouble() * 2 - 1) * scale))).ToArray();

    private sealed unsafe class Dev : IDisposable
    {
        public readonly CudaContext Ctx = CudaContext.Open(0);
        public readonly CudaModule Module;
        private readonly List<ulong> _bufs = new();

        public Dev()
        {
            Module = new CudaModule(Ctx, GpuOps.Cuda.Compile.KernelCache.Shared.GetCubin("engine/llama.cu", Ctx.Major, Ctx.Minor), "engine/llama.cu");
        }

        public ulong Up<T>(T[] a) where T : unmanaged
        {
            ulong p = Ctx.Allocate(Math.Max(1, a.Length) * sizeof(T), "test");
            _bufs.Add(p);
            fixed (T* h = a) Check(cuMemcpyHtoD(p, h, (nuint)(a.Length * sizeof(T))), "HtoD");
            return p;
        }

        public ulong Poisoned(long bytes)
        {
            ulong p = Ctx.Allocate(bytes, "test");
            _bufs.Add(p);
            Check(cuMemsetD8Async(p, 0xFF, (nuint)bytes, Ctx.Stream), "memset"); // NaN in float32 and bf16
            return p;
        }

        public T[] Down<T>(ulong p, int n) where T : unmanaged
        {
            Ctx.Synchronize();
            var a = new T[n];
            fixed (T* h = a) Check(cuMemcpyDtoH(h, p, (nuint)(n * sizeof(T))), "DtoH");
            return a;
        }

        public void Run(string name, (int, int, int) grid, int block, int smem, params KernelArg[] args) =>
            Launcher.Launch(Module.Function(name), name, Ctx.Stream, grid, block, smem, args);

        public void Dispose()
        {
            Ctx.Synchronize();
            foreach (var b in _bufs) Ctx.Free(b);
            Module.Dispose();
            Ctx.Dispose();
        }
    }

    [GpuTheory]
    [InlineData(1, 1, 0, 2, 520, 1032)]
    [InlineData(2, 0, 1, 1, 300, 704)]
    [InlineData(3, 1, 2, 2, 256, 4096)]
    [InlineData(1, 1, 3, 1, 333, 2048)]
    [InlineData(1, 0, 1, 2, 128, 14336)]
    [InlineData(2, 0, 2, 4, 254, 4096)]
    [InlineData(3, 0, 1, 4, 300, 704)]
    [InlineData(4, 0, 0, 4, 130, 1024)]
    [InlineData(4, 0, 3, 4, 333, 2048)]
    [InlineData(4, 0, 1, 4, 128, 14336)]
    public void GemvMatchesCpu(int B, int norm, int epi, int r, int n, int k)
    {
        var rng = new Random(Environment.TickCount);
        using var d = new Dev();
        if (epi == 2) n += n % 2;
        var w = RandomBf16(rng, n * k, 0.05);
        var bias = RandomBf16(rng, n);
        var gamma = RandomBf16(rng, k);
        var xf = Enumerable.Range(0, B * k).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var xb = RandomBf16(rng, B * k);
        var resid = Enumerable.Range(0, B * n).Select(_ => (float)rng.NextDouble()).ToArray();
        var sumsq = Enumerable.Range(0, B).Select(b => (float)Enumerable.Range(0, k).Sum(i => (double)xf[b * k + i] * xf[b * k + i])).ToArray();
        ulong dW = d.Up(w), dB = d.Up(bias), dG = d.Up(gamma), dIn = norm == 1 ? d.Up(xf) : d.Up(xb), dS = d.Up(sumsq);
        int outN = epi == 2 ? n / 2 : n;
        ulong dY = epi == 1 ? d.Up(resid) : d.Poisoned((long)B * outN * 4);
        int grid = (n + 4 * r - 1) / (4 * r);
        if (r == 4) grid = Math.Min(grid, 3); // warps stride over the row groups
        ulong dSo = d.Up(new float[B + 1 + grid * B]); // [B] sums, counter, per-block partials
        bool useBias = epi != 3;
        d.Run($"gemv_b{B}_n{norm}_e{epi}_r{r}", (grid, 1, 1), 128, 0, dW, useBias ? dB : 0UL, n, k, dIn, dG, dS, 1e-5f, dY, dSo);
        if (epi == 1)
        {
            // the sum of squares is the same bits on every run (per-block partials added in block order by the last block)
            ulong dY2 = d.Up(resid), dSo2 = d.Up(new float[B + 1 + grid * B]);
            d.Run($"gemv_b{B}_n{norm}_e{epi}_r{r}", (grid, 1, 1), 128, 0, dW, useBias ? dB : 0UL, n, k, dIn, dG, dS, 1e-5f, dY2, dSo2);
            var so = d.Down<float>(dSo, B + 1);
            Assert.Equal(so.Take(B).Select(BitConverter.SingleToInt32Bits), d.Down<float>(dSo2, B).Select(BitConverter.SingleToInt32Bits));
            Assert.Equal(0, BitConverter.SingleToInt32Bits(so[B])); // the counter is back at zero for the next use
        }
        var want = new double[B * outN];
        var wantSq = new double[B];
        for (int b = 0; b < B; b++)
        {
            double rs = 1 / Math.Sqrt(sumsq[b] / k + 1e-5);
            var acc = new double[n];
            for (int row = 0; row < n; row++)
            {
                double s = 0;
                for (int i = 0; i < k; i++)
                {
                    double x = norm == 1 ? xf[b * k + i] * rs * Bf(gamma[i]) : Bf(xb[b * k + i]);
                    s += Bf(w[(long)row * k + i]) * x;
                }

                acc[row] = s + (useBias ? Bf(bias[row]) : 0);
            }

            for (int j = 0; j < outN; j++)
            {
                want[b * outN + j] = epi switch
                {
                    2 => acc[2 * j] / (1 + Math.Exp(-acc[2 * j])) * acc[2 * j + 1],
                    1 => resid[b * n + j] + acc[j],
                    _ => acc[j],
                };
                if (epi == 1) wantSq[b] += want[b * outN + j] * want[b * outN + j];
            }
        }

        double[] got = epi is 1 or 3 ? d.Down<float>(dY, B * outN).Select(v => (double)v).ToArray() : d.Down<ushort>(dY, B * outN).Select(v => (double)Bf(v)).ToArray();
        Assert.All(got, v => Assert.True(double.IsFinite(v), "unwritten or non-finite output"));
        double err = Math.Sqrt(got.Zip(want).Sum(z => (z.First - z.Second) * (z.First - z.Second)) / want.Sum(v => v * v));
        output.WriteLine($"gemv B={B} norm={norm} epi={epi} r={r} {n}x{k}: relative error {err:E2}");
        Assert.InRange(err, 0, epi is 1 or 3 ? 1e-5 : 6e-3);
        if (epi == 1)
        {
            var sq = d.Down<float>(dSo, B);
            for (int b = 0; b < B; b++) Assert.InRange(Math.Abs(sq[b] - wantSq[b]) / wantSq[b], 0, 1e-4);
        }
    }

    /// <summary>
    /// The fused q/k/v kernel (projection, RoPE on adjacent pairs, KV-cache write) gives the same bits as the plain GEMV
    /// followed by rope_kv (interleaved layout): q rows in the q/k/v buffer, k and v at (slot, position) in the cache.
    /// </summary>
    [GpuTheory]
    [InlineData(1, 1, 2, 64, 4, 2)]
    [InlineData(1, 0, 2, 128, 4, 1)]
    [InlineData(3, 0, 4, 64, 6, 2)]
    [InlineData(4, 0, 4, 128, 2, 2)]
    public void FusedQkvKernelMatchesGemvAndRopeKv(int B, int norm, int r, int hd, int nh, int nkv)
    {
        var rng = new Random(Environment.TickCount);
        using var d = new Dev();
        int k = 512, n = (nh + 2 * nkv) * hd, maxCtx = 50, slots = 5;
        var w = RandomBf16(rng, n * k, 0.05);
        var bias = RandomBf16(rng, n);
        var gamma = RandomBf16(rng, k);
        var xf = Enumerable.Range(0, B * k).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var xb = RandomBf16(rng, B * k);
        var sumsq = Enumerable.Range(0, B).Select(b => (float)Enumerable.Range(0, k).Sum(i => (double)xf[b * k + i] * xf[b * k + i])).ToArray();
        var slot = Enumerable.Range(0, B).Select(b => (b * 3 + 1) % slots).ToArray();
        var pos = Enumerable.Range(0, B).Select(_ => rng.Next(maxCtx)).ToArray();
        var inv = Rope.InverseFrequencies(hd, 500000, null);
        ulong dW = d.Up(w), dB = d.Up(bias), dG = d.Up(gamma), dIn = norm == 1 ? d.Up(xf) : d.Up(xb), dS = d.Up(sumsq);
        ulong ds = d.Up(slot), dp = d.Up(pos), di = d.Up(inv);
        long cacheBytes = (long)slots * nkv * maxCtx * hd * 2;
        ulong qA = d.Poisoned((long)B * n * 2), kA = d.Poisoned(cacheBytes), vA = d.Poisoned(cacheBytes);
        ulong qB = d.Poisoned((long)B * n * 2), kB = d.Poisoned(cacheBytes), vB = d.Poisoned(cacheBytes);
        int grid = Math.Min((n / r + 3) / 4, 5); // warps stride over the row groups
        d.Run($"gemv_b{B}_n{norm}_e0_r{r}", (grid, 1, 1), 128, 0, dW, dB, n, k, dIn, dG, dS, 1e-5f, qA, 0UL);
        d.Run("rope_kv", (B, 1, 1), 256, 0, qA, 0UL, ds, dp, di, kA, vA, nh, nkv, hd, maxCtx, 1, 0UL);
        d.Run($"gemv_qkv_b{B}_n{norm}_r{r}", (grid, 1, 1), 128, 0, dW, dB, n, k, dIn, dG, dS, 1e-5f, qB, 0UL, ds, dp, di, kB, vB, nh, nkv, hd, maxCtx);
        var a = d.Down<ushort>(qA, B * n);
        var b2 = d.Down<ushort>(qB, B * n);
        for (int b = 0; b < B; b++)
            Assert.True(a.AsSpan(b * n, nh * hd).SequenceEqual(b2.AsSpan(b * n, nh * hd)), $"q of sequence {b}");
        foreach (var (x, y, what) in new[] { (kA, kB, "k"), (vA, vB, "v") })
        {
            var ca = d.Down<ushort>(x, (int)(cacheBytes / 2));
            var cb = d.Down<ushort>(y, (int)(cacheBytes / 2));
            for (int b = 0; b < B; b++)
                for (int h = 0; h < nkv; h++)
                {
                    int at = ((slot[b] * nkv + h) * maxCtx + pos[b]) * hd;
                    Assert.True(ca.AsSpan(at, hd).SequenceEqual(cb.AsSpan(at, hd)), $"{what} of sequence {b}, head {h}");
                    Assert.DoesNotContain((ushort)0xFFFF, cb.AsSpan(at, hd).ToArray());
                }
        }

        output.WriteLine($"fused q/k/v B={B} norm={norm} r={r} hd={hd} nh={nh} nkv={nkv}: identical to gemv + rope_kv");
    }

    /// <summary>Prefill (tensor-core) and per-token attention kernels against a CPU reference, causal, GQA, with and without a window.</summary>
    [GpuTheory]
    [InlineData(64, 100, 37, 4, 2, 0)]
    [InlineData(128, 130, 0, 8, 2, 0)]
    [InlineData(128, 70, 20, 4, 4, 33)]
    // tile edges on a warp's last row or a window's edge (attn_prefill2's per-warp skip and mask conditions)
    [InlineData(128, 31, 33, 4, 2, 128)]
    [InlineData(128, 130, 97, 4, 2, 35)]
    [InlineData(64, 200, 33, 4, 4, 99)]
    [InlineData(128, 129, 97, 8, 2, 3)]
    [InlineData(64, 257, 0, 4, 2, 34)]
    public void AttentionKernelsMatchCpu(int hd, int tq, int q0, int nh, int nkv, int window)
    {
        var rng = new Random(Environment.TickCount);
        using var d = new Dev();
        int maxCtx = q0 + tq + 5, slots = 2, slot = 1, qkvDim = (nh + 2 * nkv) * hd;
        var qkv = RandomBf16(rng, tq * qkvDim);
        var kc = RandomBf16(rng, slots * nkv * maxCtx * hd);
        var vc = RandomBf16(rng, slots * nkv * maxCtx * hd);
        ulong dq = d.Up(qkv), dk = d.Up(kc), dv = d.Up(vc);
        float scale = 1f / MathF.Sqrt(hd);
        ulong o1 = d.Poisoned((long)tq * nh * hd * 2), o2 = d.Poisoned((long)tq * nh * hd * 2), o3 = d.Poisoned((long)tq * nh * hd * 2);
        foreach (var (kernel, o) in new[] { ("attn_prefill", o1), ("attn_prefill2", o3) })
        {
            int smem = CudaLlamaEngine.PrefillAttentionSharedBytes(d.Module.Function($"{kernel}_hd{hd}"), kernel, hd), rows = CudaLlamaEngine.PrefillAttentionRows(kernel);
            d.Run($"{kernel}_hd{hd}", ((tq + rows - 1) / rows, nh, 1), 128, smem, dq, dk, dv, o, tq, q0, slot, nh, nkv, maxCtx, window, scale);
        }
        var slotIds = Enumerable.Repeat(slot, tq).ToArray();
        var pos = Enumerable.Range(q0, tq).ToArray();
        ulong ds = d.Up(slotIds), dp = d.Up(pos);
        d.Run($"attn_token_hd{hd}", (tq, nh, 1), 128, (hd + 1024 + maxCtx) * 4, dq, dk, dv, o2, ds, dp, nh, nkv, maxCtx, window, scale);
        var want = new double[tq * nh * hd];
        for (int t = 0; t < tq; t++)
        {
            for (int h = 0; h < nh; h++)
            {
                int kvh = h / (nh / nkv), p = q0 + t, start = window > 0 ? Math.Max(0, p - window + 1) : 0;
                var sc = new double[p + 1];
                double mx = double.NegativeInfinity;
                for (int j = start; j <= p; j++)
                {
                    double s = 0;
                    for (int e = 0; e < hd; e++) s += Bf(qkv[t * qkvDim + h * hd + e]) * Bf(kc[((slot * nkv + kvh) * maxCtx + j) * hd + e]);
                    sc[j] = s * scale;
                    mx = Math.Max(mx, sc[j]);
                }

                double sum = 0;
                for (int j = start; j <= p; j++) sum += sc[j] = Math.Exp(sc[j] - mx);
                for (int e = 0; e < hd; e++)
                {
                    double a = 0;
                    for (int j = start; j <= p; j++) a += sc[j] * Bf(vc[((slot * nkv + kvh) * maxCtx + j) * hd + e]);
                    want[(t * nh + h) * hd + e] = a / sum;
                }
            }
        }

        foreach (var (name, buf) in new[] { ("prefill", o1), ("token", o2), ("prefill2", o3) })
        {
            var got = d.Down<ushort>(buf, tq * nh * hd).Select(v => (double)Bf(v)).ToArray();
            Assert.All(got, v => Assert.True(double.IsFinite(v), $"{name}: unwritten or non-finite output"));
            double err = Math.Sqrt(got.Zip(want).Sum(z => (z.First - z.Second) * (z.First - z.Second)) / want.Sum(v => v * v));
            output.WriteLine($"attention {name} hd={hd} tq={tq} q0={q0} nh={nh} nkv={nkv} window={window}: relative error {err:E2}");
            Assert.InRange(err, 0, 1.5e-2);
        }
    }

    [GpuFact]
    public void RopeKvRotatesAndWritesTheCache()
    {
        var rng = new Random(Environment.TickCount);
        using var d = new Dev();
        int T = 5, nh = 4, nkv = 2, hd = 64, maxCtx = 40, slots = 3, qkvDim = (nh + 2 * nkv) * hd;
        foreach (int layout in new[] { 0, 1 })
        {
            var qkv = RandomBf16(rng, T * qkvDim);
            var bias = RandomBf16(rng, qkvDim);
            var inv = Rope.InverseFrequencies(hd, 10000, null);
            var slot = new[] { 2, 0, 1, 2, 0 };
            var pos = new[] { 0, 7, 39, 13, 21 };
            ulong dq = d.Up(qkv), db = d.Up(bias), ds = d.Up(slot), dp = d.Up(pos), di = d.Up(inv);
            ulong kc = d.Poisoned((long)slots * nkv * maxCtx * hd * 2), vc = d.Poisoned((long)slots * nkv * maxCtx * hd * 2);
            // with the (cos, sin) table for layout 1 (as prefill runs it), computed in place for layout 0
            ulong cs = 0;
            if (layout == 1)
            {
                cs = d.Poisoned((long)T * hd / 2 * 8);
                d.Run("rope_table", (4, 1, 1), 256, 0, dp, di, cs, T, hd / 2);
            }

            d.Run("rope_kv", (T, 1, 1), 256, 0, dq, db, ds, dp, di, kc, vc, nh, nkv, hd, maxCtx, layout, cs);
            var outQ = d.Down<ushort>(dq, T * qkvDim);
            var kcH = d.Down<ushort>(kc, slots * nkv * maxCtx * hd);
            var vcH = d.Down<ushort>(vc, slots * nkv * maxCtx * hd);
            double worst = 0;
            for (int t = 0; t < T; t++)
            {
                for (int head = 0; head < nh + 2 * nkv; head++)
                {
                    for (int e = 0; e < hd; e++)
                    {
                        int idx = t * qkvDim + head * hd + e;
                        double x = Bf(qkv[idx]) + Bf(bias[head * hd + e]);
                        double want = x;
                        if (head < nh + nkv)
                        {
                            int half = hd / 2, i, partner;
                            bool first;
                            if (layout == 0) { i = e % half; first = e < half; partner = first ? e + half : e - half; }
                            else { i = e / 2; first = e % 2 == 0; partner = first ? e + 1 : e - 1; }
                            double y = Bf(qkv[t * qkvDim + head * hd + partner]) + Bf(bias[head * hd + partner]);
                            double ang = (float)pos[t] * inv[i];
                            want = first ? x * Math.Cos(ang) - y * Math.Sin(ang) : x * Math.Cos(ang) + y * Math.Sin(ang);
                        }

                        double got = Bf(outQ[idx]);
                        worst = Math.Max(worst, Math.Abs(got - want));
                        if (head >= nh)
                        {
                            bool isK = head < nh + nkv;
                            int kh = isK ? head - nh : head - nh - nkv;
                            var cache = isK ? kcH : vcH;
                            Assert.Equal(outQ[idx], cache[((slot[t] * nkv + kh) * maxCtx + pos[t]) * hd + e]);
                        }
                    }
                }
            }

            output.WriteLine($"rope_kv layout {layout}: worst absolute error {worst:E2} (values up to 2)");
            Assert.InRange(worst, 0, 2e-2);
        }
    }

    [GpuFact]
    public void ArgmaxAdvancesTheDecodeState()
    {
        var rng = new Random(Environment.TickCount);
        using var d = new Dev();
        int B = 3, V = 50000;
        var logits = Enumerable.Range(0, B * V).Select(_ => (float)rng.NextDouble()).ToArray();
        var want = Enumerable.Range(0, B).Select(b => Sampler.ArgMax(logits.AsSpan(b * V, V))).ToArray();
        ulong dl = d.Up(logits), tok = d.Up(new int[B]), pos = d.Up(new[] { 5, 6, 7 }), outp = d.Up(new int[4 * B]), cnt = d.Up(new[] { 2, 2, 2 });
        d.Run("argmax_rows", (B, 1, 1), 1024, 0, dl, V, B, tok, pos, outp, cnt, 1);
        Assert.Equal(want, d.Down<int>(tok, B));
        Assert.Equal(new[] { 6, 7, 8 }, d.Down<int>(pos, B));
        Assert.Equal(new[] { 3, 3, 3 }, d.Down<int>(cnt, B));
        Assert.Equal(want, d.Down<int>(outp, 4 * B).Skip(2 * B).Take(B).ToArray());
    }

    [GpuFact]
    public unsafe void StagedUploadPlacesEverySegment()
    {
        var rng = new Random(Environment.TickCount);
        using var ctx = CudaContext.Open(0);
        const int n = 5_000_000;
        var src = new byte[n];
        rng.NextBytes(src);
        var h = GCHandle.Alloc(src, GCHandleType.Pinned);
        try
        {
            // segments: rows of 4000 bytes placed interleaved (the gate/up layout) plus a tail, with gaps
            var segs = new List<UploadSegment>();
            long dst = 0;
            var expected = new byte[2 * n + 1000];
            for (int off = 0, row = 0; off < n; off += 4000, row++)
            {
                int len = Math.Min(4000, n - off);
                long at = (row % 2 == 0 ? row / 2 : n / 4000 / 2 + 1 + row / 2) * 4096L;
                segs.Add(new UploadSegment(h.AddrOfPinnedObject() + off, len, at));
                Array.Copy(src, off, expected, at, len);
                dst = Math.Max(dst, at + len);
            }

            ulong arena = ctx.Allocate(dst, "test arena");
            try
            {
                var stats = CudaWeightUpload.Upload(ctx, arena, dst, segs.ToArray(), chunkBytes: 1 << 20, buffers: 3, threads: 4);
                var back = new byte[dst];
                fixed (byte* b = back) Check(cuMemcpyDtoH(b, arena, (nuint)dst), "DtoH");
                foreach (var s in segs)
                {
                    Assert.True(back.AsSpan((int)s.Destination, (int)s.Length).SequenceEqual(expected.AsSpan((int)s.Destination, (int)s.Length)), $"segment at {s.Destination}");
                }

                output.WriteLine($"{stats.Bytes} bytes in {stats.Chunks} chunks: {stats.GigabytesPerSecond:F2} GB/s");
            }
            finally
            {
                ctx.Free(arena);
            }
        }
        finally
        {
            h.Free();
        }
    }
}
