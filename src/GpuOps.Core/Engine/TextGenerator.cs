using System.Diagnostics;
using GpuOps.Core.Hosting;
using GpuOps.Core.Models;

namespace GpuOps.Core.Engine;

/// <summary>When to stop and how to choose tokens.</summary>
public sealed record GenerationOptions
{
    public int MaxNewTokens { get; init; } = 128;
    public SamplingOptions Sampling { get; init; } = new();
    /// <summary>Token ids that end a sequence (unless <see cref="IgnoreEos"/>).</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = Array.Empty<int>();
    /// <summary>Strings that end a sequence; the text is cut before the first occurrence.</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = Array.Empty<string>();
    /// <summary>Go on past EOS tokens (they are kept in the ids).</summary>
    public bool IgnoreEos { get; init; }
    /// <summary>KV cache positions per sequence; null = the longest prompt plus MaxNewTokens, capped at the model's maximum.</summary>
    public int? MaxContext { get; init; }
}

/// <summary>One new token of one sequence, as it is produced (for streaming).</summary>
public sealed record TokenEvent(int Sequence, int Index, int TokenId, string Text, bool IsLast, string? FinishReason);

/// <summary>What one sequence of a batch produced.</summary>
public sealed record SequenceOutput(int Sequence, int[] PromptIds, int[] NewIds, string? Text, string FinishReason);

/// <summary>Timings of a batched generation.</summary>
public sealed record GenerationTimings(
    int PromptTokens,
    int GeneratedTokens,
    TimeSpan TimeToFirstToken,
    TimeSpan PrefillTime,
    TimeSpan DecodeTime,
    int DecodeSteps,
    int DecodeTokens)
{
    public double PrefillTokensPerSecond => PrefillTime.TotalSeconds > 0 ? PromptTokens / PrefillTime.TotalSeconds : 0;
    public double DecodeTokensPerSecond => DecodeTime.TotalSeconds > 0 ? DecodeTokens / DecodeTime.TotalSeconds : 0;
}

/// <summary>
/// Batched generation on the CPU engine: every prompt is prefilled in one forward step (one KV cache slot each),
/// then each decode step advances all unfinished sequences together until EOS, a stop string, MaxNewTokens or a
/// full context.
/// </summary>
public static class TextGenerator
{
    /// <summary>The largest -MaxContext taken (16M positions; far past any model's trained context).</summary>
    public const int MaxContextLimit = 1 << 24;

