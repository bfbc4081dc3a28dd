using GpuOps.Core.Hosting;

namespace GpuOps.Core.Engine;

/// <summary>How the next token is chosen. Temperature 0 means greedy (argmax); TopK 0 and TopP 1 mean "off".</summary>
public sealed record SamplingOptions(
    double Temperature = 0,
    int TopK = 0,
    double TopP = 1.0,
    double RepetitionPenalty = 1.0,
    int? Seed = null)
{
    public bool Greedy => Temperature <= 0;

    public void Validate()
    {
        if (!double.IsFinite(Temperature) || Temperature < 0) throw GpuOpsException.InvalidArgument("InvalidTemperature", $"Temperature must be 0 (greedy) or positive, got {Temperature}.", Temperature);
        if (TopK < 0) throw GpuOpsException.InvalidArgument("InvalidTopK", $"TopK must be 0 (off) or positive, got {TopK}.", TopK);
        if (double.IsNaN(TopP) || TopP <= 0 || TopP > 1) throw GpuOpsException.InvalidArgument("InvalidTopP", $"TopP must be in (0, 1], got {TopP}.", TopP);
        if (double.IsNaN(RepetitionPenalty) || RepetitionPenalty <= 0) throw GpuOpsException.InvalidArgument("InvalidRepetitionPenalty", $"RepetitionPenalty must be positive, got {RepetitionPenalty}.", RepetitionPenalty);
    }
}

/// <summary>
/// Chooses tokens from logits in Hugging Face's order: repetition penalty, then temperature, top-k, top-p, then
/// a draw from the remaining distribution (or argmax when greedy). One sampler per sequence; with a seed the
/// draws are reproducible.
/// </summary>
public sealed class Sampler
{
    private readonly SamplingOptions _o;
    private readonly Random _random;

    public Sampler(SamplingOptions options, int sequenceIndex = 0)
    {
        options.Validate();
        _o = options;
        _random = options.Seed is int s ? new Random(unchecked(s + 7919 * sequenceIndex)) : new Random();
    }

    public SamplingOptions Options => _o;

    /// <summary>Index of the largest value (first one on ties, as torch.argmax).</summary>
    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        float bv = logits[0];
        for (int i = 1; i < logits.Length; i++)
        {
            if (logits[i] > bv)
            {
                bv = logits[i];
                best = i;
            }
        }

        return best;
    }

    /// <summary>Apply the repetition penalty in place (HF: negative scores ×penalty, positive ÷penalty, once per distinct token).</summary>
    public static void ApplyRepetitionPenalty(Span<float> logits, IEnumerable<int> previous, double penalty)
    {
        if (penalty == 1.0) return;
        var seen = new HashSet<int>();
        foreach (int id in previous)
        {
            if ((uint)id >= (uint)logits.Length || !seen.Add(id)) continue;
            float s = logits[id];
            logits[id] = s < 0 ? (float)(s * penalty) : (float)(s / penalty);
        }
    }

    /// <summary>Choose the next token. <paramref name="logits"/> is modified. <paramref name="previous"/>: prompt and generated ids.</summary>
    public int Next(Span<float> logits, IEnumerable<int> previous)
    {
        ApplyRepetitionPenalty(logits, previous, _o.RepetitionPenalty);
        if (_o.Greedy) return ArgMax(logits);

        int n = logits.Length;
        var idx = new int[n];
        var val = new float[n];
        for (int i = 0; i < n; i++)
        {
            idx[i] = i;
            val[i] = (float)(logits[i] / _o.Temperature);
        }

        // Sort candidates by descending score (stable on index for ties).
        Array.Sort(idx, (a, b) =>
        {
            int c = val[b].CompareTo(val[a]);
            return c != 0 ? c : a.CompareTo(b);
        });
        int keep = n;
        if (_o.TopK > 0) keep = Math.Min(keep, _o.TopK);

        // Softmax over the kept candidates (double).
        double max = val[idx[0]];
        var p = new double[keep];
        double sum = 0;
        for (int i = 0; i < keep; i++)
        {
            p[i] = Math.Exp(val[idx[i]] - max);
            sum += p[i];
        }

        for (int i = 0; i < keep; i++) p[i] /= sum;
        if (_o.TopP < 1.0)
        {
            double cum = 0;
            int k = 0;
            while (k < keep)
            {
                cum += p[k];
                k++;
                if (cum >= _o.TopP) break;
            }

            keep = Math.Max(1, k);
            double s2 = 0;
            for (int i = 0; i < keep; i++) s2 += p[i];
            for (int i = 0; i < keep; i++) p[i] /= s2;
        }

        double r = _random.NextDouble();
        double acc = 0;
        for (int i = 0; i < keep; i++)
        {
            acc += p[i];
            if (r < acc) return idx[i];
        }

        return idx[keep - 1];
    }
}
