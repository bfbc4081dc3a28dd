using System.Text.RegularExpressions;
using GpuOps.Core.Models;
using GpuOps.Core.Tokenizers;

namespace GpuOps.Core.Formats;

/// <summary>How a <see cref="GgufWeightSource"/> hands out the q/k projection weights.</summary>
public enum GgufQkLayout
{
    /// <summary>ReadFloat32 un-permutes q/k rows back to Hugging Face order; RopeLayout reports RotateHalf.</summary>
    HuggingFace,
    /// <summary>ReadFloat32 keeps the file's llama.cpp-permuted rows; RopeLayout reports Interleaved.</summary>
    Stored,
}

/// <summary>
/// An <see cref="IWeightSource"/> over a GGUF file with Hugging Face tensor names
/// (token_embd.weight → model.embed_tokens.weight, blk.N.attn_q.weight → model.layers.N.self_attn.q_proj.weight, ...).
/// <para>
/// llama.cpp's converter permutes the rows of q and k for the llama architecture (pairs (i, i+d/2) of each head
/// become (2i, 2i+1)). By default (<see cref="GgufQkLayout.HuggingFace"/>) <see cref="ReadFloat32"/> returns
/// dequantized weights in Hugging Face row order and <see cref="RopeLayout"/> is RotateHalf, so the same engine
/// path runs safetensors and GGUF. <see cref="GetRaw"/> always returns the stored (permuted) bytes; their layout is
/// <see cref="StoredRopeLayout"/> (Interleaved). <see cref="ReadFloat32Stored"/> dequantizes without un-permuting and
/// <see cref="CopyRawRows"/> copies quantized rows in Hugging Face order (blocks never span rows).
/// </para>
/// </summary>
public sealed class GgufWeightSource : IMappedWeightSource
{
    private readonly Dictionary<string, GgufTensor> _byHfName = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _permuteHeads = new(StringComparer.Ordinal);
    private readonly List<string> _names = new();
    private readonly bool _ownsFile;

    public GgufWeightSource(GgufFile file, GgufQkLayout layout = GgufQkLayout.HuggingFace, bool ownsFile = true)
    {
        File = file;
        Layout = layout;
        _ownsFile = ownsFile;
        string arch = file.GetString("general.architecture") ?? "llama";
        long heads = file.GetInteger($"{arch}.attention.head_count") ?? 0;
        long kvHeads = file.GetInteger($"{arch}.attention.head_count_kv") ?? heads;
        if (heads is < 0 or > int.MaxValue || kvHeads is < 0 or > int.MaxValue)
            throw new ModelFormatException(file.Path, $"head counts {heads}/{kvHeads} are out of range.");
        bool permuted = arch == "llama";
        foreach (var t in file.Tensors)
        {
            var hf = HfName(t.Name);
            if (!_byHfName.TryAdd(hf, t)) throw new ModelFormatException(file.Path, $"tensors '{_byHfName[hf].Name}' and '{t.Name}' both map to '{hf}'.");
            _names.Add(hf);
            if (permuted && heads > 0 && t.Dims.Length == 2)
            {
                if (t.Name.EndsWith(".attn_q.weight", StringComparison.Ordinal)) _permuteHeads[hf] = (int)heads;
                else if (t.Name.EndsWith(".attn_k.weight", StringComparison.Ordinal)) _permuteHeads[hf] = (int)kvHeads;
            }
        }

        foreach (var (name, h) in _permuteHeads)
        {
            var t = _byHfName[name];
            long rows = t.Dims[1];
            if (h <= 0 || rows <= 0 || t.Dims[0] <= 0 || rows % (2L * h) != 0 || rows > int.MaxValue || t.Dims[0] > int.MaxValue)
                throw new ModelFormatException(file.Path, $"tensor '{t.Name}': {rows} rows cannot be split into {h} heads of pairs.");
        }
    }

    public static GgufWeightSource Open(string path, GgufQkLayout layout = GgufQkLayout.HuggingFace) => new(GgufFile.Open(path), layout);

    public GgufFile File { get; }

    public GgufQkLayout Layout { get; }

    public IReadOnlyCollection<string> Names => _names;

    /// <summary>The layout <see cref="ReadFloat32"/> returns q/k in.</summary>
    public RopeLayout RopeLayout => Layout == GgufQkLayout.HuggingFace || _permuteHeads.Count == 0 ? RopeLayout.RotateHalf : RopeLayout.Interleaved;

