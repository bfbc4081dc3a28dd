using GpuOps.Core.Engine;
using GpuOps.Core.Hosting;
using GpuOps.Core.Models;
using Xunit;

namespace GpuOps.Tests.Engine;

public class ForwardMathTests
{
    private static LlamaCpuEngine Engine(LlamaConfig c, IWeightSource w) => new(LlamaWeights.Load(c, w));

    private static float[] Prefill(LlamaCpuEngine e, int[] tokens)
    {
        var cache = e.CreateCache(1, 64);
        return e.Forward(cache, new[] { new SequenceChunk(0, tokens) }, allLogits: true)[0];
    }

    private static readonly int[] Tokens = { 3, 17, 42, 5, 96, 0, 11, 11, 60 };

    [Theory]
    [InlineData(false, false, null)]
    [InlineData(true, true, null)]
    [InlineData(false, true, "llama3")]
    [InlineData(true, false, "linear")]
    public void PrefillMatchesThePlainReference(bool tied, bool bias, string? scaling)
    {
        var rs = scaling switch
        {
            "llama3" => new RopeScaling("llama3", 8, 1, 4, 32),
            "linear" => new RopeScaling("linear", 2),
            _ => null,
        };
        var (c, w) = MemoryWeights.Random(1, tied: tied, qkvBias: bias, scaling: rs, theta: 500000);
        var got = Prefill(Engine(c, w), Tokens);
        var want = ReferenceLlama.Logits(c, w, Tokens);
        Assert.Equal(want.Length, got.Length);
        Assert.InRange(ReferenceLlama.RelativeError(got, want), 0, 1e-5);
    }

    [Fact]
    public void MultiQueryAndSlidingWindowMatchTheReference()
    {
        var (c, w) = MemoryWeights.Random(2, heads: 6, kvHeads: 1, headDim: 8, slidingWindow: 4);
        var got = Prefill(Engine(c, w), Tokens);
        var want = ReferenceLlama.Logits(c, w, Tokens);
        Assert.InRange(ReferenceLlama.RelativeError(got, want), 0, 1e-5);

        // The window matters: without it the logits differ.
        var (c2, _) = MemoryWeights.Random(2, heads: 6, kvHeads: 1, headDim: 8);
        var full = ReferenceLlama.Logits(c2, w, Tokens);
        Assert.True(ReferenceLlama.RelativeError(got, full) > 1e-3);
    }

    [Fact]
    public void InterleavedLayoutOnPermutedWeightsEqualsRotateHalfOnOriginalWeights()
    {
        var (c, w) = MemoryWeights.Random(3, qkvBias: true);
        var want = Prefill(Engine(c, w), Tokens);
        var permuted = new MemoryWeights(RopeLayout.Interleaved);
        foreach (var name in w.Names)
        {
            var data = w.Get(name);
            var info = w.GetInfo(name);
            bool q = name.EndsWith("q_proj.weight") || name.EndsWith("q_proj.bias");
            bool k = name.EndsWith("k_proj.weight") || name.EndsWith("k_proj.bias");
            int cols = info.Shape.Length == 2 ? (int)info.Shape[1] : 1;
            if (q) data = ReferenceLlama.PermuteRows(data, c.NumHeads, cols);
            if (k) data = ReferenceLlama.PermuteRows(data, c.NumKeyValueHeads, cols);
            permuted.Add(name, data, info.Shape);
        }

        var got = Prefill(Engine(c, permuted), Tokens);
        Assert.InRange(ReferenceLlama.RelativeError(got, want), 0, 1e-6);
        // And the plain reference agrees when it also uses the interleaved layout.
        Assert.InRange(ReferenceLlama.RelativeError(got, ReferenceLlama.Logits(c, permuted, Tokens)), 0, 1e-5);
    }

    [Fact]
    public void DecodingTokenByTokenEqualsPrefill()
    {
        var (c, w) = MemoryWeights.Random(4);
        var e = Engine(c, w);
        var full = Prefill(e, Tokens);
        var cache = e.CreateCache(1, 32);
        int V = c.VocabSize;
        var first = e.Forward(cache, new[] { new SequenceChunk(0, Tokens[..3]) }, allLogits: false)[0];
        Assert.InRange(ReferenceLlama.RelativeError(first, full.AsSpan(2 * V, V)), 0, 1e-6);
        for (int t = 3; t < Tokens.Length; t++)
        {
            var step = e.Forward(cache, new[] { new SequenceChunk(0, new[] { Tokens[t] }) }, allLogits: false)[0];
            Assert.InRange(ReferenceLlama.RelativeError(step, full.AsSpan(t * V, V)), 0, 1e-5);
        }

        Assert.Equal(Tokens.Length, cache.Length(0));
    }

