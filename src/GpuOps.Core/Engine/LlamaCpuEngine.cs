using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using GpuOps.Core.Hosting;
using GpuOps.Core.Models;

namespace GpuOps.Core.Engine;

/// <summary>One sequence's new tokens in a forward step: they are appended to <see cref="Slot"/> of the cache.</summary>
public readonly record struct SequenceChunk(int Slot, int[] Tokens)
{
    /// <summary>
    /// The checks every engine makes before a forward step: slots inside the cache and not repeated, no empty
    /// chunk, room in the context, token ids inside the vocabulary. Returns the total number of new tokens.
    /// </summary>
    public static int Validate(IReadOnlyList<SequenceChunk> chunks, IKvCache cache, int vocabSize)
    {
        int total = 0;
        var seen = new HashSet<int>();
        foreach (var ch in chunks)
        {
            if (ch.Slot < 0 || ch.Slot >= cache.Slots) throw GpuOpsException.InvalidArgument("KvCacheSlot", $"Slot {ch.Slot} is outside the cache's {cache.Slots} slots.");
            if (!seen.Add(ch.Slot)) throw GpuOpsException.InvalidArgument("KvCacheSlot", $"Slot {ch.Slot} appears twice in one step.");
            if (ch.Tokens.Length == 0) throw GpuOpsException.InvalidArgument("EmptySequence", "A sequence in a forward step has no tokens.");
            if (cache.Length(ch.Slot) + ch.Tokens.Length > cache.MaxContext)
                throw new GpuOpsException("ContextFull", ErrorCategory.LimitsExceeded,
                    $"The sequence needs {cache.Length(ch.Slot) + ch.Tokens.Length} positions but the context holds {cache.MaxContext}.",
                    ch.Slot, recommendedAction: "Use a larger MaxContext or fewer tokens.");
            foreach (int id in ch.Tokens)
            {
                if ((uint)id >= (uint)vocabSize) throw GpuOpsException.InvalidArgument("TokenOutOfRange", $"Token id {id} is outside the vocabulary (0..{vocabSize - 1}).", id);
            }

            total += ch.Tokens.Length;
        }

        return total;
    }
}

/// <summary>
/// The float32 CPU forward pass of llama / mistral / qwen2 decoders (RMSNorm, RoPE, grouped-query attention with
/// optional q/k/v bias and sliding window, SwiGLU MLP, tied or untied output). One <see cref="Forward"/> call runs
/// any mix of prefill and decode: the new tokens of every sequence go through the projections together as one
/// matrix, and each token attends to its own sequence's cache up to its position.
/// </summary>
public sealed class LlamaCpuEngine : IInferenceEngine
{
    private readonly LlamaWeights _w;
    private readonly LlamaConfig _c;
    private readonly Rope _rope;
    private readonly int _qDim, _kvDim, _qkvDim, _group;
    private readonly float _scale;

    public LlamaCpuEngine(LlamaWeights weights)
    {
        _w = weights;
        _c = weights.Config;
        _rope = new Rope(_c.HeadDim, _c.RopeTheta, _c.RopeScaling, weights.RopeLayout);
        _qDim = _c.NumHeads * _c.HeadDim;
        _kvDim = _c.NumKeyValueHeads * _c.HeadDim;
        _qkvDim = _qDim + 2 * _kvDim;
        _group = _c.NumHeads / _c.NumKeyValueHeads;
        _scale = 1f / MathF.Sqrt(_c.HeadDim);
    }

    public LlamaWeights Weights => _w;

    public LlamaConfig Config => _c;

    public Rope Rope => _rope;

    /// <summary>Limit on worker threads for matmuls and attention (null = all cores).</summary>
    public int? MaxDegreeOfParallelism { get; set; }

    public string Device => "cpu";

    public string DType => "float32";

    public long ParameterCount => _w.ParameterCount;

    public long WeightBytes => _w.ParameterCount * sizeof(float);

    public long WeightBytesPerToken => _w.WeightBytesPerToken;

    IKvCache IInferenceEngine.CreateCache(int slots, int maxContext) => CreateCache(slots, maxContext);