    /// <summary>The layout of the stored bytes (<see cref="GetRaw"/>).</summary>
    public RopeLayout StoredRopeLayout => _permuteHeads.Count > 0 ? RopeLayout.Interleaved : RopeLayout.RotateHalf;

    public bool IsPermuted(string name) => _permuteHeads.ContainsKey(name);

    /// <summary>The GGUF tensor behind a Hugging Face name.</summary>
    public GgufTensor GetTensor(string name) =>
        _byHfName.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"no tensor named '{name}' in {System.IO.Path.GetFileName(File.Path)}.");

    public bool Contains(string name) => _byHfName.ContainsKey(name);

    public TensorInfo GetInfo(string name)
    {
        var t = GetTensor(name);
        return new TensorInfo(name, t.DType, t.Shape, t.ByteLength);
    }

    public ReadOnlySpan<byte> GetRaw(string name) => File.GetRaw(GetTensor(name));

    public WeightLocation GetLocation(string name)
    {
        var t = GetTensor(name);
        return new WeightLocation(File.Mapping ?? throw new InvalidOperationException("in-memory file"), t.FileOffset, t.ByteLength);
    }

    public void ReadFloat32(string name, Span<float> destination)
    {
        if (Layout == GgufQkLayout.HuggingFace && _permuteHeads.TryGetValue(name, out var heads))
        {
            var t = GetTensor(name);
            int cols = checked((int)t.Dims[0]);
            int rows = checked((int)t.Dims[1]);
            CheckLength(name, t, destination);
            var row = new float[cols];
            var raw = File.GetRaw(t);
            long rowBytes = t.ByteLength / rows;
            for (int r = 0; r < rows; r++)
            {
                GgmlQuants.Dequantize(t.DType, raw.Slice((int)(r * rowBytes), (int)rowBytes), row);
                row.CopyTo(destination.Slice(HfRow(r, rows, heads) * cols, cols));
            }

            return;
        }

        ReadFloat32Stored(name, destination);
    }

    /// <summary>Dequantize in the stored row order (q/k permuted as in the file).</summary>
    public void ReadFloat32Stored(string name, Span<float> destination)
    {
        var t = GetTensor(name);
        CheckLength(name, t, destination);
        var (qk, blockBytes) = GgmlQuants.BlockSize(t.DType);
        // In chunks of whole blocks so spans stay under 2 GB.
        long blocksPerChunk = Math.Max(1, (1L << 28) / blockBytes);
        long totalBlocks = t.ElementCount / qk;
        for (long b = 0; b < totalBlocks; b += blocksPerChunk)
        {
            long n = Math.Min(blocksPerChunk, totalBlocks - b);
            GgmlQuants.Dequantize(t.DType, File.Source.Span(t.FileOffset + b * blockBytes, n * blockBytes),
                destination.Slice((int)(b * qk), (int)(n * qk)));
        }
    }

    /// <summary>Copy the stored bytes with q/k rows put back in Hugging Face order (quantized blocks unchanged).</summary>
    public void CopyRawRows(string name, Span<byte> destination)
    {
        var t = GetTensor(name);
        var raw = File.GetRaw(t);
        if (destination.Length != raw.Length) throw new ArgumentException($"tensor '{name}' is {raw.Length} bytes; the destination holds {destination.Length}.", nameof(destination));
        if (!_permuteHeads.TryGetValue(name, out var heads))
        {
            raw.CopyTo(destination);
            return;
        }

        int rows = checked((int)t.Dims[1]);
        int rowBytes = (int)(t.ByteLength / rows);
        for (int r = 0; r < rows; r++) raw.Slice(r * rowBytes, rowBytes).CopyTo(destination.Slice(HfRow(r, rows, heads) * rowBytes, rowBytes));
    }

    /// <summary>
    /// Dequantize rows [rowStart, rowStart+rowCount) of a 2-D tensor (row-major, HF shape [rows, cols]) in the layout
    /// <see cref="ReadFloat32"/> uses, without touching the other rows (e.g. embedding lookups).
    /// </summary>
    public void ReadFloat32Rows(string name, long rowStart, int rowCount, Span<float> destination)
    {
        var t = GetTensor(name);
        if (t.Dims.Length != 2) throw new ArgumentException($"tensor '{name}' is not 2-D.", nameof(name));
        long rows = t.Dims[1];
        int cols = checked((int)t.Dims[0]);
        if (rowStart < 0 || rowCount < 0 || rowStart + rowCount > rows) throw new ArgumentOutOfRangeException(nameof(rowStart), $"rows [{rowStart}, {rowStart + rowCount}) outside the {rows} rows of '{name}'.");
        if (destination.Length != (long)rowCount * cols) throw new ArgumentException($"{rowCount} rows of {cols} need {(long)rowCount * cols} floats; the destination holds {destination.Length}.", nameof(destination));
        long rowBytes = t.ByteLength / rows;
        bool unpermute = Layout == GgufQkLayout.HuggingFace && _permuteHeads.ContainsKey(name);
        int heads = unpermute ? _permuteHeads[name] : 1;
        for (int i = 0; i < rowCount; i++)
        {
            long hfRow = rowStart + i;
            long stored = unpermute ? StoredRow((int)hfRow, (int)rows, heads) : hfRow;
            GgmlQuants.Dequantize(t.DType, File.Source.Span(t.FileOffset + stored * rowBytes, rowBytes), destination.Slice(i * cols, cols));
        }
    }

    /// <summary>Hugging Face row index → stored (permuted) row index (inverse of <see cref="HfRow"/>).</summary>
    public static int StoredRow(int hfRow, int rows, int heads)
    {
        int headDim = rows / heads;
        int half = headDim / 2;
        int h = hfRow / headDim, within = hfRow % headDim;
        return h * headDim + (within < half ? 2 * within : 2 * (within - half) + 1);
    }

    /// <summary>Stored (permuted) row index → Hugging Face row index.</summary>
    public static int HfRow(int storedRow, int rows, int heads)
    {
        int headDim = rows / heads;
        int half = headDim / 2;
        int h = storedRow / headDim, within = storedRow % headDim;
        int i = within / 2, t = within % 2;
        return h * headDim + t * half + i;
    }

    private static void CheckLength(string name, GgufTensor t, Span<float> destination)
    {
        if (destination.Length != t.ElementCount)
            throw new ArgumentException($"tensor '{name}' has {t.ElementCount} elements; the destination holds {destination.Length}.", nameof(destination));
    }

    private static readonly Regex Block = new(@"^blk\.(\d+)\.(.+)$", RegexOptions.CultureInvariant);

    /// <summary>llama.cpp tensor name → Hugging Face name (unknown names are kept as they are).</summary>
    public static string HfName(string gguf)
    {
        switch (gguf)
        {
            case "token_embd.weight": return "model.embed_tokens.weight";
            case "output_norm.weight": return "model.norm.weight";
            case "output.weight": return "lm_head.weight";
        }

        var m = Block.Match(gguf);
        if (!m.Success) return gguf;
        string layer = m.Groups[1].Value, rest = m.Groups[2].Value;
        int dot = rest.LastIndexOf('.');
        string part = dot < 0 ? rest : rest[..dot], suffix = dot < 0 ? "" : rest[dot..];
        string? hf = part switch
        {
            "attn_norm" => "input_layernorm",
            "ffn_norm" => "post_attention_layernorm",
            "attn_q" => "self_attn.q_proj",
            "attn_k" => "self_attn.k_proj",
            "attn_v" => "self_attn.v_proj",
            "attn_output" => "self_attn.o_proj",
            "ffn_gate" => "mlp.gate_proj",
            "ffn_up" => "mlp.up_proj",
            "ffn_down" => "mlp.down_proj",
            _ => null,
        };
        return hf is null ? gguf : $"model.layers.{layer}.{hf}{suffix}";
    }

    public void Dispose()
    {
        if (_ownsFile) File.Dispose();
    }
}

