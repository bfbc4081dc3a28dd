using System.Diagnostics;
using GpuOps.Core.Hosting;

namespace GpuOps.Core.Engine;

/// <summary>Import-GpuModel: load a model directory or .gguf file onto a device; writes a <see cref="GpuModelHandle"/>.</summary>
public sealed class ImportGpuModelOperation : IOperation
{
    public required string Path { get; init; }
    public string Device { get; init; } = "cpu";
    public string DType { get; init; } = "auto";

    public void Execute(IOperationHost host)
    {
        string full = System.IO.Path.GetFullPath(Path);
        if (!File.Exists(full) && !Directory.Exists(full))
            throw new GpuOpsException("ModelNotFound", ErrorCategory.ObjectNotFound, $"{full}: no such model directory or file.", full);
        if (string.Equals(Device?.Trim(), "auto", StringComparison.OrdinalIgnoreCase) && !GpuModelHandle.CudaEngineAvailable)
        {
            var gpus = Native.NativeProbe.CudaDevices(out _);
            if (gpus.Count > 0) host.WriteWarning($"{gpus.Count} CUDA GPU(s) present, but this build has no CUDA inference engine (GpuOps.Cuda): running on the CPU.");
        }

        if (!host.ShouldProcess(full, $"Load model onto {Device}", ConfirmImpact.Low)) return;
        var progress = new ProgressReporter(host, 61, $"Loading {System.IO.Path.GetFileName(full.TrimEnd('/', '\\'))}");
        var handle = GpuModelHandle.Load(full, Device, DType, (f, name) => progress.Report(f, name), host.CancellationToken);
        progress.Complete();
        host.WriteVerbose($"Loaded {handle.Name}: {handle.ParameterCount:N0} parameters, {handle.WeightBytes / 1048576.0:F1} MiB as {handle.DType} on {handle.Device}.");
        host.WriteObject(handle);
    }
}

/// <summary>
/// Checks a device and dtype before any model is loaded (Import-GpuModel runs it once, as a terminating check,
/// so an unsupported device stops the command instead of failing each piped path).
/// </summary>
public sealed class CheckInferenceDeviceOperation : IOperation
{
    public string Device { get; init; } = "cpu";
    public string DType { get; init; } = "auto";

    public void Execute(IOperationHost host) => GpuModelHandle.CheckDevice(Device, DType);
}

/// <summary>
/// Get-GpuModel: the models loaded in this process and not yet removed, in load order; by name (wildcards * ? [..],
/// case-insensitive) or by handle id. A name without wildcards or an id that matches nothing is an error for that
/// item, as Get-Process does.
/// </summary>
public sealed class GetGpuModelOperation : IOperation
{
    public string[]? Name { get; init; }
    public int[]? Id { get; init; }

    public void Execute(IOperationHost host)
    {
        var all = GpuModelHandle.All;
        if (Id is { Length: > 0 })
        {
            foreach (int id in Id)
            {
                var h = all.FirstOrDefault(m => m.Id == id);
                if (h is null) host.WriteError(new OperationError("ModelHandleNotFound", ErrorCategory.ObjectNotFound, $"No loaded model has handle id {id}.", id));
                else host.WriteObject(h);
            }

            return;
        }

        if (Name is not { Length: > 0 })
        {
            foreach (var h in all) host.WriteObject(h);
            return;
        }

        var written = new HashSet<int>();
        foreach (var pattern in Name)
        {
            var re = Wildcard(pattern);
            var hits = all.Where(m => re.IsMatch(m.Name)).ToList();
            if (hits.Count == 0 && !HasWildcard(pattern))
                host.WriteError(new OperationError("ModelNotLoaded", ErrorCategory.ObjectNotFound, $"No loaded model is named '{pattern}'.", pattern));
            foreach (var h in hits)
                if (written.Add(h.Id)) host.WriteObject(h);
        }
    }

    private static bool HasWildcard(string s) => s.IndexOfAny(['*', '?', '[']) >= 0;