    float[][] IInferenceEngine.Forward(IKvCache cache, IReadOnlyList<SequenceChunk> chunks, bool allLogits, CancellationToken cancellationToken) =>
        Forward(cache as KvCache ?? throw GpuOpsException.InvalidArgument("KvCacheMismatch", "This KV cache belongs to another engine."), chunks, allLogits, cancellationToken);

    public int[] ForwardArgMax(IKvCache cache, IReadOnlyList<SequenceChunk> chunks, CancellationToken cancellationToken = default) =>
        ((IInferenceEngine)this).Forward(cache, chunks, false, cancellationToken).Select(l => Sampler.ArgMax(l)).ToArray();

    public void Dispose()
    {
    }

    public KvCache CreateCache(int slots, int maxContext)
    {
        _rope.EnsurePositions(maxContext);
        return new KvCache(_c.NumLayers, slots, maxContext, _kvDim);
    }

    /// <summary>
    /// Run the new tokens of each chunk through the model, appending their keys/values to the cache.
    /// Returns, per chunk, the logits of every new position ([tokens·vocab], when <paramref name="allLogits"/>)
    /// or of its last position only ([vocab]).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public float[][] Forward(KvCache cache, IReadOnlyList<SequenceChunk> chunks, bool allLogits, CancellationToken cancellationToken = default)
    {
        int H = _c.HiddenSize, I = _c.IntermediateSize, V = _c.VocabSize, hd = _c.HeadDim;
        int T = SequenceChunk.Validate(chunks, cache, V);

        // Per token: which chunk, slot and absolute position.
        var tokSlot = new int[T];
        var tokPos = new int[T];
        var x = new float[(long)T * H];
        {
            int t = 0;
            foreach (var ch in chunks)
            {
                int start = cache.Length(ch.Slot);
                for (int j = 0; j < ch.Tokens.Length; j++, t++)
                {
                    tokSlot[t] = ch.Slot;
                    tokPos[t] = start + j;
                    Array.Copy(_w.Embedding, (long)ch.Tokens[j] * H, x, (long)t * H, H);
                }
            }
        }

        _rope.EnsurePositions(tokPos.Length == 0 ? 0 : tokPos.Max() + 1);
        var h = new float[(long)T * H];
        var qkv = new float[(long)T * _qkvDim];
        var attn = new float[(long)T * _qDim];
        var gu = new float[(long)T * 2 * I];
        var act = new float[(long)T * I];
        var tmp = new float[(long)T * H];
        float eps = (float)_c.RmsNormEps;
        var par = new ParallelOptions { MaxDegreeOfParallelism = MaxDegreeOfParallelism ?? -1, CancellationToken = cancellationToken };

        for (int l = 0; l < _c.NumLayers; l++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var L = _w.Layers[l];
            for (int t = 0; t < T; t++) CpuMath.RmsNorm(x.AsSpan(t * H, H), L.AttnNorm, eps, h.AsSpan(t * H, H));
            CpuMath.MatMulTransposed(h, T, H, L.Wqkv, _qkvDim, qkv, _qkvDim, 0, L.Bqkv, MaxDegreeOfParallelism);

            // RoPE on q and k, then append k and v to the cache.
            for (int t = 0; t < T; t++)
            {
                int pos = tokPos[t];
                long row = (long)t * _qkvDim;
                for (int head = 0; head < _c.NumHeads; head++) _rope.Apply(qkv.AsSpan((int)(row + head * hd), hd), pos);
                for (int head = 0; head < _c.NumKeyValueHeads; head++) _rope.Apply(qkv.AsSpan((int)(row + _qDim + head * hd), hd), pos);
                Array.Copy(qkv, row + _qDim, cache.Keys(l, tokSlot[t]), (long)pos * _kvDim, _kvDim);
                Array.Copy(qkv, row + _qDim + _kvDim, cache.Values(l, tokSlot[t]), (long)pos * _kvDim, _kvDim);
            }

            Attention(cache, l, T, tokSlot, tokPos, qkv, attn, par);
            CpuMath.MatMulTransposed(attn, T, _qDim, L.Wo, H, tmp, H, 0, L.Bo, MaxDegreeOfParallelism);
            TensorPrimitives.Add(x, tmp, x);

            for (int t = 0; t < T; t++) CpuMath.RmsNorm(x.AsSpan(t * H, H), L.MlpNorm, eps, h.AsSpan(t * H, H));
            CpuMath.MatMulTransposed(h, T, H, L.WGateUp, 2 * I, gu, 2 * I, 0, L.BGateUp, MaxDegreeOfParallelism);
            for (int t = 0; t < T; t++)
            {
                var g = gu.AsSpan((int)((long)t * 2 * I), I);
                CpuMath.SiluMul(g, gu.AsSpan((int)((long)t * 2 * I + I), I), act.AsSpan((int)((long)t * I), I));
                g.CopyTo(act.AsSpan((int)((long)t * I), I));
            }

            CpuMath.MatMulTransposed(act, T, I, L.WDown, H, tmp, H, 0, L.BDown, MaxDegreeOfParallelism);
            TensorPrimitives.Add(x, tmp, x);
        }

        foreach (var ch in chunks) cache.Advance(ch.Slot, ch.Tokens.Length);

        // Final norm and output projection for the rows that need logits.
        var rows = new List<int>();
        {
            int t = 0;
            foreach (var ch in chunks)
            {
                if (allLogits) for (int j = 0; j < ch.Tokens.Length; j++) rows.Add(t + j);
                else rows.Add(t + ch.Tokens.Length - 1);
                t += ch.Tokens.Length;
            }
        }

        int R = rows.Count;
        var normed = new float[(long)R * H];
        for (int r = 0; r < R; r++) CpuMath.RmsNorm(x.AsSpan(rows[r] * H, H), _w.FinalNorm, eps, normed.AsSpan(r * H, H));
        var logits = new float[(long)R * V];
        CpuMath.MatMulTransposed(normed, R, H, _w.Output, V, logits, V, 0, null, MaxDegreeOfParallelism);

        var result = new float[chunks.Count][];
        int rr = 0;
        for (int c = 0; c < chunks.Count; c++)
        {
            int n = allLogits ? chunks[c].Tokens.Length : 1;
            result[c] = new float[(long)n * V];
            Array.Copy(logits, (long)rr * V, result[c], 0, (long)n * V);
            rr += n;
        }

        return result;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Attention(KvCache cache, int layer, int T, int[] tokSlot, int[] tokPos, float[] qkv, float[] attn, ParallelOptions par)
    {
        int nh = _c.NumHeads, hd = _c.HeadDim;
        int? window = _c.SlidingWindow is > 0 ? _c.SlidingWindow : null;
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void One(int item)
        {
            int t = item / nh, head = item % nh;
            int pos = tokPos[t];
            int start = window is int w ? Math.Max(0, pos - w + 1) : 0;
            int n = pos - start + 1;
            int kvHead = head / _group;
            var keys = cache.Keys(layer, tokSlot[t]);
            var values = cache.Values(layer, tokSlot[t]);
            var scores = CpuMath.Rent(n);
            try
            {
                unsafe
                {
                    fixed (float* qp = &qkv[(long)t * _qkvDim + head * hd], kp = keys, vp = values, sp = scores, op = &attn[(long)t * _qDim + head * hd])
                    {
                        float* kBase = kp + (long)start * _kvDim + kvHead * hd;
                        for (int p = 0; p < n; p++) sp[p] = CpuMath.Dot(qp, kBase + (long)p * _kvDim, hd) * _scale;
                        CpuMath.SoftmaxInPlace(new Span<float>(sp, n));
                        new Span<float>(op, hd).Clear();
                        float* vBase = vp + (long)start * _kvDim + kvHead * hd;
                        for (int p = 0; p < n; p++) CpuMath.Axpy(sp[p], vBase + (long)p * _kvDim, op, hd);
                    }
                }
            }
            finally
            {
                CpuMath.Return(scores);
            }
        }

        int items = T * nh;
        long work = (long)T * nh * (tokPos.Length == 0 ? 0 : tokPos.Max() + 1) * hd;
        if (items == 1 || work < 1 << 16 || par.MaxDegreeOfParallelism == 1)
        {
            for (int i = 0; i < items; i++) One(i);
        }
        else
        {
            Parallel.For(0, items, par, One);
        }
    }
}
