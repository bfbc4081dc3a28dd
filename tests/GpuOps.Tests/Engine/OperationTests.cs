using System.Text.Json;
using GpuOps.Core.Engine;
using GpuOps.Core.Hosting;
using GpuOps.Tests.Support;
using Xunit;

namespace GpuOps.Tests.Engine;

public class OperationTests(FortuneLlamaFixture fx) : IClassFixture<FortuneLlamaFixture>
{
    private static string ModelDir => Repo.Data("fortune-llama");

    private (string Prompt, int[] NewIds, string Text) Greedy(int i)
    {
        var g = fx.Reference.RootElement.GetProperty("greedy")[i];
        return (g.GetProperty("prompt").GetString()!, g.GetProperty("new_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray(), g.GetProperty("text").GetString()!);
    }

    [Fact]
    public void ImportReportsProgressAndRemoveFreesTheHandle()
    {
        var host = new RecordingHost();
        new ImportGpuModelOperation { Path = ModelDir }.Execute(host);
        var h = Assert.Single(host.ObjectsOf<GpuModelHandle>());
        Assert.True(h.IsLoaded);
        Assert.Equal("cpu", h.Device);
        Assert.Equal("float32", h.DType);
        Assert.Equal("safetensors", h.Format);
        Assert.Equal(6, h.Config.NumLayers);
        Assert.Equal(4096L * 256 * 2 + 6 * (256 * 256 * 2 + 256 * 128 * 2 + 3 * 256 * 704 + 2 * 256) + 256, h.ParameterCount);
        Assert.Contains(h, GpuModelHandle.All);
        Assert.Contains(host.Progress, p => p.Completed);
        Assert.Contains(host.Progress, p => !p.Completed && p.StatusDescription.EndsWith(".weight") && p.PercentComplete >= 0);

        var rm = new RecordingHost();
        new RemoveGpuModelOperation { Model = h, PassThru = true }.Execute(rm);
        Assert.Single(rm.ShouldProcessCalls);
        Assert.False(h.IsLoaded);
        Assert.DoesNotContain(h, GpuModelHandle.All);
        Assert.Same(h, Assert.Single(rm.Objects));
        var ex = Assert.Throws<GpuOpsException>(() => new InvokeGpuInferenceOperation { Model = h, Prompts = new[] { "x" } }.Execute(new RecordingHost()));
        Assert.Equal("ModelRemoved", ex.ErrorId);

        var again = new RecordingHost();
        new RemoveGpuModelOperation { Model = h }.Execute(again);
        Assert.Equal("ModelAlreadyRemoved", Assert.Single(again.Errors).ErrorId);
    }

    [Fact]
    public void GetListsLoadedModelsByNameWildcardAndId()
    {
        var load = new RecordingHost();
        new ImportGpuModelOperation { Path = ModelDir }.Execute(load);
        new ImportGpuModelOperation { Path = ModelDir }.Execute(load);
        var (a, b) = (load.ObjectsOf<GpuModelHandle>().First(), load.ObjectsOf<GpuModelHandle>().Last());
        try
        {
            var all = new RecordingHost();
            new GetGpuModelOperation().Execute(all);
            var listed = all.ObjectsOf<GpuModelHandle>().ToList();
            Assert.Contains(a, listed);
            Assert.True(listed.IndexOf(a) < listed.IndexOf(b), "load order");
            Assert.All(listed, h => Assert.True(h.IsLoaded));

            var byId = new RecordingHost();
            new GetGpuModelOperation { Id = [b.Id, int.MaxValue, a.Id] }.Execute(byId);
            Assert.Equal(new[] { b, a }, byId.ObjectsOf<GpuModelHandle>());
            Assert.Equal("ModelHandleNotFound", Assert.Single(byId.Errors).ErrorId);

            // wildcards, case-insensitive, each handle once; a plain name that matches nothing is an error, a pattern is not
            var byName = new RecordingHost();
            new GetGpuModelOperation { Name = ["FORTUNE-*", "fortune-llam?", "no-such-model", "no-such-*"] }.Execute(byName);
            var named = byName.ObjectsOf<GpuModelHandle>().ToList();
            Assert.Contains(a, named);
            Assert.Contains(b, named);
            Assert.Equal(named.Count, named.Distinct().Count());
            Assert.Equal("ModelNotLoaded", Assert.Single(byName.Errors).ErrorId);
        }
        finally
        {
            a.Dispose();
            b.Dispose();
        }

        var after = new RecordingHost();
        new GetGpuModelOperation { Id = [a.Id] }.Execute(after);
        Assert.Empty(after.Objects);
        Assert.Single(after.Errors);
    }

    [Theory]
    [InlineData("fortune-llama", "fortune-llama", true)]
    [InlineData("f*a", "fortune-llama", true)]
    [InlineData("fortune-llam?", "fortune-llama", true)]
    [InlineData("[ef]ortune*", "fortune-llama", true)]
    [InlineData("[a-e]ortune*", "fortune-llama", false)]
    [InlineData("fortune", "fortune-llama", false)]
    [InlineData("a.b", "axb", false)]
    [InlineData("a`*b", "a*b", true)]
    [InlineData("a`*b", "axb", false)]
    public void NamePatternsAreWildcardsNotRegexes(string pattern, string name, bool match) =>
        Assert.Equal(match, GetGpuModelOperation.Wildcard(pattern).IsMatch(name));

    [Fact]
    public void WhatIfLoadsAndRemovesNothing()
    {
        var host = new RecordingHost { Confirm = false };
        new ImportGpuModelOperation { Path = ModelDir }.Execute(host);
        Assert.Empty(host.Objects);
        var rm = new RecordingHost { Confirm = false };
        new RemoveGpuModelOperation { Model = fx.Handle }.Execute(rm);
        Assert.True(fx.Handle.IsLoaded);
    }

    [Theory]
    [InlineData("tpu", "auto", "InvalidDevice")]
    [InlineData("cpu", "bfloat16", "DTypeNotSupported")]
    public void UnsupportedDevicesAndDTypesAreClearErrors(string device, string dtype, string id)
    {
        var ex = Assert.Throws<GpuOpsException>(() => new ImportGpuModelOperation { Path = ModelDir, Device = device, DType = dtype }.Execute(new RecordingHost()));
        Assert.Equal(id, ex.ErrorId);
        Assert.DoesNotContain('\n', ex.Message);
        // The same error from the up-front check Import-GpuModel runs as a terminating error.
        var early = Assert.Throws<GpuOpsException>(() => new CheckInferenceDeviceOperation { Device = device, DType = dtype }.Execute(new RecordingHost()));
        Assert.Equal(id, early.ErrorId);
    }

    [Fact]
    public void CudaWithoutAGpuIsAClearError()
    {
        if (Gpu.Present) return; // on a GPU host the CUDA engine loads (tests/GpuOps.Tests/CudaEngine)
        foreach (var device in new[] { "cuda", "cuda:1" })
        {
            var ex = Assert.Throws<GpuOpsException>(() => new ImportGpuModelOperation { Path = ModelDir, Device = device }.Execute(new RecordingHost()));
            Assert.Equal("CudaEngineNotAvailable", ex.ErrorId);
            Assert.Contains("needs an NVIDIA GPU", ex.Message);
            Assert.DoesNotContain('\n', ex.Message);
            // The same error from the up-front check Import-GpuModel runs as a terminating error.
            var early = Assert.Throws<GpuOpsException>(() => new CheckInferenceDeviceOperation { Device = device, DType = "auto" }.Execute(new RecordingHost()));
            Assert.Equal("CudaEngineNotAvailable", early.ErrorId);
            // A model given as a path is loaded through the same check.
            var viaPath = Assert.Throws<GpuOpsException>(() => new InvokeGpuInferenceOperation { ModelPath = ModelDir, Device = device, Prompts = new[] { "x" }, MaxTokens = 1 }.Execute(new RecordingHost()));
            Assert.Equal("CudaEngineNotAvailable", viaPath.ErrorId);
        }
    }

    [Fact]
    public void AMissingModelPathIsObjectNotFound()
    {
        var ex = Assert.Throws<GpuOpsException>(() => new ImportGpuModelOperation { Path = Repo.Data("no-such-model") }.Execute(new RecordingHost()));
        Assert.Equal(ErrorCategory.ObjectNotFound, ex.Category);
    }

    [Fact]
    public void PromptsRunAsOneBatchWithOneResultEach()
    {
        var a = Greedy(0);
        var b = Greedy(3);
        var host = new RecordingHost();
        new InvokeGpuInferenceOperation { Model = fx.Handle, Prompts = new[] { a.Prompt, b.Prompt }, MaxTokens = 48, Temperature = 0, IgnoreEos = true }.Execute(host);
        var r = host.ObjectsOf<GpuInferenceResult>().ToList();
        Assert.Equal(2, r.Count);
        Assert.Equal(a.NewIds, r[0].Ids);
        Assert.Equal(a.Text, r[0].Text);
        Assert.Equal(b.NewIds, r[1].Ids);
        Assert.All(r, x => Assert.Equal(2, x.BatchSize));
        Assert.All(r, x => Assert.Equal(48, x.GeneratedTokens));
        Assert.All(r, x => Assert.True(x.TimeToFirstTokenMs > 0 && x.PrefillTokensPerSecond > 0 && x.DecodeTokensPerSecond > 0));
        Assert.All(r, x => Assert.Null(x.EnergyJoules));
        Assert.Equal(3, r[0].PromptTokens);
    }

    [Fact]
    public void StreamWritesEachTokenAsItIsProducedAndTheDeltasMakeTheText()
    {
        var a = Greedy(0);
        var host = new RecordingHost();
        int seenBeforeEnd = 0;
        host.OnObject = o => seenBeforeEnd++;
        new InvokeGpuInferenceOperation { Model = fx.Handle, Prompts = new[] { a.Prompt }, MaxTokens = 48, IgnoreEos = true, Stream = true }.Execute(host);
        var tokens = host.ObjectsOf<GpuInferenceToken>().ToList();
        Assert.Equal(48, tokens.Count);
        Assert.Empty(host.ObjectsOf<GpuInferenceResult>());
        Assert.Equal(a.NewIds, tokens.Select(t => t.TokenId));
        Assert.Equal(a.Text, string.Concat(tokens.Select(t => t.Text)));
        Assert.True(tokens[^1].IsLast);
        Assert.Equal("length", tokens[^1].FinishReason);
        Assert.Equal(Enumerable.Range(0, 48), tokens.Select(t => t.Index));
    }

    [Fact]
    public void StopStringsCutTheTextAndEndTheSequence()
    {
        var a = Greedy(0); // " be a man who has a better mind and a woman can learn\nwith ..."
        var host = new RecordingHost();
        new InvokeGpuInferenceOperation { Model = fx.Handle, Prompts = new[] { a.Prompt }, MaxTokens = 48, Stop = new[] { "\n" } }.Execute(host);
        var r = Assert.Single(host.ObjectsOf<GpuInferenceResult>());
        Assert.Equal(a.Text[..a.Text.IndexOf('\n')], r.Text);
        Assert.Equal("stop", r.FinishReason);
        Assert.True(r.GeneratedTokens < 20);

        var streamed = new RecordingHost();
        new InvokeGpuInferenceOperation { Model = fx.Handle, Prompts = new[] { a.Prompt }, MaxTokens = 48, Stop = new[] { "\n" }, Stream = true }.Execute(streamed);
        Assert.Equal(r.Text, string.Concat(streamed.ObjectsOf<GpuInferenceToken>().Select(t => t.Text)));
    }

    [Fact]
    public void MaxTokensAndEosEndSequences()
    {
        var a = Greedy(0);
        var host = new RecordingHost();
        new InvokeGpuInferenceOperation { Model = fx.Handle, Prompts = new[] { a.Prompt }, MaxTokens = 5 }.Execute(host);
        Assert.Equal(a.NewIds[..5], Assert.Single(host.ObjectsOf<GpuInferenceResult>()).Ids);
        var full = new RecordingHost();
        new InvokeGpuInferenceOperation { Model = fx.Handle, Prompts = new[] { a.Prompt }, MaxTokens = 48 }.Execute(full);
        var r = Assert.Single(full.ObjectsOf<GpuInferenceResult>());
        Assert.Equal("eos", r.FinishReason);
        Assert.Equal(1, r.Ids[^1]);
    }

    [Fact]
    public void AFullContextEndsTheSequenceAndATooLongPromptIsAnError()
    {
        var host = new RecordingHost();
        new InvokeGpuInferenceOperation { Model = fx.Handle, Prompts = new[] { "You will" }, MaxTokens = 10, MaxContext = 5, IgnoreEos = true }.Execute(host);
        var r = Assert.Single(host.ObjectsOf<GpuInferenceResult>());
        Assert.Equal(3, r.GeneratedTokens); // 3 prompt tokens + 2 decoded positions fill 5; the 3rd new token needs no cache
        Assert.Equal(Greedy(0).NewIds[..3], r.Ids);
        Assert.Equal("length", r.FinishReason);
        var ex = Assert.Throws<GpuOpsException>(() => new InvokeGpuInferenceOperation { Model = fx.Handle, Prompts = new[] { "You will" }, MaxContext = 2 }.Execute(new RecordingHost()));
        Assert.Equal("PromptTooLong", ex.ErrorId);
    }

    [Fact]
    public void SeededSamplingIsReproducibleThroughTheOperation()
    {
        int[] Run(int seed)
        {
            var host = new RecordingHost();
            new InvokeGpuInferenceOperation { Model = fx.Handle, Prompts = new[] { "Love is", "You will" }, MaxTokens = 24, Temperature = 0.9, TopK = 40, TopP = 0.95, RepetitionPenalty = 1.1, Seed = seed, IgnoreEos = true }.Execute(host);
            return host.ObjectsOf<GpuInferenceResult>().SelectMany(r => r.Ids).ToArray();
        }

        var first = Run(5);
        var again = Run(5); // a second, independent run with the same seed
        Assert.Equal(first, again);
        Assert.NotEqual(Run(5), Run(6));
    }

    [Fact]
    public void PerplexitySubsetIsMarkedAndTooShortTextIsAnError()
    {
        var host = new RecordingHost();
        new MeasureGpuPerplexityOperation { Model = fx.Handle, Path = Repo.Data("fortune-corpus", "test.txt"), Context = 128, MaxWindows = 3 }.Execute(host);
        var r = Assert.Single(host.ObjectsOf<GpuPerplexityResult>());
        Assert.True(r.Subset);
        Assert.Equal(3, r.Windows);
        Assert.Equal(3 * 127, r.Tokens);
        Assert.InRange(r.Ppl, 20, 400);
        Assert.Empty(host.Warnings);

        // windows past the model's trained context (1024 positions) still run, with a warning
        var past = new RecordingHost();
        new MeasureGpuPerplexityOperation { Model = fx.Handle, Path = Repo.Data("fortune-corpus", "test.txt"), Context = 1100, MaxWindows = 1 }.Execute(past);
        Assert.Single(past.ObjectsOf<GpuPerplexityResult>());
        Assert.Contains("trained context of 1024", Assert.Single(past.Warnings));

        var tmp = Path.GetTempFileName();
        File.WriteAllText(tmp, "Too short.");
        try
        {
            var ex = Assert.Throws<GpuOpsException>(() => new MeasureGpuPerplexityOperation { Model = fx.Handle, Path = tmp, Context = 256 }.Execute(new RecordingHost()));
            Assert.Equal("TextTooShort", ex.ErrorId);
        }
        finally
        {
            File.Delete(tmp);
        }
    }

    [Fact]
    public void TheBenchmarkReportsPrefillAndDecodeWithTheBandwidthBound()
    {
        var host = new RecordingHost();
        new MeasureGpuInferenceOperation { Model = fx.Handle, PromptLengths = new[] { 8, 64 }, BatchSizes = new[] { 1, 3 }, DecodeTokens = 4, CopyBytes = 32 << 20 }.Execute(host);
        var rows = host.ObjectsOf<GpuInferenceBenchmark>().ToList();
        Assert.Equal(new[] { "prefill", "prefill", "decode", "decode" }, rows.Select(r => r.Phase));
        Assert.Equal(new[] { 8, 64 }, rows.Take(2).Select(r => r.PromptLength));
        Assert.Equal(new[] { 1, 3 }, rows.Skip(2).Select(r => r.BatchSize));
        Assert.All(rows, r => Assert.True(r.TokensPerSecond > 0));
        var d = rows[2];
        Assert.NotNull(d.CopyBandwidthGBps);
        Assert.Equal(d.CopyBandwidthGBps!.Value * 1e9 / d.WeightBytesPerStep, d.BoundTokensPerSecond!.Value, 1e-6 * d.BoundTokensPerSecond.Value);
        Assert.Equal(d.TokensPerSecond / d.BoundTokensPerSecond.Value, d.FractionOfBound!.Value, 1e-9);
        Assert.Equal(3 * d.BoundTokensPerSecond.Value, rows[3].BoundTokensPerSecond!.Value, 1e-6 * rows[3].BoundTokensPerSecond!.Value);
        Assert.Equal(12, rows[3].Tokens);
    }
}

/// <summary>Tests that count the process-wide list of loaded handles: run alone, not beside other classes that load models.</summary>
[CollectionDefinition("GpuModelHandleRegistry", DisableParallelization = true)]
public sealed class GpuModelHandleRegistryCollection
{
}

[Collection("GpuModelHandleRegistry")]
public class HandleRegistryTests
{
    [Fact]
    public void APathGivesATemporaryModelThatIsFreedAfterwards()
    {
        var before = GpuModelHandle.All.Select(h => h.Id).ToList();
        var host = new RecordingHost();
        new InvokeGpuInferenceOperation { ModelPath = Repo.Data("fortune-llama"), Prompts = new[] { "Love is" }, MaxTokens = 3 }.Execute(host);
        Assert.Equal(3, Assert.Single(host.ObjectsOf<GpuInferenceResult>()).GeneratedTokens);
        Assert.Equal(before, GpuModelHandle.All.Select(h => h.Id).ToList());

        // A handle made from a path (PowerShell's conversion for -Model <path>) only carries the path: nothing is
        // loaded or listed until an operation loads it for one command and frees it afterwards.
        var pathOnly = new GpuModelHandle(Repo.Data("fortune-llama"));
        Assert.True(pathOnly.IsPathOnly);
        Assert.False(pathOnly.IsLoaded);
        Assert.DoesNotContain(pathOnly, GpuModelHandle.All);
        Assert.Equal("ModelNotLoaded", Assert.Throws<GpuOpsException>(() => pathOnly.Engine).ErrorId);
        var h = new RecordingHost();
        new InvokeGpuInferenceOperation { Model = pathOnly, Prompts = new[] { "Love is" }, MaxTokens = 2 }.Execute(h);
        Assert.Equal(2, Assert.Single(h.ObjectsOf<GpuInferenceResult>()).GeneratedTokens);
        Assert.Equal(before, GpuModelHandle.All.Select(x => x.Id).ToList());
        var rm = new RecordingHost();
        new RemoveGpuModelOperation { Model = pathOnly }.Execute(rm);
        Assert.Equal("ModelNotLoaded", Assert.Single(rm.Errors).ErrorId);
    }
}
