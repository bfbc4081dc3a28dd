using GpuOps.Core.Hosting;
using GpuOps.Core.Models;

namespace GpuOps.Core.Engine;

/// <summary>Perplexity of a token stream (plain data).</summary>
public sealed record PerplexityResult(double Perplexity, double NegativeLogLikelihood, int Windows, long ScoredTokens, long Tokens, int Context);

/// <summary>
/// Perplexity exactly as tests/data/README.md defines it: split the text on blank lines ("\n\n") into paragraphs,
/// encode each with special tokens (BOS first) and append EOS, concatenate, cut into non-overlapping windows of
/// <c>ctx</c> tokens (remainder dropped), and in each window score every token after the first (natural log).
/// </summary>
public static class PerplexityCalculator
{
    /// <summary>The token stream of the procedure: each paragraph's ids (with special tokens) followed by EOS.</summary>
    public static int[] TokenStream(ITokenizer tokenizer, string text)
    {
        int eos = tokenizer.EosTokenIds.Count > 0
            ? tokenizer.EosTokenIds[0]
            : throw new GpuOpsException("TokenizerNoEos", ErrorCategory.InvalidData, "The tokenizer defines no EOS token, which the perplexity procedure appends to every paragraph.");
        var ids = new List<int>();
        foreach (var paragraph in text.Split("\n\n"))
        {
            ids.AddRange(tokenizer.Encode(paragraph, addSpecialTokens: true));
            ids.Add(eos);
        }

        return ids.ToArray();
    }

    /// <summary>Paragraph id lists (already with special tokens) → the stream with EOS after each.</summary>
    public static int[] TokenStream(IEnumerable<int[]> paragraphs, int eos) =>
        paragraphs.SelectMany(p => p.Append(eos)).ToArray();

    /// <summary>
    /// Score the stream. <paramref name="maxWindows"/> limits the number of windows (a documented subset, for quick checks);
    /// <paramref name="progress"/> gets (windows done, windows in all).
    /// </summary>
    public static PerplexityResult Compute(IInferenceEngine engine, int[] tokens, int context, int? maxWindows = null,
        Action<int, int>? progress = null, CancellationToken cancellationToken = default)
    {
        if (context < 2) throw GpuOpsException.InvalidArgument("InvalidContext", $"Context must be at least 2 tokens, got {context}.", context);
        int windows = tokens.Length / context;
        if (maxWindows is int m) windows = Math.Min(windows, m);
        if (windows == 0)
            throw GpuOpsException.InvalidArgument("TextTooShort", $"The text has {tokens.Length} tokens, fewer than one window of {context}.", tokens.Length);
        int V = engine.Config.VocabSize;
        using var cache = engine.CreateCache(1, context);
        double nll = 0;
        long scored = 0;
        var scratch = new float[V];
        for (int w = 0; w < windows; w++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var window = new int[context];
            Array.Copy(tokens, (long)w * context, window, 0, context);
            cache.ResetAll();
            var logits = engine.Forward(cache, new[] { new SequenceChunk(0, window) }, allLogits: true, cancellationToken)[0];
            for (int j = 0; j < context - 1; j++)
            {
                var row = new ReadOnlySpan<float>(logits, j * V, V);
                nll += CpuMath.LogSumExp(row, scratch) - row[window[j + 1]];
                scored++;
            }

            progress?.Invoke(w + 1, windows);
        }

        return new PerplexityResult(Math.Exp(nll / scored), nll, windows, scored, tokens.Length, context);
    }
}
