using System.Text.Json;
using GpuOps.Tests.Foundation;
using GpuOps.Tests.Support;
using Xunit;

namespace GpuOps.Tests.Engine;

public class EngineCliTests
{
    private static string Model => Repo.Data("fortune-llama");

    [Fact]
    public void GenerateJsonHasTheGreedyIdsAndText()
    {
        using var reference = JsonDocument.Parse(File.ReadAllText(Repo.Data("fortune-llama", "reference.json")));
        var g = reference.RootElement.GetProperty("greedy")[2];
        var (code, stdout, stderr) = CliTests.Gpuops("generate", Model, "--prompt", g.GetProperty("prompt").GetString()!, "--max-tokens", "48",
            "--temperature", "0", "--device", "cpu", "--ignore-eos", "--json");
        Assert.True(code == 0, stderr);
        var line = Assert.Single(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        using var doc = JsonDocument.Parse(line);
        Assert.Equal(g.GetProperty("new_ids").EnumerateArray().Select(x => x.GetInt32()), doc.RootElement.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()));
        Assert.Equal(g.GetProperty("text").GetString(), doc.RootElement.GetProperty("text").GetString());
        Assert.Equal("cpu", doc.RootElement.GetProperty("device").GetString());
    }

    [Fact]
    public void GenerateWithSeveralPromptsPrintsOneLineEachAndStreamPrintsText()
    {
        var (code, stdout, _) = CliTests.Gpuops("generate", Model, "--prompt", "Love is", "--prompt", "You will", "--max-tokens", "4", "--json");
        Assert.Equal(0, code);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.All(lines, l => Assert.Equal(2, JsonDocument.Parse(l).RootElement.GetProperty("batchSize").GetInt32()));

        var (c2, text, _) = CliTests.Gpuops("generate", Model, "--prompt", "You will", "--max-tokens", "12", "--stream", "-q");
        Assert.Equal(0, c2);
        Assert.StartsWith(" be a man who has a better mind", text);
    }

    [Fact]
    public void PerplexityJsonHasPplAndTokens()
    {
        var (code, stdout, stderr) = CliTests.Gpuops("perplexity", Model, "--file", Repo.Data("fortune-corpus", "test.txt"), "--ctx", "64", "--max-windows", "4", "--device", "cpu", "--json");
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(Assert.Single(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        Assert.Equal(4 * 63, doc.RootElement.GetProperty("tokens").GetInt64());
        Assert.InRange(doc.RootElement.GetProperty("ppl").GetDouble(), 10, 1000);
        Assert.True(doc.RootElement.GetProperty("subset").GetBoolean());
    }

    [Fact]
    public void BenchInferencePrintsPrefillAndDecodeRows()
    {
        var (code, stdout, stderr) = CliTests.Gpuops("bench-inference", Model, "--prompt-lengths", "8", "--batch-sizes", "1", "2", "--decode-tokens", "2", "--copy-mib", "16", "--json");
        Assert.True(code == 0, stderr);
        var rows = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(new[] { "prefill", "decode", "decode" }, rows.Select(r => r.GetProperty("phase").GetString()));
        Assert.True(rows[1].GetProperty("boundTokensPerSecond").GetDouble() > 0);
    }

    [Theory]
    [InlineData("cuda", "needs an NVIDIA GPU")]
    [InlineData("tpu:0", "is not one of")]
    public void UnsupportedDevicesFailWithOneLine(string device, string message)
    {
        if (device == "cuda" && Gpu.Present) return; // with a GPU, cuda runs (tests/GpuOps.Tests/CudaEngine)
        var (code, stdout, stderr) = CliTests.Gpuops("generate", Model, "--prompt", "x", "--device", device);
        Assert.NotEqual(0, code);
        Assert.Empty(stdout.Trim());
        Assert.Contains(message, stderr);
        Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void AMissingModelFailsWithOneLine()
    {
        var (code, _, stderr) = CliTests.Gpuops("generate", Repo.Data("no-such-model"), "--prompt", "x");
        Assert.Equal(1, code);
        Assert.Contains("no-such-model", stderr);
    }
}
