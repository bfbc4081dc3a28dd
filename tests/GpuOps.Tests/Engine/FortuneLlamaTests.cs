using System.Diagnostics;
using System.Text.Json;
using GpuOps.Core.Engine;
using GpuOps.Core.Hosting;
using GpuOps.Tests.Support;
using Xunit;

namespace GpuOps.Tests.Engine;

/// <summary>The fixture model loaded once for the tests of one class.</summary>
public sealed class FortuneLlamaFixture : IDisposable
{
    public FortuneLlamaFixture()
    {
        var sw = Stopwatch.StartNew();
        Handle = GpuModelHandle.Load(Repo.Data("fortune-llama"), "cpu", "auto", null, CancellationToken.None);
        LoadTime = sw.Elapsed;
        Reference = JsonDocument.Parse(File.ReadAllText(Repo.Data("fortune-llama", "reference.json")));
        Logits = TestSafetensors.Read(Repo.Data("fortune-llama", "reference_logits.safetensors"));
    }

    public GpuModelHandle Handle { get; }
    public TimeSpan LoadTime { get; }
    public JsonDocument Reference { get; }
    public Dictionary<string, (long[] Shape, float[] Data)> Logits { get; }

    public void Dispose()
    {
        Handle.Dispose();
        Reference.Dispose();
    }
}

/// <summary>The CPU float32 engine against transformers' float32 results on the fixture model (tests/data/README.md).</summary>
public class FortuneLlamaTests(FortuneLlamaFixture fx, ITestOutputHelper output) : IClassFixture<FortuneLlamaFixture>
{
    private static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();

    [Fact]
    public void LogitsMatchTransformersWithin1e4()
    {
        var e = fx.Handle.Engine;
        foreach (var p in fx.Reference.RootElement.GetProperty("logits").EnumerateArray())
        {
            var ids = Ints(p.GetProperty("ids"));
            Assert.Equal(ids, fx.Handle.Tokenizer.Encode(p.GetProperty("prompt").GetString()!));
            var got = e.Forward(e.CreateCache(1, ids.Length), new[] { new SequenceChunk(0, ids) }, allLogits: true)[0];
            var want = fx.Logits[p.GetProperty("tensor").GetString()!];
            Assert.Equal(new long[] { ids.Length, 4096 }, want.Shape);
            double err = ReferenceLlama.RelativeError(got, want.Data);
            output.WriteLine($"{p.GetProperty("prompt").GetString()!.ReplaceLineEndings(" ")}: relative error {err:E2}");
            Assert.InRange(err, 0, 1e-4);
            // The reference's top-5 of the last position, in order.
            var last = got.AsSpan((ids.Length - 1) * 4096, 4096).ToArray();
            var top5 = Enumerable.Range(0, 4096).OrderByDescending(i => last[i]).Take(5).ToArray();
            var refTop = Ints(p.GetProperty("last_top5"));
            Assert.Equal(refTop, top5);
        }
    }

    [Fact]
    public void GreedyIdsAreIdenticalFor48TokensWithAllPromptsInOneBatch()
    {
        var greedy = fx.Reference.RootElement.GetProperty("greedy").EnumerateArray().ToList();
        var prompts = greedy.Select(g => Ints(g.GetProperty("prompt_ids"))).ToList();
        var outs = TextGenerator.Generate(fx.Handle.Engine, fx.Handle.Tokenizer, prompts,
            new GenerationOptions { MaxNewTokens = 48, IgnoreEos = true, EosTokenIds = new[] { 1 } }, out var t);
        output.WriteLine($"batch of {prompts.Count}: TTFT {t.TimeToFirstToken.TotalMilliseconds:F1} ms, prefill {t.PrefillTokensPerSecond:F0} tok/s, decode {t.DecodeTokensPerSecond:F0} tok/s");
        for (int i = 0; i < greedy.Count; i++)
        {
            Assert.Equal(Ints(greedy[i].GetProperty("new_ids")), outs[i].NewIds);
            Assert.Equal(greedy[i].GetProperty("text").GetString(), outs[i].Text);
            Assert.Equal("length", outs[i].FinishReason);
        }
    }

    [Fact]
    public void GreedyOneByOneEqualsTheBatch()
    {
        var g = fx.Reference.RootElement.GetProperty("greedy")[1];
        var outs = TextGenerator.Generate(fx.Handle.Engine, fx.Handle.Tokenizer, new[] { Ints(g.GetProperty("prompt_ids")) },
            new GenerationOptions { MaxNewTokens = 48, IgnoreEos = true }, out _);
        Assert.Equal(Ints(g.GetProperty("new_ids")), outs[0].NewIds);
    }

    [Fact]
    public void StopsAtEosUnlessIgnoreEos()
    {
        // Reference greedy for "You will" emits EOS (id 1) as its 35th token.
        var g = fx.Reference.RootElement.GetProperty("greedy")[0];
        var want = Ints(g.GetProperty("new_ids"));
        int eosAt = Array.IndexOf(want, 1);
        Assert.True(eosAt > 0);
        var outs = TextGenerator.Generate(fx.Handle.Engine, fx.Handle.Tokenizer, new[] { Ints(g.GetProperty("prompt_ids")) },
            new GenerationOptions { MaxNewTokens = 48, EosTokenIds = new[] { 1 } }, out _);
        Assert.Equal(want[..(eosAt + 1)], outs[0].NewIds);
        Assert.Equal("eos", outs[0].FinishReason);
    }

    [Fact]
    public void PerplexityIs80_072WithTheReadmeProcedure()
    {
        var p = fx.Reference.RootElement.GetProperty("perplexity");
        var host = new RecordingHost();
        var sw = Stopwatch.StartNew();
        new MeasureGpuPerplexityOperation { Model = fx.Handle, Path = Repo.Data("fortune-corpus", "test.txt"), Context = 256 }.Execute(host);
        var r = Assert.Single(host.ObjectsOf<GpuPerplexityResult>());
        output.WriteLine($"ppl {r.Ppl:F4} over {r.Tokens} tokens in {r.Windows} windows: {sw.Elapsed.TotalSeconds:F1} s ({r.TokensPerSecond:F0} tok/s); model load {fx.LoadTime.TotalSeconds:F2} s");
        Assert.Equal(p.GetProperty("windows").GetInt32(), r.Windows);
        Assert.Equal(p.GetProperty("scored_tokens").GetInt64(), r.Tokens);
        Assert.False(r.Subset);
        double want = p.GetProperty("ppl").GetDouble();
        Assert.InRange(Math.Abs(r.Ppl - want) / want, 0, 0.0005);
        Assert.NotEmpty(host.Progress);
    }

    [Fact]
    public void TheTokenStreamEqualsTransformersIdsPlusEos()
    {
        var refIds = JsonDocument.Parse(File.ReadAllText(Repo.Data("fortune-llama", "reference_test_ids.json"))).RootElement.GetProperty("ids")
            .EnumerateArray().Select(Ints).ToList();
        var fromRef = PerplexityCalculator.TokenStream(refIds, 1);
        var ours = PerplexityCalculator.TokenStream(fx.Handle.Tokenizer, File.ReadAllText(Repo.Data("fortune-corpus", "test.txt")));
        Assert.Equal(fromRef, ours);
        Assert.Equal(167, ours.Length / 256);
    }
}
