using GpuOps.Core.Hosting;
using GpuOps.Core.Models;

namespace GpuOps.Core.Engine;

/// <summary>One decoder layer's float32 weights (row-major [out, in], as Hugging Face stores them).</summary>
public sealed class LlamaLayerWeights
{
    public required float[] AttnNorm { get; init; }
    /// <summary>q, k and v projections stacked: [(heads + 2·kvHeads)·headDim, hidden].</summary>
    public required float[] Wqkv { get; init; }
    public float[]? Bqkv { get; init; }
    public required float[] Wo { get; init; }
    public float[]? Bo { get; init; }
    public required float[] MlpNorm { get; init; }
    /// <summary>gate and up projections stacked: [2·intermediate, hidden].</summary>
    public required float[] WGateUp { get; init; }
    public float[]? BGateUp { get; init; }
    public required float[] WDown { get; init; }
    public float[]? BDown { get; init; }
}

/// <summary>All weights of a llama / mistral / qwen2 decoder in float32.</summary>
public sealed class LlamaWeights
{
    public required LlamaConfig Config { get; init; }
    public required RopeLayout RopeLayout { get; init; }
    public required float[] Embedding { get; init; }
    /// <summary>The output projection [vocab, hidden]; the same array as <see cref="Embedding"/> when tied.</summary>
    public required float[] Output { get; init; }
    public required float[] FinalNorm { get; init; }
    public required LlamaLayerWeights[] Layers { get; init; }

    public bool Tied => ReferenceEquals(Output, Embedding);

    /// <summary>Parameter count (tied embeddings counted once).</summary>
    public long ParameterCount
    {
        get
        {
            long n = Embedding.LongLength + FinalNorm.LongLength + (Tied ? 0 : Output.LongLength);
            foreach (var l in Layers)
            {
                n += l.AttnNorm.LongLength + l.Wqkv.LongLength + (l.Bqkv?.LongLength ?? 0) + l.Wo.LongLength + (l.Bo?.LongLength ?? 0)
                     + l.MlpNorm.LongLength + l.WGateUp.LongLength + (l.BGateUp?.LongLength ?? 0) + l.WDown.LongLength + (l.BDown?.LongLength ?? 0);
            }

            return n;
        }
    }

    /// <summary>Bytes of weights read per decoded token by this float32 engine (everything but the embedding table; one row of it).</summary>
    public long WeightBytesPerToken
    {
        get
        {
            long n = ParameterCount - Embedding.LongLength + Config.HiddenSize + (Tied ? Output.LongLength : 0);
            return n * sizeof(float);
        }
    }

    /// <summary>
    /// Read every weight the engine needs from <paramref name="source"/> (Hugging Face tensor names) into float32.
    /// <paramref name="progress"/> gets (fraction done, tensor name).
    /// </summary>
    public static LlamaWeights Load(LlamaConfig config, IWeightSource source, Action<double, string>? progress = null, CancellationToken cancellationToken = default)
    {
        Validate(config);
        int h = config.HiddenSize, hd = config.HeadDim, nh = config.NumHeads, nkv = config.NumKeyValueHeads, inter = config.IntermediateSize;
        int qd = nh * hd, kvd = nkv * hd;
        int totalTensors = 3 + config.NumLayers * 9;
        int done = 0;

        float[] Read(string name, params long[] shape)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!source.Contains(name))
                throw new GpuOpsException("ModelTensorMissing", ErrorCategory.InvalidData, $"The model has no tensor '{name}'.", name);
            var info = source.GetInfo(name);
            long count = shape.Aggregate(1L, (a, b) => a * b);
            if (info.ElementCount != count)
                throw new GpuOpsException("ModelTensorShape", ErrorCategory.InvalidData,
                    $"Tensor '{name}' has shape [{string.Join(", ", info.Shape)}], expected [{string.Join(", ", shape)}].", name);
            var a = new float[count];
            source.ReadFloat32(name, a);
            progress?.Invoke(Math.Min(1.0, ++done / (double)totalTensors), name);
            return a;
        }

        float[]? ReadOptional(string name, params long[] shape) => source.Contains(name) ? Read(name, shape) : null;

        var embedding = Read("model.embed_tokens.weight", config.VocabSize, h);
        var layers = new LlamaLayerWeights[config.NumLayers];
        for (int i = 0; i < config.NumLayers; i++)
        {
            string p = $"model.layers.{i}.";
            var q = Read(p + "self_attn.q_proj.weight", qd, h);
            var k = Read(p + "self_attn.k_proj.weight", kvd, h);
            var v = Read(p + "self_attn.v_proj.weight", kvd, h);
            var bq = ReadOptional(p + "self_attn.q_proj.bias", qd);
            var bk = ReadOptional(p + "self_attn.k_proj.bias", kvd);
            var bv = ReadOptional(p + "self_attn.v_proj.bias", kvd);
            var g = Read(p + "mlp.gate_proj.weight", inter, h);
            var u = Read(p + "mlp.up_proj.weight", inter, h);
            var bg = ReadOptional(p + "mlp.gate_proj.bias", inter);
            var bu = ReadOptional(p + "mlp.up_proj.bias", inter);
            layers[i] = new LlamaLayerWeights
            {
                AttnNorm = Read(p + "input_layernorm.weight", h),
                Wqkv = Concat(q, k, v),
                Bqkv = bq is null && bk is null && bv is null ? null : Concat(bq ?? new float[qd], bk ?? new float[kvd], bv ?? new float[kvd]),
                Wo = Read(p + "self_attn.o_proj.weight", h, qd),
                Bo = ReadOptional(p + "self_attn.o_proj.bias", h),
                MlpNorm = Read(p + "post_attention_layernorm.weight", h),
                WGateUp = Concat(g, u),
                BGateUp = bg is null && bu is null ? null : Concat(bg ?? new float[inter], bu ?? new float[inter]),
                WDown = Read(p + "mlp.down_proj.weight", h, inter),
                BDown = ReadOptional(p + "mlp.down_proj.bias", h),
            };
        }

        var norm = Read("model.norm.weight", h);
        float[] output = config.TieWordEmbeddings || !source.Contains("lm_head.weight")
            ? embedding
            : Read("lm_head.weight", config.VocabSize, h);
        progress?.Invoke(1.0, "done");
        return new LlamaWeights
        {
            Config = config,
            RopeLayout = source.RopeLayout,
            Embedding = embedding,
            Output = output,
            FinalNorm = norm,
            Layers = layers,
        };
    }

    public static void Validate(LlamaConfig c)
    {
        void Check(bool ok, string what)
        {
            if (!ok) throw new GpuOpsException("ModelConfigInvalid", ErrorCategory.InvalidData, $"Model config is not usable: {what}.", c.Architecture);
        }

        Check(c.HiddenSize > 0 && c.NumLayers > 0 && c.NumHeads > 0 && c.NumKeyValueHeads > 0 && c.HeadDim > 0 && c.VocabSize > 0 && c.IntermediateSize > 0,
            "sizes must be positive");
        Check(c.NumHeads % c.NumKeyValueHeads == 0, $"{c.NumHeads} attention heads are not a multiple of {c.NumKeyValueHeads} key/value heads");
        Check(c.HeadDim % 2 == 0, "head_dim must be even for RoPE");
    }

    private static float[] Concat(params float[][] parts)
    {
        var r = new float[parts.Sum(p => p.LongLength)];
        long o = 0;
        foreach (var p in parts)
        {
            Array.Copy(p, 0, r, o, p.LongLength);
            o += p.LongLength;
        }

        return r;
    }
}
