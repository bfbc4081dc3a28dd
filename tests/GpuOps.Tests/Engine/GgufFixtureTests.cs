using System.Diagnostics;
using System.Text.Json;
using GpuOps.Core.Engine;
using GpuOps.Core.Formats;
using GpuOps.Core.Hosting;
using GpuOps.Core.Models;
using GpuOps.Tests.Support;
using Xunit;

namespace GpuOps.Tests.Engine;

public sealed class GgufReferenceFixture : IDisposable
{
    public GgufReferenceFixture()
    {
        Reference = JsonDocument.Parse(File.ReadAllText(Repo.Data("fortune-llama-gguf", "reference.json")));
        Logits = TestSafetensors.Read(Repo.Data("fortune-llama-gguf", "reference_logits.safetensors"));
    }

    public JsonDocument Reference { get; }
    public Dictionary<string, (long[] Shape, float[] Data)> Logits { get; }

    public JsonElement For(string type) => Reference.RootElement.GetProperty(type);

    public static string PathOf(string type) => Repo.Data("fortune-llama-gguf", $"fortune-llama-{type}.gguf");

    public void Dispose() => Reference.Dispose();
}

/// <summary>
/// The CPU float32 engine on the GGUF fixtures (F16, Q8_0, Q4_0, Q4_K_M mix, MXFP4 written and quantized by ggml)
/// against transformers' float32 results on each file's dequantized weights.
/// </summary>
public class GgufFixtureTests(GgufReferenceFixture fx, ITestOutputHelper output) : IClassFixture<GgufReferenceFixture>
{
    public static TheoryData<string> Types => new() { "f16", "q8_0", "q4_0", "q4_k_m", "mxfp4" };

    private static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();

    private void CheckLogits(string type, IInferenceEngine e, string what)
    {
        foreach (var p in fx.For(type).GetProperty("logits").EnumerateArray())
        {
            var ids = Ints(p.GetProperty("ids"));
            var got = e.Forward(e.CreateCache(1, ids.Length), new[] { new SequenceChunk(0, ids) }, allLogits: true)[0];
            double err = ReferenceLlama.RelativeError(got, fx.Logits[p.GetProperty("tensor").GetString()!].Data);
            output.WriteLine($"{type} {what} {p.GetProperty("tensor").GetString()}: relative error {err:E2}");
            Assert.InRange(err, 0, 1e-4);
        }
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void LogitsAndGreedyIdsMatchWithUnpermutedWeights(string type)
    {
        using var h = GpuModelHandle.Load(GgufReferenceFixture.PathOf(type), "cpu", "auto", null, CancellationToken.None);
        Assert.Equal("gguf", h.Format);
        Assert.Equal(RopeLayout.RotateHalf, ((LlamaCpuEngine)h.Engine).Weights.RopeLayout);
        CheckLogits(type, h.Engine, "rotate-half");

        var greedy = fx.For(type).GetProperty("greedy").EnumerateArray().ToList();
        var outs = TextGenerator.Generate(h.Engine, h.Tokenizer, greedy.Select(g => Ints(g.GetProperty("prompt_ids"))).ToList(),
            new GenerationOptions { MaxNewTokens = 48, IgnoreEos = true }, out _);
        for (int i = 0; i < greedy.Count; i++)
        {
            Assert.Equal(Ints(greedy[i].GetProperty("new_ids")), outs[i].NewIds);
            Assert.Equal(greedy[i].GetProperty("text").GetString(), outs[i].Text);
        }
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void LogitsMatchWithTheFilesPermutedWeightsAndInterleavedRope(string type)
    {
        using var source = GgufWeightSource.Open(GgufReferenceFixture.PathOf(type), GgufQkLayout.Stored);
        Assert.Equal(RopeLayout.Interleaved, source.RopeLayout);
        var config = ModelFiles.ReadConfig(GgufReferenceFixture.PathOf(type));
        var e = new LlamaCpuEngine(LlamaWeights.Load(config, source));
        Assert.Equal(RopeLayout.Interleaved, e.Rope.Layout);
        CheckLogits(type, e, "interleaved");
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void PerplexityMatchesTheFilesReference(string type)
    {
        var want = fx.For(type).GetProperty("perplexity");
        var host = new RecordingHost();
        var sw = Stopwatch.StartNew();
        new MeasureGpuPerplexityOperation { ModelPath = GgufReferenceFixture.PathOf(type), Path = Repo.Data("fortune-corpus", "test.txt"), Context = 256 }.Execute(host);
        var r = Assert.Single(host.ObjectsOf<GpuPerplexityResult>());
        output.WriteLine($"{type}: ppl {r.Ppl:F4} (reference {want.GetProperty("ppl").GetDouble():F4}) in {sw.Elapsed.TotalSeconds:F1} s");
        Assert.Equal(want.GetProperty("windows").GetInt32(), r.Windows);
        Assert.Equal(want.GetProperty("scored_tokens").GetInt64(), r.Tokens);
        Assert.InRange(Math.Abs(r.Ppl - want.GetProperty("ppl").GetDouble()) / want.GetProperty("ppl").GetDouble(), 0, 0.0005);
    }
}
