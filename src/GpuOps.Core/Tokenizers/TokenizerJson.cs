using System.Text;
using System.Text.Json;
using GpuOps.Core.Formats;

namespace GpuOps.Core.Tokenizers;

/// <summary>Reads a Hugging Face tokenizer.json (BPE models) into an <see cref="HfTokenizer"/>.</summary>
public static class TokenizerJson
{
    /// <summary>Load tokenizer.json from a file or a model directory (tokenizer_config.json beside it is read too).</summary>
    public static HfTokenizer Load(string path)
    {
        if (Directory.Exists(path)) path = Path.Combine(path, "tokenizer.json");
        if (!File.Exists(path))
            throw new Hosting.GpuOpsException("ModelFileNotFound", Hosting.ErrorCategory.ObjectNotFound, $"{path}: file not found.", path);
        var configPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "tokenizer_config.json");
        return Parse(File.ReadAllText(path, Encoding.UTF8), File.Exists(configPath) ? File.ReadAllText(configPath, Encoding.UTF8) : null, path);
    }

    /// <summary>"ByteLevelBpe", "SentencePieceBpe", or the model type (e.g. "Unigram") without building the tokenizer.</summary>
    public static string DetectKind(string path)
    {
        if (Directory.Exists(path)) path = Path.Combine(path, "tokenizer.json");
        if (!File.Exists(path)) return "None";
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = doc.RootElement;
            string type = root.TryGetProperty("model", out var m) ? Str(m, "type") ?? "BPE" : "?";
            if (type != "BPE") return type;
            return ContainsType(root, "pre_tokenizer", "ByteLevel") || ContainsType(root, "decoder", "ByteLevel") ? "ByteLevelBpe" : "SentencePieceBpe";
        }
        catch (JsonException)
        {
            return "Invalid";
        }
    }

    public static HfTokenizer Parse(string tokenizerJson, string? tokenizerConfigJson = null, string source = "tokenizer.json")
    {
        try
        {
            using var doc = JsonDocument.Parse(tokenizerJson, new JsonDocumentOptions { MaxDepth = 64 });
            JsonDocument? cfg = tokenizerConfigJson is null ? null : JsonDocument.Parse(tokenizerConfigJson);
            using (cfg)
            {
                return Build(doc.RootElement, cfg?.RootElement, source);
            }
        }
        catch (JsonException ex)
        {
            throw new ModelFormatException(source, $"not valid JSON ({ex.Message}).", ex);
        }
        catch (ArgumentException ex)
        {
            throw new ModelFormatException(source, ex.Message, ex);
        }
        catch (InvalidOperationException ex)
        {
            throw new ModelFormatException(source, $"unexpected structure ({ex.Message}).", ex);
        }
        catch (KeyNotFoundException ex)
        {
            throw new ModelFormatException(source, $"missing field ({ex.Message}).", ex);
        }
    }

    private static HfTokenizer Build(JsonElement root, JsonElement? config, string source)
    {
        var model = root.GetProperty("model");
        string type = Str(model, "type") ?? (model.TryGetProperty("merges", out _) ? "BPE" : "?");
        if (type != "BPE") throw new ModelFormatException(source, $"tokenizer model '{type}' is not supported (only BPE).", unsupported: true);
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in model.GetProperty("vocab").EnumerateObject()) vocab[p.Name] = p.Value.GetInt32();
        var merges = new List<(string, string)>();
        if (model.TryGetProperty("merges", out var m) && m.ValueKind == JsonValueKind.Array)
        {
            foreach (var e in m.EnumerateArray())
            {
                if (e.ValueKind == JsonValueKind.String)
                {
                    var s = e.GetString()!;
                    int sp = s.IndexOf(' ', 1);
                    if (sp <= 0 || sp == s.Length - 1) throw new ModelFormatException(source, $"merge '{s}' is not two tokens separated by a space.");
                    merges.Add((s[..sp], s[(sp + 1)..]));
                }
                else if (e.ValueKind == JsonValueKind.Array && e.GetArrayLength() == 2)
                {
                    merges.Add((e[0].GetString()!, e[1].GetString()!));
                }
                else throw new ModelFormatException(source, $"merge {e.GetRawText()} is not understood.");
            }
        }

        if (model.TryGetProperty("dropout", out var dropout) && dropout.ValueKind == JsonValueKind.Number && dropout.GetDouble() > 0)
            throw new ModelFormatException(source, "BPE dropout is not supported for inference.", unsupported: true);
        var bpe = new BpeModel(vocab, merges, Str(model, "unk_token"), Bool(model, "byte_fallback") ?? false, Bool(model, "fuse_unk") ?? false,
            Bool(model, "ignore_merges") ?? false, Str(model, "continuing_subword_prefix"), Str(model, "end_of_word_suffix"));

        var added = new List<AddedToken>();
        if (root.TryGetProperty("added_tokens", out var at) && at.ValueKind == JsonValueKind.Array)
        {
            foreach (var a in at.EnumerateArray())
            {
                bool special = Bool(a, "special") ?? false;
                added.Add(new AddedToken(a.GetProperty("id").GetInt32(), a.GetProperty("content").GetString()!, special,
                    Bool(a, "single_word") ?? false, Bool(a, "lstrip") ?? false, Bool(a, "rstrip") ?? false, Bool(a, "normalized") ?? !special));
            }
        }

        var normalizer = root.TryGetProperty("normalizer", out var n) ? ParseNormalizer(n, source) : null;
        var pre = root.TryGetProperty("pre_tokenizer", out var pt) ? ParsePreTokenizer(pt, source) : null;
        var decoder = root.TryGetProperty("decoder", out var d) ? ParseDecoder(d, source) : null;
        Func<string, int?> idOf = token =>
        {
            foreach (var a in added) if (a.Content == token) return a.Id;
            return vocab.TryGetValue(token, out var id) ? id : null;
        };
        var post = root.TryGetProperty("post_processor", out var pp) ? ParsePost(pp, idOf, source) : null;

        bool byteLevel = ContainsType(root, "pre_tokenizer", "ByteLevel") || ContainsType(root, "decoder", "ByteLevel");
        string kind = byteLevel ? "ByteLevelBpe" : "SentencePieceBpe";

        int? bos = null;
        var eos = new List<int>();
        bool cleanUp = false;
        if (config is { ValueKind: JsonValueKind.Object } c)
        {
            if (TokenName(c, "bos_token") is { } b) bos = idOf(b);
            if (TokenName(c, "eos_token") is { } e && idOf(e) is { } eid) eos.Add(eid);
            cleanUp = Bool(c, "clean_up_tokenization_spaces") ?? false;
        }

        bos ??= post is { Prefix.Count: > 0 } ? post.Prefix[0] : null;
        return new HfTokenizer(bpe, added, normalizer, pre, post, decoder, kind, bos, eos, cleanUp);
    }

    private static bool ContainsType(JsonElement root, string key, string type) =>
        root.TryGetProperty(key, out var e) && HasType(e, type);

    private static bool HasType(JsonElement e, string type)
    {
        if (e.ValueKind == JsonValueKind.Array) return e.EnumerateArray().Any(x => HasType(x, type));
        if (e.ValueKind != JsonValueKind.Object) return false;
        foreach (var p in e.EnumerateObject())
        {
            if (p.Name == "type" && p.Value.ValueKind == JsonValueKind.String && p.Value.GetString() == type) return true;
            if (p.Value.ValueKind is JsonValueKind.Array or JsonValueKind.Object && HasType(p.Value, type)) return true;
        }

        return false;
    }

    private static string? TokenName(JsonElement c, string key)
    {
        if (!c.TryGetProperty(key, out var v)) return null;
        if (v.ValueKind == JsonValueKind.String) return v.GetString();
        if (v.ValueKind == JsonValueKind.Object && v.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String) return content.GetString();
        return null;
    }

    private static (string? Literal, CodePointRegex? Regex) Pattern(JsonElement p)
    {
        if (p.TryGetProperty("String", out var s)) return (s.GetString(), null);
        if (p.TryGetProperty("Regex", out var r)) return (null, new CodePointRegex(r.GetString()!));
        throw new ArgumentException($"pattern {p.GetRawText()} is neither String nor Regex.");
    }

    private static Normalizer? ParseNormalizer(JsonElement n, string source)
    {
        if (n.ValueKind == JsonValueKind.Null) return null;
        string type = Str(n, "type") ?? "";
        return type switch
        {
            "Sequence" => new Normalizer.Sequence(n.GetProperty("normalizers").EnumerateArray().Select(x => ParseNormalizer(x, source)).OfType<Normalizer>().ToList()),
            "Prepend" => new Normalizer.Prepend(n.GetProperty("prepend").GetString()!),
            "Replace" => Replace(n),
            "NFC" => new Normalizer.Unicode(NormalizationForm.FormC),
            "NFD" => new Normalizer.Unicode(NormalizationForm.FormD),
            "NFKC" => new Normalizer.Unicode(NormalizationForm.FormKC),
            "NFKD" => new Normalizer.Unicode(NormalizationForm.FormKD),
            "Lowercase" => new Normalizer.Lowercase(),
            "Strip" => new Normalizer.Strip(Bool(n, "strip_left") ?? true, Bool(n, "strip_right") ?? true),
            _ => throw new ModelFormatException(source, $"normalizer '{type}' is not supported.", unsupported: true),
        };

        static Normalizer Replace(JsonElement n)
        {
            var (lit, re) = Pattern(n.GetProperty("pattern"));
            return new Normalizer.Replace(lit, re, n.GetProperty("content").GetString()!);
        }
    }

    private static PreTokenizer? ParsePreTokenizer(JsonElement p, string source)
    {
        if (p.ValueKind == JsonValueKind.Null) return null;
        string type = Str(p, "type") ?? "";
        switch (type)
        {
            case "Sequence":
                return new PreTokenizer.Sequence(p.GetProperty("pretokenizers").EnumerateArray().Select(x => ParsePreTokenizer(x, source)).OfType<PreTokenizer>().ToList());
            case "Split":
            {
                var (lit, re) = Pattern(p.GetProperty("pattern"));
                var behavior = (Str(p, "behavior") ?? "Isolated") switch
                {
                    "Removed" => PreTokenizer.Behavior.Removed,
                    "Isolated" => PreTokenizer.Behavior.Isolated,
                    "MergedWithPrevious" => PreTokenizer.Behavior.MergedWithPrevious,
                    "MergedWithNext" => PreTokenizer.Behavior.MergedWithNext,
                    "Contiguous" => PreTokenizer.Behavior.Contiguous,
                    var b => throw new ModelFormatException(source, $"split behavior '{b}' is not supported.", unsupported: true),
                };
                return new PreTokenizer.SplitPattern(lit, re, behavior, Bool(p, "invert") ?? false);
            }

            case "ByteLevel":
                return new PreTokenizer.ByteLevel(Bool(p, "add_prefix_space") ?? true, Bool(p, "use_regex") ?? true);
            case "Metaspace":
                return new PreTokenizer.Metaspace(Replacement(p), Scheme(p), Bool(p, "split") ?? true);
            case "Digits":
                return new PreTokenizer.Digits(Bool(p, "individual_digits") ?? false);
            case "WhitespaceSplit":
                return new PreTokenizer.WhitespaceSplit();
            default:
                throw new ModelFormatException(source, $"pre-tokenizer '{type}' is not supported.", unsupported: true);
        }
    }

    private static char Replacement(JsonElement p)
    {
        var s = Str(p, "replacement") ?? "\u2581";
        if (s.Length != 1) throw new ArgumentException($"Metaspace replacement '{s}' must be one char.");
        return s[0];
    }

    private static string Scheme(JsonElement p)
    {
        if (Str(p, "prepend_scheme") is { } s) return s;
        return (Bool(p, "add_prefix_space") ?? true) ? "always" : "never";
    }

    private static Decoder? ParseDecoder(JsonElement d, string source)
    {
        if (d.ValueKind == JsonValueKind.Null) return null;
        string type = Str(d, "type") ?? "";
        switch (type)
        {
            case "Sequence":
                return new Decoder.Sequence(d.GetProperty("decoders").EnumerateArray().Select(x => ParseDecoder(x, source)).OfType<Decoder>().ToList());
            case "ByteLevel": return new Decoder.ByteLevel();
            case "ByteFallback": return new Decoder.ByteFallback();
            case "Fuse": return new Decoder.Fuse();
            case "Replace":
            {
                var (lit, re) = Pattern(d.GetProperty("pattern"));
                return new Decoder.Replace(lit, re, d.GetProperty("content").GetString()!);
            }

            case "Strip":
            {
                var content = Str(d, "content") ?? " ";
                return new Decoder.Strip(content.Length > 0 ? content[0] : ' ', Int(d, "start") ?? 0, Int(d, "stop") ?? 0);
            }

            case "Metaspace": return new Decoder.Metaspace(Replacement(d), Scheme(d));
            default:
                throw new ModelFormatException(source, $"decoder '{type}' is not supported.", unsupported: true);
        }
    }

    private static PostTemplate? ParsePost(JsonElement p, Func<string, int?> idOf, string source)
    {
        if (p.ValueKind == JsonValueKind.Null) return null;
        string type = Str(p, "type") ?? "";
        switch (type)
        {
            case "ByteLevel": return null;
            case "Sequence":
            {
                var prefix = new List<int>();
                var suffix = new List<int>();
                foreach (var x in p.GetProperty("processors").EnumerateArray())
                {
                    if (ParsePost(x, idOf, source) is { } t)
                    {
                        prefix.AddRange(t.Prefix);
                        suffix.InsertRange(0, t.Suffix);
                    }
                }

                return new PostTemplate(prefix, suffix);
            }

            case "TemplateProcessing":
            {
                var specials = new Dictionary<string, int[]>(StringComparer.Ordinal);
                if (p.TryGetProperty("special_tokens", out var st) && st.ValueKind == JsonValueKind.Object)
                {
                    foreach (var s in st.EnumerateObject())
                        specials[s.Name] = s.Value.GetProperty("ids").EnumerateArray().Select(i => i.GetInt32()).ToArray();
                }

                var prefix = new List<int>();
                var suffix = new List<int>();
                bool seenSequence = false;
                foreach (var item in p.GetProperty("single").EnumerateArray())
                {
                    if (item.TryGetProperty("Sequence", out _)) { seenSequence = true; continue; }
                    if (!item.TryGetProperty("SpecialToken", out var sp)) throw new ArgumentException($"template item {item.GetRawText()} is not understood.");
                    var name = sp.GetProperty("id").GetString()!;
                    int[] ids = specials.TryGetValue(name, out var v) ? v
                        : idOf(name) is { } one ? [one] : throw new ArgumentException($"template token '{name}' is not defined.");
                    (seenSequence ? suffix : prefix).AddRange(ids);
                }

                return new PostTemplate(prefix, suffix);
            }

            case "RobertaProcessing":
            case "BertProcessing":
            {
                int cls = p.GetProperty("cls")[1].GetInt32();
                int sep = p.GetProperty("sep")[1].GetInt32();
                return new PostTemplate([cls], [sep]);
            }

            default:
                throw new ModelFormatException(source, $"post-processor '{type}' is not supported.", unsupported: true);
        }
    }

    private static string? Str(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static bool? Bool(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : null;

    private static int? Int(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) ? i : null;
}