/// <summary>Config and tokenizer from GGUF metadata.</summary>
public static class GgufModel
{
    public static LlamaConfig ReadConfig(GgufFile f)
    {
        string arch = f.GetString("general.architecture") ?? throw new ModelFormatException(f.Path, "missing general.architecture.");
        if (arch is not ("llama" or "mistral" or "qwen2"))
            throw new ModelFormatException(f.Path, $"architecture '{arch}' is not supported (llama, mistral, qwen2 are).", unsupported: true);
        int Opt(string key, int fallback) => f.GetInteger($"{arch}.{key}") is { } v
            ? v is >= 0 and <= int.MaxValue ? (int)v : throw new ModelFormatException(f.Path, $"metadata {arch}.{key} = {v} is out of range.")
            : fallback;
        int Req(string key) => Opt(key, -1) is var v && v >= 0 ? v : throw new ModelFormatException(f.Path, $"missing metadata {arch}.{key}.");
        int hidden = Req("embedding_length");
        int heads = Req("attention.head_count");
        int layers = Req("block_count");
        int ff = Req("feed_forward_length");
        int kv = Opt("attention.head_count_kv", heads);
        if (hidden <= 0 || heads <= 0 || layers <= 0 || ff <= 0 || kv <= 0 || heads % kv != 0)
            throw new ModelFormatException(f.Path, "inconsistent head/size metadata.");
        int headDim = Opt("attention.key_length", hidden / heads);
        int vocab = Opt("vocab_size", f.GetArray<string>("tokenizer.ggml.tokens")?.Length
            ?? (f.TryGetTensor("token_embd.weight", out var emb) && emb.Dims[^1] <= int.MaxValue ? (int)emb.Dims[^1] : throw new ModelFormatException(f.Path, "cannot tell the vocabulary size.")));
        if (headDim <= 0 || headDim % 2 != 0 || vocab <= 0) throw new ModelFormatException(f.Path, $"head dimension {headDim} or vocabulary size {vocab} is invalid.");
        double eps = f.GetFloat($"{arch}.attention.layer_norm_rms_epsilon") ?? 1e-5;
        // Stored as float32: round to the float the writer meant (1e-5f → 1e-5).
        eps = double.Parse(((float)eps).ToString("R", System.Globalization.CultureInfo.InvariantCulture), System.Globalization.CultureInfo.InvariantCulture);
        double theta = f.GetFloat($"{arch}.rope.freq_base") ?? 10000.0;
        RopeScaling? scaling = null;
        var st = f.GetString($"{arch}.rope.scaling.type");
        if (st is not null && st != "none")
        {
            scaling = new RopeScaling(st, f.GetFloat($"{arch}.rope.scaling.factor") ?? 1.0,
                OriginalMaxPositionEmbeddings: Opt("rope.scaling.original_context_length", 8192));
        }

        int ctx = Opt("context_length", 2048);
        bool tied = !f.TryGetTensor("output.weight", out _);
        bool bias = f.TryGetTensor("blk.0.attn_q.bias", out _);
        string archName = arch switch { "mistral" => "MistralForCausalLM", "qwen2" => "Qwen2ForCausalLM", _ => "LlamaForCausalLM" };
        string dtype = f.Tensors.Count > 0 && f.Tensors.All(t => t.DType is TensorDType.F16 or TensorDType.F32) ? "float16" : "float32";
        return new LlamaConfig(archName, arch, vocab, hidden, ff, layers, heads, kv, headDim, eps, theta, scaling, tied, bias, ctx, dtype);
    }