    [Fact]
    public void ABatchOfSequencesOfDifferentLengthsEqualsEachAlone()
    {
        var (c, w) = MemoryWeights.Random(5, qkvBias: true);
        var e = Engine(c, w);
        int V = c.VocabSize;
        int[][] seqs = { new[] { 1, 2, 3, 4, 5, 6, 7 }, new[] { 9 }, new[] { 50, 40, 30 } };
        var alone = seqs.Select(s => Prefill(e, s)).ToArray();
        var cache = e.CreateCache(3, 16);
        // Slots in a different order than the sequences, to check the mapping.
        var batched = e.Forward(cache, new[] { new SequenceChunk(2, seqs[0]), new SequenceChunk(0, seqs[1]), new SequenceChunk(1, seqs[2]) }, allLogits: true);
        for (int i = 0; i < 3; i++) Assert.InRange(ReferenceLlama.RelativeError(batched[i], alone[i]), 0, 1e-6);

        // A mixed step: decode for two slots, a further chunk of three tokens for the third.
        var more = e.Forward(cache, new[] { new SequenceChunk(0, new[] { 8 }), new SequenceChunk(2, new[] { 10, 11, 12 }), new SequenceChunk(1, new[] { 20 }) }, allLogits: false);
        var want0 = Prefill(e, new[] { 9, 8 });
        var want2 = Prefill(e, seqs[0].Concat(new[] { 10, 11, 12 }).ToArray());
        var want1 = Prefill(e, new[] { 50, 40, 30, 20 });
        Assert.InRange(ReferenceLlama.RelativeError(more[0], want0.AsSpan(1 * V, V)), 0, 1e-5);
        Assert.InRange(ReferenceLlama.RelativeError(more[1], want2.AsSpan(9 * V, V)), 0, 1e-5);
        Assert.InRange(ReferenceLlama.RelativeError(more[2], want1.AsSpan(3 * V, V)), 0, 1e-5);
        Assert.Equal(new[] { 2, 4, 10 }, new[] { cache.Length(0), cache.Length(1), cache.Length(2) });
    }

    [Fact]
    public void AFullContextAndBadTokensAreClearErrors()
    {
        var (c, w) = MemoryWeights.Random(6);
        var e = Engine(c, w);
        var cache = e.CreateCache(1, 4);
        var ex = Assert.Throws<GpuOpsException>(() => e.Forward(cache, new[] { new SequenceChunk(0, new[] { 1, 2, 3, 4, 5 }) }, false));
        Assert.Equal("ContextFull", ex.ErrorId);
        Assert.Equal(ErrorCategory.LimitsExceeded, ex.Category);
        Assert.Equal(0, cache.Length(0));
        ex = Assert.Throws<GpuOpsException>(() => e.Forward(cache, new[] { new SequenceChunk(0, new[] { c.VocabSize }) }, false));
        Assert.Equal("TokenOutOfRange", ex.ErrorId);
    }

    [Fact]
    public void MissingOrMisshapenTensorsAreNamed()
    {
        var (c, w) = MemoryWeights.Random(7);
        var bad = new MemoryWeights();
        foreach (var n in w.Names.Where(n => n != "model.layers.1.mlp.up_proj.weight")) bad.Add(n, w.Get(n), w.GetInfo(n).Shape);
        var ex = Assert.Throws<GpuOpsException>(() => LlamaWeights.Load(c, bad));
        Assert.Equal("ModelTensorMissing", ex.ErrorId);
        Assert.Contains("model.layers.1.mlp.up_proj.weight", ex.Message);
        bad.Add("model.layers.1.mlp.up_proj.weight", new float[5], 5);
        ex = Assert.Throws<GpuOpsException>(() => LlamaWeights.Load(c, bad));
        Assert.Equal("ModelTensorShape", ex.ErrorId);
    }

    [Theory]
    [InlineData(1, 8, 4)]
    [InlineData(5, 13, 7)]
    [InlineData(50, 67, 130)]
    [InlineData(7, 256, 704)]
    public void MatMulMatchesANaiveLoop(int T, int K, int O)
    {
        var rng = new Random(T * 1000 + K);
        var x = Enumerable.Range(0, T * K).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var wt = Enumerable.Range(0, O * K).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var bias = Enumerable.Range(0, O).Select(_ => (float)rng.NextDouble()).ToArray();
        int ldy = O + 3;
        foreach (int? dop in new int?[] { 1, null })
        {
            var y = new float[T * ldy];
            CpuMath.MatMulTransposed(x, T, K, wt, O, y, ldy, 2, bias, dop);
            for (int t = 0; t < T; t++)
            {
                for (int o = 0; o < O; o++)
                {
                    double s = bias[o];
                    for (int k = 0; k < K; k++) s += (double)x[t * K + k] * wt[o * K + k];
                    Assert.Equal(s, y[t * ldy + 2 + o], 1e-4);
                }
            }
        }
    }

    [Fact]
    public void Llama3RopeScalingKeepsHighFrequenciesAndScalesLowOnes()
    {
        var s = new RopeScaling("llama3", 8, 1, 4, 8192);
        var plain = Rope.InverseFrequencies(128, 500000, null);
        var scaled = Rope.InverseFrequencies(128, 500000, s);
        var c = new LlamaConfig("x", "llama", 1, 1, 1, 1, 1, 1, 128, 1e-5, 500000, s, false, false, 1, "f32");
        var want = ReferenceLlama.InvFreq(c);
        Assert.Equal(plain[0], scaled[0]);                       // wavelength 2π < 2048: unchanged
        Assert.Equal(plain[63] / 8, scaled[63], plain[63] * 1e-5); // wavelength > 8192: divided by the factor
        for (int i = 0; i < 64; i++) Assert.Equal(want[i], scaled[i], Math.Abs(want[i]) * 1e-5);
        Assert.Throws<GpuOpsException>(() => Rope.InverseFrequencies(64, 10000, new RopeScaling("yarn", 4)));
    }
}