    public static IReadOnlyList<SequenceOutput> Generate(
        IInferenceEngine engine,
        ITokenizer? tokenizer,
        IReadOnlyList<int[]> prompts,
        GenerationOptions options,
        out GenerationTimings timings,
        Action<TokenEvent>? onToken = null,
        CancellationToken cancellationToken = default)
    {
        options.Sampling.Validate();
        if (prompts.Count == 0) throw GpuOpsException.InvalidArgument("NoPrompt", "There is no prompt to generate from.");
        if (options.MaxNewTokens < 0) throw GpuOpsException.InvalidArgument("InvalidMaxTokens", $"-MaxTokens must be 0 or more, got {options.MaxNewTokens}.");
        if (options.StopStrings.Count > 0 && tokenizer is null)
            throw GpuOpsException.InvalidArgument("StopNeedsTokenizer", "Stop strings need a tokenizer to decode the text.");
        for (int i = 0; i < prompts.Count; i++)
        {
            if (prompts[i].Length == 0)
                throw GpuOpsException.InvalidArgument("EmptyPrompt", $"Prompt {i} encodes to no tokens; give some text or a tokenizer that adds BOS.", i);
        }

        int longest = prompts.Max(p => p.Length);
        int maxPos = Math.Max(engine.Config.MaxPositionEmbeddings, 1);
        if (options.MaxContext is { } mc && (mc < 1 || mc > MaxContextLimit))
            throw GpuOpsException.InvalidArgument("InvalidMaxContext", $"The context must be between 1 and {MaxContextLimit} positions (got {mc}).", mc);
        int maxContext = options.MaxContext ?? Math.Min(longest + Math.Max(options.MaxNewTokens, 1), Math.Max(maxPos, longest + 1));
        if (longest > maxContext)
            throw new GpuOpsException("PromptTooLong", ErrorCategory.LimitsExceeded,
                $"A prompt has {longest} tokens but the context holds {maxContext}.", longest, recommendedAction: "Use a shorter prompt or a larger -MaxContext.");

        var eos = options.IgnoreEos ? new HashSet<int>() : new HashSet<int>(options.EosTokenIds);
        using var cache = engine.CreateCache(prompts.Count, maxContext);
        bool deviceGreedy = options.Sampling.Greedy && options.Sampling.RepetitionPenalty == 1.0;
        int n = prompts.Count;
        var generated = new List<int>[n];
        var samplers = new Sampler[n];
        var finish = new string?[n];
        var emitted = new int[n];
        var texts = new string?[n];
        for (int i = 0; i < n; i++)
        {
            generated[i] = new List<int>();
            samplers[i] = new Sampler(options.Sampling, i);
        }

        var clock = Stopwatch.StartNew();
        TimeSpan ttft = TimeSpan.Zero, prefill = TimeSpan.Zero;
        int steps = 0, decodeTokens = 0;
        if (options.MaxNewTokens == 0)
        {
            for (int i = 0; i < n; i++) finish[i] = "length";
        }

        var active = Enumerable.Range(0, n).Where(i => finish[i] is null).ToList();
        bool first = true;
        while (active.Count > 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var chunks = active.Select(i => new SequenceChunk(i, first ? prompts[i] : new[] { generated[i][^1] })).ToList();
            // Greedy without a repetition penalty: the choice is made on the engine's device (no logits copied back).
            var chosen = deviceGreedy ? engine.ForwardArgMax(cache, chunks, cancellationToken) : null;
            var logits = deviceGreedy ? null : engine.Forward(cache, chunks, allLogits: false, cancellationToken);
            var still = new List<int>();
            for (int c = 0; c < active.Count; c++)
            {
                int i = active[c];
                int next = chosen is not null ? chosen[c] : samplers[i].Next(logits![c], prompts[i].Concat(generated[i]));
                generated[i].Add(next);
                string? reason = null;
                if (eos.Contains(next)) reason = "eos";
                else if (generated[i].Count >= options.MaxNewTokens) reason = "length";
                else if (cache.Length(i) + 1 > cache.MaxContext) reason = "length";
                string delta = string.Empty;
                if (tokenizer is not null)
                {
                    string text = tokenizer.Decode(generated[i].ToArray(), skipSpecialTokens: true);
                    int stopAt = FirstStop(text, options.StopStrings);
                    if (stopAt >= 0)
                    {
                        text = text[..stopAt];
                        reason = "stop";
                    }

                    texts[i] = text;
                    int safe = reason is null ? SafeEmitLength(text, options.StopStrings) : text.Length;
                    if (safe > emitted[i])
                    {
                        delta = text[emitted[i]..safe];
                        emitted[i] = safe;
                    }
                }

                finish[i] = reason;
                onToken?.Invoke(new TokenEvent(i, generated[i].Count - 1, next, delta, reason is not null, reason));
                if (reason is null) still.Add(i);
            }

            if (first)
            {
                ttft = clock.Elapsed;
                prefill = ttft;
                first = false;
            }
            else
            {
                steps++;
                decodeTokens += active.Count;
            }

            active = still;
        }

        var total = clock.Elapsed;
        timings = new GenerationTimings(
            prompts.Sum(p => p.Length),
            generated.Sum(g => g.Count),
            ttft,
            prefill,
            total - prefill,
            steps,
            decodeTokens);
        return Enumerable.Range(0, n)
            .Select(i => new SequenceOutput(i, prompts[i], generated[i].ToArray(), texts[i] ?? (tokenizer is null ? null : string.Empty), finish[i] ?? "length"))
            .ToList();
    }

    internal static int FirstStop(string text, IReadOnlyList<string> stops)
    {
        int best = -1;
        foreach (var s in stops)
        {
            if (string.IsNullOrEmpty(s)) continue;
            int at = text.IndexOf(s, StringComparison.Ordinal);
            if (at >= 0 && (best < 0 || at < best)) best = at;
        }

        return best;
    }

    /// <summary>How much of the text can be shown: not a trailing partial UTF-8 character, nor a tail that may begin a stop string.</summary>
    internal static int SafeEmitLength(string text, IReadOnlyList<string> stops)
    {
        int safe = text.Length;
        while (safe > 0 && text[safe - 1] == '\uFFFD') safe--;
        foreach (var s in stops)
        {
            if (string.IsNullOrEmpty(s)) continue;
            for (int k = Math.Min(s.Length - 1, text.Length); k >= 1; k--)
            {
                if (text.AsSpan(text.Length - k).SequenceEqual(s.AsSpan(0, k)))
                {
                    safe = Math.Min(safe, text.Length - k);
                    break;
                }
            }
        }

        return safe;
    }
}