    /// <summary>PowerShell's wildcard pattern (* ? [abc] [a-z], ` escapes) as an anchored, case-insensitive regex.</summary>
    internal static System.Text.RegularExpressions.Regex Wildcard(string pattern)
    {
        var sb = new System.Text.StringBuilder("^");
        for (int i = 0; i < pattern.Length; i++)
        {
            char c = pattern[i];
            if (c == '`' && i + 1 < pattern.Length) sb.Append(System.Text.RegularExpressions.Regex.Escape(pattern[++i].ToString()));
            else if (c == '*') sb.Append(".*");
            else if (c == '?') sb.Append('.');
            else if (c == '[' && pattern.IndexOf(']', i + 1) is int end && end > i + 1)
            {
                sb.Append('[').Append(pattern[(i + 1)..end].Replace(@"\", @"\\").Replace("^", @"\^")).Append(']');
                i = end;
            }
            else sb.Append(System.Text.RegularExpressions.Regex.Escape(c.ToString()));
        }

        return new System.Text.RegularExpressions.Regex(sb.Append('$').ToString(),
            System.Text.RegularExpressions.RegexOptions.IgnoreCase | System.Text.RegularExpressions.RegexOptions.CultureInvariant);
    }
}

/// <summary>Remove-GpuModel: free a loaded model.</summary>
public sealed class RemoveGpuModelOperation : IOperation
{
    public required GpuModelHandle Model { get; init; }
    public bool PassThru { get; init; }

    public void Execute(IOperationHost host)
    {
        if (Model.IsPathOnly)
        {
            host.WriteError(new OperationError("ModelNotLoaded", ErrorCategory.InvalidArgument, $"'{Model.Path}' is a model path, not a loaded model: there is nothing to remove.", Model));
            return;
        }

        if (!Model.IsLoaded)
        {
            host.WriteError(new OperationError("ModelAlreadyRemoved", ErrorCategory.InvalidOperation, $"Model '{Model.Name}' (handle {Model.Id}) was already removed.", Model));
            return;
        }

        if (!host.ShouldProcess(Model.ToString(), "Free model", ConfirmImpact.Low)) return;
        Model.Dispose();
        if (PassThru) host.WriteObject(Model);
    }
}

/// <summary>Shared: resolve a handle or a path into a loaded model for the duration of an operation.</summary>
internal static class ModelUse
{
    /// <summary>Positions past the model's max_position_embeddings run (RoPE extends) but were never trained: say so.</summary>
    public static void WarnPastTrainedContext(IOperationHost host, GpuModelHandle handle, int positions, string what)
    {
        int trained = handle.Config.MaxPositionEmbeddings;
        if (trained > 0 && positions > trained)
            host.WriteWarning($"{what} ({positions} positions) goes past {handle.Name}'s trained context of {trained} (max_position_embeddings): figures past it are not the model's.");
    }

    public static (GpuModelHandle Handle, bool Owned) Resolve(GpuModelHandle? model, string? path, string? device, IOperationHost host)
    {
        if (model is { IsPathOnly: true })
        {
            path = model.Path;
            model = null;
        }

        if (model is not null)
        {
            _ = model.Engine; // a clear error when removed
            if (device is not null && !string.Equals(GpuModelHandle.ParseDevice(device).Kind, GpuModelHandle.ParseDevice(model.Device).Kind, StringComparison.Ordinal))
                throw GpuOpsException.InvalidArgument("DeviceMismatch", $"Model '{model.Name}' is loaded on {model.Device}, not {device}.", device);
            return (model, false);
        }

        if (string.IsNullOrWhiteSpace(path)) throw GpuOpsException.InvalidArgument("NoModel", "Give a model: a handle from Import-GpuModel or a path.");
        var op = new ImportGpuModelOperation { Path = path, Device = device ?? "cpu" };
        var rec = new ForwardingHost(host);
        op.Execute(rec);
        var handle = rec.Handle ?? throw new GpuOpsException("ModelNotLoaded", ErrorCategory.OperationStopped, $"Model '{path}' was not loaded.", path);
        return (handle, true);
    }

    /// <summary>Passes everything through except the handle object, which it keeps.</summary>
    private sealed class ForwardingHost(IOperationHost inner) : IOperationHost
    {
        public GpuModelHandle? Handle { get; private set; }
        public CancellationToken CancellationToken => inner.CancellationToken;
        public void WriteObject(object item)
        {
            if (item is GpuModelHandle h) Handle = h;
            else inner.WriteObject(item);
        }

        public void WriteProgress(ProgressInfo progress) => inner.WriteProgress(progress);
        public void WriteVerbose(string message) => inner.WriteVerbose(message);
        public void WriteWarning(string message) => inner.WriteWarning(message);
        public bool ShouldProcess(string target, string action, ConfirmImpact impact = ConfirmImpact.Medium) => true;
        public void WriteError(OperationError error) => inner.WriteError(error);
    }
}

/// <summary>
/// Invoke-GpuInference / gpuops generate: the prompts run together as one batch. Writes one
/// <see cref="GpuInferenceResult"/> per prompt, or with <see cref="Stream"/> one <see cref="GpuInferenceToken"/> per new token as it is produced.
/// </summary>
public sealed class InvokeGpuInferenceOperation : IOperation
{
    public GpuModelHandle? Model { get; init; }
    public string? ModelPath { get; init; }
    public string? Device { get; init; }
    public required IReadOnlyList<string> Prompts { get; init; }
    public int MaxTokens { get; init; } = 128;
    public double? Temperature { get; init; }
    public int? TopK { get; init; }
    public double? TopP { get; init; }
    public double? RepetitionPenalty { get; init; }
    public int? Seed { get; init; }
    public IReadOnlyList<string> Stop { get; init; } = Array.Empty<string>();
    public bool IgnoreEos { get; init; }
    public bool Stream { get; init; }
    public int? MaxContext { get; init; }

    public void Execute(IOperationHost host)
    {
        if (Prompts.Count == 0) throw GpuOpsException.InvalidArgument("NoPrompt", "Give at least one prompt.");
        if (Temperature is { } t0 && !(double.IsFinite(t0) && t0 >= 0))
            throw GpuOpsException.InvalidArgument("InvalidTemperature", $"Temperature must be 0 (greedy) or a positive number, got {t0}.", t0);
        var (handle, owned) = ModelUse.Resolve(Model, ModelPath, Device, host);
        try
        {
            var gen = handle.Generation;
            bool sample = Temperature is > 0 || (Temperature is null && gen.DoSample == true);
            var sampling = new SamplingOptions(
                sample ? Temperature ?? gen.Temperature ?? 1.0 : 0,
                TopK ?? (sample ? gen.TopK ?? 0 : 0),
                TopP ?? (sample ? gen.TopP ?? 1.0 : 1.0),
                RepetitionPenalty ?? gen.RepetitionPenalty ?? 1.0,
                Seed);
            var eos = gen.EosTokenIds.Count > 0 ? gen.EosTokenIds : handle.Tokenizer.EosTokenIds;
            var options = new GenerationOptions
            {
                MaxNewTokens = MaxTokens,
                Sampling = sampling,
                EosTokenIds = eos,
                StopStrings = (Stop ?? []).Where(s => !string.IsNullOrEmpty(s)).ToList(),   // (-Stop $null or '': none)
                IgnoreEos = IgnoreEos,
                MaxContext = MaxContext,
            };
            var prompts = Prompts.Select(p => handle.Tokenizer.Encode(p, addSpecialTokens: true)).ToList();
            host.WriteVerbose($"Generating for {prompts.Count} prompt(s) ({string.Join(", ", prompts.Select(p => p.Length))} tokens) on {handle.Device}: " +
                              (sampling.Greedy ? "greedy" : $"temperature {sampling.Temperature}, top-k {sampling.TopK}, top-p {sampling.TopP}") +
                              $", repetition penalty {sampling.RepetitionPenalty}, seed {(Seed?.ToString() ?? "none")}.");
            // (the prompt alone, or with every new token asked for where the context was given: where it will surely reach)
            int reach = prompts.Max(p => p.Length) + (MaxContext is null ? 0 : MaxTokens);
            ModelUse.WarnPastTrainedContext(host, handle, MaxContext is { } mc ? Math.Min(reach, mc) : reach, "The longest prompt" + (MaxContext is null ? "" : " with its new tokens"));
            var progress = new ProgressReporter(host, 62, "Generating");
            int produced = 0, budget = Math.Max(1, MaxTokens * prompts.Count);
            using var energy = handle.Engine.StartEnergyMeter();
            var outputs = TextGenerator.Generate(handle.Engine, handle.Tokenizer, prompts, options, out var timings, ev =>
            {
                produced++;
                if (Stream) host.WriteObject(new GpuInferenceToken(ev.Sequence, ev.Index, ev.TokenId, ev.Text, ev.IsLast, ev.FinishReason));
                else progress.Report(Math.Min(1.0, produced / (double)budget), $"{produced} tokens");
            }, host.CancellationToken);
            progress.Complete();
            double? joules = energy?.Stop();
            if (energy is not null && joules is null) host.WriteVerbose("Energy: not reported (the run was shorter than the energy counter resolves, about 0.1 s, or NVML could not read it).");
            host.WriteVerbose($"Prefill {timings.PromptTokens} tokens in {timings.PrefillTime.TotalMilliseconds:F1} ms ({timings.PrefillTokensPerSecond:F1} tok/s); " +
                              $"decode {timings.DecodeTokens} tokens in {timings.DecodeTime.TotalMilliseconds:F1} ms ({timings.DecodeTokensPerSecond:F1} tok/s).");
            if (Stream) return;
            double total = (timings.PrefillTime + timings.DecodeTime).TotalSeconds;
            // the GPU's energy for the whole batch (prefill and decode), and per new token of the batch
            int newTokens = outputs.Sum(o => o.NewIds.Length);
            double? perToken = joules is { } j && newTokens > 0 ? j / newTokens : null;
            foreach (var o in outputs)
            {
                host.WriteObject(new GpuInferenceResult(handle.Name, handle.Device, o.Sequence, Prompts[o.Sequence], o.Text ?? string.Empty,
                    o.NewIds, o.PromptIds, o.PromptIds.Length, o.NewIds.Length, o.FinishReason, prompts.Count,
                    timings.TimeToFirstToken.TotalMilliseconds, timings.PrefillTokensPerSecond, timings.DecodeTokensPerSecond, total, joules, perToken));
            }
        }
        finally
        {
            if (owned) handle.Dispose();
        }
    }
}

/// <summary>Measure-GpuPerplexity / gpuops perplexity, with exactly the procedure of tests/data/README.md.</summary>
public sealed class MeasureGpuPerplexityOperation : IOperation
{
    public GpuModelHandle? Model { get; init; }
    public string? ModelPath { get; init; }
    public string? Device { get; init; }
    public required string Path { get; init; }
    public int Context { get; init; } = 256;
    /// <summary>Score only the first N windows (a quick estimate; the result says Subset).</summary>
    public int? MaxWindows { get; init; }

    public void Execute(IOperationHost host)
    {
        string file = System.IO.Path.GetFullPath(Path);
        if (!File.Exists(file)) throw new GpuOpsException("TextFileNotFound", ErrorCategory.ObjectNotFound, $"{file}: no such file.", file);
        if (Context < 2) throw GpuOpsException.InvalidArgument("InvalidContext", $"Context must be at least 2 tokens, got {Context}.", Context);
        if (MaxWindows is < 1) throw GpuOpsException.InvalidArgument("InvalidMaxWindows", $"The number of windows to score must be at least 1 (got {MaxWindows}); leave it out to score them all.", MaxWindows);
        var (handle, owned) = ModelUse.Resolve(Model, ModelPath, Device, host);
        try
        {
            var text = File.ReadAllText(file);
            var tokens = PerplexityCalculator.TokenStream(handle.Tokenizer, text);
            host.WriteVerbose($"{file}: {tokens.Length} tokens, {tokens.Length / Context} windows of {Context}.");
            ModelUse.WarnPastTrainedContext(host, handle, Context, "The window (-Context)");
            var progress = new ProgressReporter(host, 63, $"Perplexity of {System.IO.Path.GetFileName(file)}");
            var sw = Stopwatch.StartNew();
            var r = PerplexityCalculator.Compute(handle.Engine, tokens, Context, MaxWindows,
                (done, all) => progress.Report(done / (double)all, $"window {done} of {all}"), host.CancellationToken);
            progress.Complete();
            double secs = sw.Elapsed.TotalSeconds;
            bool subset = MaxWindows is int m && m < tokens.Length / Context;
            host.WriteObject(new GpuPerplexityResult(handle.Name, handle.Device, file, Context, r.Perplexity, r.ScoredTokens, r.Windows, r.Tokens,
                r.NegativeLogLikelihood, secs, r.Windows * (double)Context / secs, subset));
        }
        finally
        {
            if (owned) handle.Dispose();
        }
    }
}

/// <summary>
/// Measure-GpuInference: prefill tokens/s at the given prompt lengths and decode tokens/s at the given batch sizes,
/// each decode figure beside its bandwidth bound (weight bytes read per step over the measured copy bandwidth).
/// </summary>
public sealed class MeasureGpuInferenceOperation : IOperation
{
    public GpuModelHandle? Model { get; init; }
    public string? ModelPath { get; init; }
    public string? Device { get; init; }
    public IReadOnlyList<int> PromptLengths { get; init; } = new[] { 32, 128, 512 };
    public IReadOnlyList<int> BatchSizes { get; init; } = new[] { 1, 2, 4, 8 };
    public int DecodeTokens { get; init; } = 32;
    /// <summary>Bytes of the buffer copied to measure memory bandwidth (0 = do not measure; the bound is then not given).</summary>
    public long CopyBytes { get; init; } = 256L << 20;

    /// <summary>The largest bandwidth copy taken: 64 GiB (Measure-GpuInference -CopyMiB's range).</summary>
    public const long MaxCopyBytes = 1L << 36;

    public void Execute(IOperationHost host)
    {
        if (PromptLengths.Any(l => l < 1) || BatchSizes.Any(b => b < 1) || DecodeTokens < 1)
            throw GpuOpsException.InvalidArgument("InvalidBenchmarkSize", "Prompt lengths, batch sizes and DecodeTokens must be positive.");
        if (CopyBytes < 0 || CopyBytes > MaxCopyBytes)
            throw GpuOpsException.InvalidArgument("InvalidCopySize", $"The bandwidth copy must be 0 (skip) to {MaxCopyBytes >> 20} MiB (got {CopyBytes >> 20} MiB).", CopyBytes);
        var (handle, owned) = ModelUse.Resolve(Model, ModelPath, Device, host);
        try
        {
            var engine = handle.Engine;
            var ct = host.CancellationToken;
            // (prefill runs each prompt length alone; decode runs from a 16-token prompt, as below)
            ModelUse.WarnPastTrainedContext(host, handle, Math.Max(PromptLengths.Count > 0 ? PromptLengths.Max() : 0, 16 + DecodeTokens), "The longest prefill or decode run");
            var progress = new ProgressReporter(host, 64, "Measuring inference");
            int steps = PromptLengths.Count + BatchSizes.Count + 1, done = 0;
            double? bw = null;
            var device = engine as IDeviceGreedyDecoder;
            if (CopyBytes > 0)
            {
                progress.Report(0, "memory copy bandwidth");
                bw = device is not null ? device.MeasureCopyBytesPerSecond(CopyBytes) : MemoryBandwidth.MeasureCopyBytesPerSecond(CopyBytes, ct);
                host.WriteVerbose($"Memory copy bandwidth (read + write): {bw / 1e9:F1} GB/s.");
            }

            done++;
            long weightBytes = engine.WeightBytesPerToken;
            int vocab = engine.Config.VocabSize;
            var rng = new Random(1234);
            int[] RandomTokens(int n) => Enumerable.Range(0, n).Select(_ => rng.Next(vocab)).ToArray();
            // Warm-up (JIT, kernels, thread pool, caches): one short prefill and two decode steps, not timed.
            {
                using var warm = engine.CreateCache(1, 16);
                engine.Forward(warm, new[] { new SequenceChunk(0, RandomTokens(8)) }, allLogits: false, ct);
                for (int i = 0; i < 2; i++) engine.Forward(warm, new[] { new SequenceChunk(0, RandomTokens(1)) }, allLogits: false, ct);
            }

            foreach (int len in PromptLengths)
            {
                ct.ThrowIfCancellationRequested();
                progress.Report(done++ / (double)steps, $"prefill {len} tokens");
                using var cache = engine.CreateCache(1, len);
                var tokens = RandomTokens(len);
                engine.Forward(cache, new[] { new SequenceChunk(0, tokens) }, allLogits: false, ct); // first run of this shape: plans, autotuning
                cache.ResetAll();
                var sw = Stopwatch.StartNew();
                engine.Forward(cache, new[] { new SequenceChunk(0, tokens) }, allLogits: false, ct);
                double s = sw.Elapsed.TotalSeconds;
                host.WriteObject(new GpuInferenceBenchmark(handle.Name, handle.Device, "prefill", len, 1, len, s, len / s, weightBytes, bw / 1e9,
                    null, null, s * 1000, null, null));
            }

            const int promptLength = 16;
            foreach (int batch in BatchSizes)
            {
                ct.ThrowIfCancellationRequested();
                progress.Report(done++ / (double)steps, $"decode at batch {batch}");
                using var cache = engine.CreateCache(batch, promptLength + DecodeTokens + 8);
                var chunks = Enumerable.Range(0, batch).Select(i => new SequenceChunk(i, RandomTokens(promptLength))).ToList();
                var next = engine.ForwardArgMax(cache, chunks, ct);
                double s;
                double? joules = null;
                if (device is not null)
                {
                    // two untimed steps first: the first runs eagerly, the second captures the step's graph
                    next = device.DecodeGreedy(cache, next, 2, ct).Ids[^1];
                    var r = device.DecodeGreedy(cache, next, DecodeTokens, ct);
                    s = r.Seconds;
                    joules = r.Joules;
                }
                else
                {
                    var sw = Stopwatch.StartNew();
                    for (int step = 0; step < DecodeTokens; step++)
                        next = engine.ForwardArgMax(cache, Enumerable.Range(0, batch).Select(i => new SequenceChunk(i, new[] { next[i] })).ToList(), ct);
                    s = sw.Elapsed.TotalSeconds;
                }

                double tps = batch * DecodeTokens / s;
                double? bound = bw is double b ? batch * b / weightBytes : null;
                host.WriteObject(new GpuInferenceBenchmark(handle.Name, handle.Device, "decode", promptLength, batch, batch * DecodeTokens, s, tps,
                    weightBytes, bw / 1e9, bound, bound is double bd ? tps / bd : null, null, joules / (batch * DecodeTokens),
                    bw is null ? "bound unavailable (copy bandwidth not measured)"
                        : $"bound = batch x copy bandwidth / {engine.DType} weight bytes per step (KV cache reads not counted)"));
            }

            progress.Complete();
        }
        finally
        {
            if (owned) handle.Dispose();
        }
    }
}

/// <summary>Host memory copy bandwidth, counted as bytes read plus bytes written per second (as GPU copy benchmarks count it).</summary>
public static class MemoryBandwidth
{
    public static double MeasureCopyBytesPerSecond(long bytes, CancellationToken cancellationToken = default)
    {
        int n = (int)Math.Min(bytes / 2 / sizeof(float), Array.MaxLength);
        var a = new float[n];
        var b = new float[n];
        a.AsSpan().Fill(1);
        b.AsSpan().Fill(2);
        int parts = Math.Max(1, Environment.ProcessorCount);
        void Copy()
        {
            Parallel.For(0, parts, p =>
            {
                int lo = (int)((long)n * p / parts), hi = (int)((long)n * (p + 1) / parts);
                a.AsSpan(lo, hi - lo).CopyTo(b.AsSpan(lo, hi - lo));
            });
        }

        Copy();
        double best = 0;
        for (int i = 0; i < 5; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var sw = Stopwatch.StartNew();
            Copy();
            best = Math.Max(best, 2.0 * n * sizeof(float) / sw.Elapsed.TotalSeconds);
        }

        return best;
    }
}
