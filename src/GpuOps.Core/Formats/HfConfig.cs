using System.Text.Json;
using GpuOps.Core.Models;

namespace GpuOps.Core.Formats;

/// <summary>
/// Hugging Face config.json (llama, mistral, qwen2 families) and generation_config.json.
/// RoPE: transformers 5's "rope_parameters" and the older top-level "rope_theta" / "rope_scaling"
/// (types default, linear, dynamic, yarn, llama3, ...) are both read; "default" means no scaling.
/// </summary>
public static class HfConfig
{
    private static readonly string[] Supported = ["llama", "mistral", "qwen2"];

    public static LlamaConfig ReadConfig(string path)
    {
        if (Directory.Exists(path)) path = Path.Combine(path, "config.json");
        return ParseConfig(ReadJson(path), path);
    }

    public static LlamaConfig ParseConfig(string json, string source = "config.json")
    {
        try
        {
            using var doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
            return ParseConfig(doc.RootElement, source);
        }
        catch (JsonException ex)
        {
            throw new ModelFormatException(source, $"not valid JSON ({ex.Message}).", ex);
        }
    }

    private static JsonElement ReadJson(string path)
    {
        if (!File.Exists(path))
            throw new Hosting.GpuOpsException("ModelFileNotFound", Hosting.ErrorCategory.ObjectNotFound, $"{path}: file not found.", path);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
            return doc.RootElement.Clone();
        }
        catch (JsonException ex)
        {
            throw new ModelFormatException(path, $"not valid JSON ({ex.Message}).", ex);
        }
    }

    public static LlamaConfig ParseConfig(JsonElement c, string source)
    {
        if (c.ValueKind != JsonValueKind.Object) throw new ModelFormatException(source, "not a JSON object.");
        // Multimodal wrappers keep the language model under text_config.
        if (!c.TryGetProperty("hidden_size", out _) && c.TryGetProperty("text_config", out var text) && text.ValueKind == JsonValueKind.Object) c = text;

        string modelType = Str(c, "model_type") ?? "llama";
        string? arch = c.TryGetProperty("architectures", out var a) && a.ValueKind == JsonValueKind.Array && a.GetArrayLength() > 0 && a[0].ValueKind == JsonValueKind.String
            ? a[0].GetString() : null;
        if (!Supported.Contains(modelType))
            throw new ModelFormatException(source, $"model_type '{modelType}' is not supported (supported: {string.Join(", ", Supported)}).", unsupported: true);
        arch ??= modelType switch { "mistral" => "MistralForCausalLM", "qwen2" => "Qwen2ForCausalLM", _ => "LlamaForCausalLM" };

        int hidden = ReqInt(c, "hidden_size", source);
        int heads = ReqInt(c, "num_attention_heads", source);
        int layers = ReqInt(c, "num_hidden_layers", source);
        int inter = ReqInt(c, "intermediate_size", source);
        int vocab = ReqInt(c, "vocab_size", source);
        if (hidden <= 0 || heads <= 0 || layers <= 0 || inter <= 0 || vocab <= 0)
            throw new ModelFormatException(source, "hidden_size, num_attention_heads, num_hidden_layers, intermediate_size and vocab_size must be positive.");
        int kv = Int(c, "num_key_value_heads") ?? heads;
        int headDim = Int(c, "head_dim") ?? hidden / heads;
        if (kv <= 0 || heads % kv != 0) throw new ModelFormatException(source, $"num_key_value_heads {kv} does not divide num_attention_heads {heads}.");
        if (headDim <= 0 || headDim % 2 != 0) throw new ModelFormatException(source, $"head_dim {headDim} must be positive and even.");

        double eps = Dbl(c, "rms_norm_eps") ?? 1e-6;
        bool tie = Bool(c, "tie_word_embeddings") ?? false;
        bool bias = modelType == "qwen2" ? true : Bool(c, "attention_bias") ?? false;
        int maxPos = Int(c, "max_position_embeddings") ?? modelType switch { "mistral" => 131072, "qwen2" => 32768, _ => 2048 };
        string dtype = Str(c, "dtype") ?? Str(c, "torch_dtype") ?? "float32";
        int? window = null;
        if (modelType == "mistral") window = Int(c, "sliding_window");
        else if (modelType == "qwen2" && (Bool(c, "use_sliding_window") ?? false)) window = Int(c, "sliding_window");

        var (theta, scaling) = ReadRope(c, source);
        return new LlamaConfig(arch!, modelType, vocab, hidden, inter, layers, heads, kv, headDim, eps, theta, scaling, tie, bias, maxPos, dtype, window);
    }

    /// <summary>RoPE theta and scaling from rope_parameters (transformers 5) or rope_theta + rope_scaling (older).</summary>
    public static (double Theta, RopeScaling? Scaling) ReadRope(JsonElement c, string source)
    {
        double theta = Dbl(c, "rope_theta") ?? 10000.0;
        JsonElement? scalingElement = null;
        if (c.TryGetProperty("rope_parameters", out var rp) && rp.ValueKind == JsonValueKind.Object)
        {
            // Per-layer-type form ({"full_attention": {...}}): use full attention's.
            if (!rp.TryGetProperty("rope_theta", out _) && !rp.TryGetProperty("rope_type", out _) && rp.TryGetProperty("full_attention", out var full) && full.ValueKind == JsonValueKind.Object)
                rp = full;
            theta = Dbl(rp, "rope_theta") ?? theta;
            scalingElement = rp;
        }

        if (c.TryGetProperty("rope_scaling", out var rs) && rs.ValueKind == JsonValueKind.Object)
            scalingElement = rs;
        if (scalingElement is not { } s) return (theta, null);
        string type = Str(s, "rope_type") ?? Str(s, "type") ?? "default";
        if (type == "default") return (theta, null);
        var def = new RopeScaling(type);
        return (theta, new RopeScaling(
            type,
            Dbl(s, "factor") ?? def.Factor,
            Dbl(s, "low_freq_factor") ?? def.LowFreqFactor,
            Dbl(s, "high_freq_factor") ?? def.HighFreqFactor,
            Int(s, "original_max_position_embeddings") ?? def.OriginalMaxPositionEmbeddings));
    }

    /// <summary>generation_config.json in <paramref name="directory"/>, falling back to config.json's bos/eos ids.</summary>
    public static GenerationDefaults ReadGenerationDefaults(string directory)
    {
        var gen = Path.Combine(directory, "generation_config.json");
        var cfg = Path.Combine(directory, "config.json");
        JsonElement? g = File.Exists(gen) ? ReadJson(gen) : null;
        JsonElement? c = File.Exists(cfg) ? ReadJson(cfg) : null;
        return ParseGenerationDefaults(g, c);
    }

    public static GenerationDefaults ParseGenerationDefaults(JsonElement? generation, JsonElement? config)
    {
        IReadOnlyList<int> eos = Array.Empty<int>();
        int? bos = null;
        foreach (var e in new[] { config, generation })
        {
            if (e is not { ValueKind: JsonValueKind.Object } el) continue;
            if (el.TryGetProperty("eos_token_id", out var eosEl)) eos = IntList(eosEl);
            if (Int(el, "bos_token_id") is { } b) bos = b;
        }

        if (generation is not { ValueKind: JsonValueKind.Object } gg) return new GenerationDefaults(eos, bos, null, null, null, null, null, null);
        return new GenerationDefaults(eos, bos, Dbl(gg, "temperature"), Dbl(gg, "top_p"), Int(gg, "top_k"), Dbl(gg, "repetition_penalty"),
            Bool(gg, "do_sample"), Int(gg, "max_new_tokens"));
    }

    internal static IReadOnlyList<int> IntList(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Number when e.TryGetInt32(out var i) => new[] { i },
        JsonValueKind.Array => e.EnumerateArray().Where(x => x.ValueKind == JsonValueKind.Number && x.TryGetInt32(out _)).Select(x => x.GetInt32()).ToArray(),
        _ => Array.Empty<int>(),
    };

    internal static string? Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    internal static int? Int(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) ? i : null;

    internal static double? Dbl(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;

    internal static bool? Bool(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : null;

    private static int ReqInt(JsonElement e, string name, string source) =>
        Int(e, name) ?? throw new ModelFormatException(source, $"missing integer \"{name}\".");
}