    public static GenerationDefaults ReadGenerationDefaults(GgufFile f)
    {
        var eos = new List<int>();
        if (TokenId(f, "tokenizer.ggml.eos_token_id") is { } e) eos.Add(e);
        if (TokenId(f, "tokenizer.ggml.eot_token_id") is { } eot && !eos.Contains(eot)) eos.Add(eot);
        return new GenerationDefaults(eos, TokenId(f, "tokenizer.ggml.bos_token_id"), null, null, null, null, null, null);
    }

    private static int? TokenId(GgufFile f, string key)
    {
        var v = f.GetInteger(key);
        if (v is null) return null;
        if (v < 0 || v > int.MaxValue) throw new ModelFormatException(f.Path, $"{key} = {v} is out of range.");
        return (int)v;
    }

    /// <summary>Pre-tokenizer regexes llama.cpp uses for its "pre" names (llama-vocab.cpp).</summary>
    public const string Llama3Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    public const string Qwen2Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>The tokenizer stored as tokenizer.ggml.* (model "gpt2": byte-level BPE with merges).</summary>
    public static HfTokenizer ReadTokenizer(GgufFile f)
    {
        string model = f.GetString("tokenizer.ggml.model") ?? throw new ModelFormatException(f.Path, "no tokenizer.ggml.model metadata (no tokenizer in this file).");
        if (model == "llama") return ReadSentencePieceTokenizer(f);
        if (model != "gpt2") throw new ModelFormatException(f.Path, $"tokenizer.ggml.model '{model}' is not supported (gpt2 and llama are); use the original tokenizer.json.", unsupported: true);
        var tokens = f.GetArray<string>("tokenizer.ggml.tokens") ?? throw new ModelFormatException(f.Path, "tokenizer.ggml.tokens is missing or not a string array.");
        var types = f.GetIntArray("tokenizer.ggml.token_type");
        var mergeLines = f.GetArray<string>("tokenizer.ggml.merges") ?? throw new ModelFormatException(f.Path, "tokenizer.ggml.merges is missing.");
        if (types is not null && types.Length != tokens.Length) throw new ModelFormatException(f.Path, "tokenizer.ggml.token_type and tokens differ in length.");
        var vocab = new Dictionary<string, int>(tokens.Length, StringComparer.Ordinal);
        var added = new List<AddedToken>();
        for (int i = 0; i < tokens.Length; i++)
        {
            vocab.TryAdd(tokens[i], i);
            int type = types?[i] ?? 1;
            if (type == 3) added.Add(new AddedToken(i, tokens[i], Special: true));
            else if (type == 4) added.Add(new AddedToken(i, tokens[i], Special: false, Normalized: false));
        }

        var merges = new List<(string, string)>(mergeLines.Length);
        foreach (var line in mergeLines)
        {
            int sp = line.IndexOf(' ', 1);
            if (sp <= 0 || sp == line.Length - 1) throw new ModelFormatException(f.Path, $"merge '{line}' is not two tokens separated by a space.");
            merges.Add((line[..sp], line[(sp + 1)..]));
        }

        string pre = f.GetString("tokenizer.ggml.pre") ?? "default";
        PreTokenizer preTokenizer = pre switch
        {
            "llama-bpe" or "llama3" or "llama-v3" or "smaug-bpe" => new PreTokenizer.Sequence([
                new PreTokenizer.SplitPattern(null, new CodePointRegex(Llama3Pattern), PreTokenizer.Behavior.Isolated, false),
                new PreTokenizer.ByteLevel(false, false)]),
            "qwen2" => new PreTokenizer.Sequence([
                new PreTokenizer.SplitPattern(null, new CodePointRegex(Qwen2Pattern), PreTokenizer.Behavior.Isolated, false),
                new PreTokenizer.ByteLevel(false, false)]),
            "default" or "gpt-2" or "gpt2" => new PreTokenizer.ByteLevel(false, true),
            _ => throw new ModelFormatException(f.Path, $"tokenizer.ggml.pre '{pre}' is not supported (llama-bpe, qwen2, gpt-2 are).", unsupported: true),
        };

        BpeModel bpe;
        try
        {
            bpe = new BpeModel(vocab, merges);
        }
        catch (ArgumentException ex)
        {
            throw new ModelFormatException(f.Path, ex.Message, ex);
        }

        int? bos = TokenId(f, "tokenizer.ggml.bos_token_id");
        int? eos = TokenId(f, "tokenizer.ggml.eos_token_id");
        foreach (var id in new[] { bos, eos })
        {
            if (id is { } v && (v < 0 || v >= tokens.Length)) throw new ModelFormatException(f.Path, $"special token id {v} is outside the {tokens.Length}-token vocabulary.");
        }

        bool addBos = f.GetBool("tokenizer.ggml.add_bos_token") ?? (pre is "llama-bpe" or "llama3");
        bool addEos = f.GetBool("tokenizer.ggml.add_eos_token") ?? false;
        var post = new PostTemplate(addBos && bos is { } b ? [b] : [], addEos && eos is { } e ? [e] : []);
        return new HfTokenizer(bpe, added, null, preTokenizer, post, new Decoder.ByteLevel(), "ByteLevelBpe", bos, eos is { } ev ? [ev] : []);
    }

