using GpuOps.Core.Formats;

namespace GpuOps.Core.Models;

/// <summary>The Hugging Face tensors of a llama-family model with a given config.</summary>
public static class LlamaLayout
{
    public static IReadOnlyList<(string Name, long[] Shape)> Tensors(LlamaConfig c)
    {
        long h = c.HiddenSize, q = (long)c.NumHeads * c.HeadDim, kv = (long)c.NumKeyValueHeads * c.HeadDim, ff = c.IntermediateSize, v = c.VocabSize;
        var list = new List<(string, long[])> { ("model.embed_tokens.weight", [v, h]) };
        for (int i = 0; i < c.NumLayers; i++)
        {
            string p = $"model.layers.{i}.";
            list.Add((p + "input_layernorm.weight", [h]));
            list.Add((p + "self_attn.q_proj.weight", [q, h]));
            list.Add((p + "self_attn.k_proj.weight", [kv, h]));
            list.Add((p + "self_attn.v_proj.weight", [kv, h]));
            if (c.AttentionBias)
            {
                list.Add((p + "self_attn.q_proj.bias", [q]));
                list.Add((p + "self_attn.k_proj.bias", [kv]));
                list.Add((p + "self_attn.v_proj.bias", [kv]));
            }

            list.Add((p + "self_attn.o_proj.weight", [h, q]));
            list.Add((p + "post_attention_layernorm.weight", [h]));
            list.Add((p + "mlp.gate_proj.weight", [ff, h]));
            list.Add((p + "mlp.up_proj.weight", [ff, h]));
            list.Add((p + "mlp.down_proj.weight", [h, ff]));
        }

        list.Add(("model.norm.weight", [h]));
        if (!c.TieWordEmbeddings) list.Add(("lm_head.weight", [v, h]));
        return list;
    }

    public static long ParameterCount(LlamaConfig c) => Tensors(c).Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b));

    /// <summary>Bytes of K and V cache per token: layers × 2 × kv heads × head_dim × element size.</summary>
    public static long KvCacheBytesPerToken(LlamaConfig c, int elementSize = 2) => (long)c.NumLayers * 2 * c.NumKeyValueHeads * c.HeadDim * elementSize;

    /// <summary>Llama-3-8B's shape (hidden 4096, 32 layers, 32 heads, 8 kv heads, intermediate 14336, vocab 128256).</summary>
    public static LlamaConfig Llama3_8B => new("LlamaForCausalLM", "llama", 128256, 4096, 14336, 32, 32, 8, 128, 1e-5, 500000.0,
        new RopeScaling("llama3", 8.0, 1.0, 4.0, 8192), false, false, 131072, "bfloat16");

    /// <summary>config.json as transformers writes it (older top-level rope_theta/rope_scaling form, read by every version).</summary>
    public static string ToConfigJson(LlamaConfig c)
    {
        var d = new Dictionary<string, object?>
        {
            ["architectures"] = new[] { c.Architecture },
            ["model_type"] = c.ModelType,
            ["vocab_size"] = c.VocabSize,
            ["hidden_size"] = c.HiddenSize,
            ["intermediate_size"] = c.IntermediateSize,
            ["num_hidden_layers"] = c.NumLayers,
            ["num_attention_heads"] = c.NumHeads,
            ["num_key_value_heads"] = c.NumKeyValueHeads,
            ["head_dim"] = c.HeadDim,
            ["rms_norm_eps"] = c.RmsNormEps,
            ["rope_theta"] = c.RopeTheta,
            ["tie_word_embeddings"] = c.TieWordEmbeddings,
            ["attention_bias"] = c.AttentionBias,
            ["max_position_embeddings"] = c.MaxPositionEmbeddings,
            ["torch_dtype"] = c.TorchDType,
            ["hidden_act"] = "silu",
        };
        if (c.RopeScaling is { } s)
        {
            d["rope_scaling"] = new Dictionary<string, object>
            {
                ["rope_type"] = s.Type, ["factor"] = s.Factor, ["low_freq_factor"] = s.LowFreqFactor,
                ["high_freq_factor"] = s.HighFreqFactor, ["original_max_position_embeddings"] = s.OriginalMaxPositionEmbeddings,
            };
        }

        if (c.SlidingWindow is { } w) d["sliding_window"] = w;
        return System.Text.Json.JsonSerializer.Serialize(d, new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
    }
}
