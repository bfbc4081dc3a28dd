using GpuOps.Core.Engine;
using GpuOps.Core.Hosting;
using Xunit;

namespace GpuOps.Tests.Engine;

public class SamplingTests
{
    [Fact]
    public void GreedyIsArgMaxWithTheFirstIndexOnTies()
    {
        Assert.Equal(1, Sampler.ArgMax(new float[] { 1, 5, 5, -2 }));
        var s = new Sampler(new SamplingOptions());
        Assert.True(s.Options.Greedy);
        Assert.Equal(2, s.Next(new float[] { 0.1f, -3, 7, 6.9f }, Array.Empty<int>()));
    }

    [Fact]
    public void RepetitionPenaltyDividesPositiveAndMultipliesNegativeScoresOncePerToken()
    {
        var l = new float[] { 2, -2, 1, 4 };
        Sampler.ApplyRepetitionPenalty(l, new[] { 0, 1, 1, 1 }, 2.0);
        Assert.Equal(new float[] { 1, -4, 1, 4 }, l);
        // Greedy with a penalty: the repeated best token loses to the next one.
        var s = new Sampler(new SamplingOptions(RepetitionPenalty: 3));
        Assert.Equal(3, s.Next(new float[] { 5, 0, 0, 4 }, new[] { 0 }));
    }

    [Fact]
    public void ASeedMakesSamplingReproducible()
    {
        var o = new SamplingOptions(Temperature: 1.5, Seed: 42);
        var logits = Enumerable.Range(0, 50).Select(i => (float)Math.Sin(i)).ToArray();
        int[] Draw(SamplingOptions opts, int seq = 0)
        {
            var s = new Sampler(opts, seq);
            return Enumerable.Range(0, 200).Select(_ => s.Next(logits.ToArray(), Array.Empty<int>())).ToArray();
        }

        var first = Draw(o);
        var again = Draw(o); // a fresh sampler with the same seed
        Assert.Equal(first, again);
        Assert.NotEqual(Draw(o), Draw(o with { Seed = 43 }));
        Assert.NotEqual(Draw(o, 0), Draw(o, 1)); // each sequence of a batch draws its own stream
        Assert.True(Draw(o).Distinct().Count() > 10);
    }

    [Fact]
    public void TemperatureSamplesFromTheSoftmax()
    {
        // p = softmax([0, ln 3]) = [0.25, 0.75]; at temperature 1 the frequency of token 1 is near 0.75.
        var s = new Sampler(new SamplingOptions(Temperature: 1, Seed: 7));
        int ones = Enumerable.Range(0, 4000).Count(_ => s.Next(new[] { 0f, MathF.Log(3) }, Array.Empty<int>()) == 1);
        Assert.InRange(ones / 4000.0, 0.72, 0.78);
        // A high temperature flattens it towards 0.5.
        var hot = new Sampler(new SamplingOptions(Temperature: 100, Seed: 7));
        int hotOnes = Enumerable.Range(0, 4000).Count(_ => hot.Next(new[] { 0f, MathF.Log(3) }, Array.Empty<int>()) == 1);
        Assert.InRange(hotOnes / 4000.0, 0.46, 0.54);
    }

    [Fact]
    public void TopKAndTopPKeepOnlyTheBestCandidates()
    {
        var logits = new[] { 0f, 3f, 2.9f, 1f, -1f };
        var k2 = new Sampler(new SamplingOptions(Temperature: 5, TopK: 2, Seed: 1));
        var picks = Enumerable.Range(0, 500).Select(_ => k2.Next(logits.ToArray(), Array.Empty<int>())).ToHashSet();
        Assert.Equal(new HashSet<int> { 1, 2 }, picks);

        var k1 = new Sampler(new SamplingOptions(Temperature: 5, TopK: 1, Seed: 1));
        Assert.All(Enumerable.Range(0, 50), _ => Assert.Equal(1, k1.Next(logits.ToArray(), Array.Empty<int>())));

        // probabilities 0.5, 0.3, 0.2: top-p 0.6 keeps the first two (0.5 < 0.6 ≤ 0.8).
        var probs = new[] { MathF.Log(0.5f), MathF.Log(0.3f), MathF.Log(0.2f) };
        var p = new Sampler(new SamplingOptions(Temperature: 1, TopP: 0.6, Seed: 3));
        var pp = Enumerable.Range(0, 1000).Select(_ => p.Next(probs.ToArray(), Array.Empty<int>())).ToList();
        Assert.DoesNotContain(2, pp);
        Assert.InRange(pp.Count(x => x == 0) / 1000.0, 0.55, 0.70); // 0.5/0.8 = 0.625

        var tiny = new Sampler(new SamplingOptions(Temperature: 1, TopP: 0.01, Seed: 3));
        Assert.All(Enumerable.Range(0, 50), _ => Assert.Equal(0, tiny.Next(probs.ToArray(), Array.Empty<int>())));
    }

    [Theory]
    [InlineData(-1, 0, 1, 1, "InvalidTemperature")]
    [InlineData(1, -1, 1, 1, "InvalidTopK")]
    [InlineData(1, 0, 0, 1, "InvalidTopP")]
    [InlineData(1, 0, 1.5, 1, "InvalidTopP")]
    [InlineData(1, 0, 1, 0, "InvalidRepetitionPenalty")]
    public void InvalidOptionsAreArgumentErrors(double t, int k, double p, double r, string id)
    {
        var ex = Assert.Throws<GpuOpsException>(() => new Sampler(new SamplingOptions(t, k, p, r)));
        Assert.Equal(id, ex.ErrorId);
        Assert.Equal(ErrorCategory.InvalidArgument, ex.Category);
    }

    [Fact]
    public void StreamingHoldsBackPartialCharactersAndPossibleStopStrings()
    {
        Assert.Equal(3, TextGenerator.SafeEmitLength("abc\uFFFD", Array.Empty<string>()));
        Assert.Equal(4, TextGenerator.SafeEmitLength("abcd\n", new[] { "\n\n" }));
        Assert.Equal(5, TextGenerator.SafeEmitLength("abcde", new[] { "xyz" }));
        Assert.Equal(1, TextGenerator.FirstStop("a\n\nb\n\n", new[] { "b", "\n\n" }));
        Assert.Equal(-1, TextGenerator.FirstStop("abc", new[] { "x", "" }));
    }
}