    /// <summary>
    /// tokenizer.ggml.model "llama" (SentencePiece BPE with scores, Llama-2 / Mistral family), built the way
    /// transformers converts such a model to tokenizer.json: merges from the vocabulary ordered by the merged piece's
    /// score, byte fallback, fused unk, a "▁" prefix (tokenizer.ggml.add_space_prefix, default true) and spaces as "▁".
    /// </summary>
    private static HfTokenizer ReadSentencePieceTokenizer(GgufFile f)
    {
        var tokens = f.GetArray<string>("tokenizer.ggml.tokens") ?? throw new ModelFormatException(f.Path, "tokenizer.ggml.tokens is missing or not a string array.");
        var scores = f.GetArray<float>("tokenizer.ggml.scores");
        var types = f.GetIntArray("tokenizer.ggml.token_type");
        if (scores is not null && scores.Length != tokens.Length) throw new ModelFormatException(f.Path, "tokenizer.ggml.scores and tokens differ in length.");
        if (types is not null && types.Length != tokens.Length) throw new ModelFormatException(f.Path, "tokenizer.ggml.token_type and tokens differ in length.");
        var vocab = new Dictionary<string, int>(tokens.Length, StringComparer.Ordinal);
        var added = new List<AddedToken>();
        for (int i = 0; i < tokens.Length; i++)
        {
            vocab.TryAdd(tokens[i], i);
            int type = types?[i] ?? 1;
            if (type is 2 or 3) added.Add(new AddedToken(i, tokens[i], Special: true));
            else if (type == 4) added.Add(new AddedToken(i, tokens[i], Special: false, Normalized: false));
        }

        // transformers' SentencePieceExtractor: every split of a piece into two pieces of the vocabulary is a merge,
        // ranked by the merged piece's score (highest first); within a piece by the ids of its halves.
        var candidates = new List<(float Score, int Id, int Left, int Right, string L, string R)>();
        for (int id = 0; id < tokens.Length; id++)
        {
            int type = types?[id] ?? 1;
            if (type is not (1 or 4)) continue;
            var t = tokens[id];
            for (int k = 1; k < t.Length; k++)
            {
                if (char.IsLowSurrogate(t[k])) continue;
                string l = t[..k], r = t[k..];
                if (vocab.TryGetValue(l, out var li) && vocab.TryGetValue(r, out var ri))
                    candidates.Add((scores?[id] ?? -id, id, li, ri, l, r));
            }
        }

        var merges = candidates.OrderByDescending(c => c.Score).ThenBy(c => c.Id).ThenBy(c => c.Left).ThenBy(c => c.Right)
            .Select(c => (c.L, c.R)).ToList();
        int? unkId = TokenId(f, "tokenizer.ggml.unknown_token_id") ?? (vocab.TryGetValue("<unk>", out var u) ? u : null);
        if (unkId is { } ui && (ui < 0 || ui >= tokens.Length)) throw new ModelFormatException(f.Path, $"unknown token id {ui} is outside the vocabulary.");
        BpeModel bpe;
        try
        {
            bpe = new BpeModel(vocab, merges, unkId is { } x ? tokens[x] : null, byteFallback: true, fuseUnk: true);
        }
        catch (ArgumentException ex)
        {
            throw new ModelFormatException(f.Path, ex.Message, ex);
        }

        bool prefix = f.GetBool("tokenizer.ggml.add_space_prefix") ?? true;
        var normalizers = new List<Normalizer>();
        if (prefix) normalizers.Add(new Normalizer.Prepend("\u2581"));
        normalizers.Add(new Normalizer.Replace(" ", null, "\u2581"));
        var decoder = new Decoder.Sequence([
            new Decoder.Replace("\u2581", null, " "), new Decoder.ByteFallback(), new Decoder.Fuse(), new Decoder.Strip(' ', prefix ? 1 : 0, 0)]);
        int? bos = TokenId(f, "tokenizer.ggml.bos_token_id");
        int? eos = TokenId(f, "tokenizer.ggml.eos_token_id");
        foreach (var id in new[] { bos, eos })
        {
            if (id is { } v && v >= tokens.Length) throw new ModelFormatException(f.Path, $"special token id {v} is outside the {tokens.Length}-token vocabulary.");
        }

        bool addBos = f.GetBool("tokenizer.ggml.add_bos_token") ?? true;
        bool addEos = f.GetBool("tokenizer.ggml.add_eos_token") ?? false;
        var post = new PostTemplate(addBos && bos is { } b ? [b] : [], addEos && eos is { } e ? [e] : []);
        return new HfTokenizer(bpe, added, new Normalizer.Sequence(normalizers), null, post, decoder, "SentencePieceBpe", bos, eos is { } ev ? [ev] : []);
    }
}
