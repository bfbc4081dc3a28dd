using System.Collections.Concurrent;
using GpuOps.Core.Formats;
using GpuOps.Core.Hosting;
using GpuOps.Core.Tokenizers;

namespace GpuOps.Core.Models;

/// <summary>What a model on disk is, read from headers and metadata only (plain data).</summary>
public sealed record ModelInfo(
    string Path,
    string Format,
    string Architecture,
    string ModelType,
    long Parameters,
    string DTypes,
    long FileBytes,
    long WeightBytes,
    long KvCacheBytesPer1kTokens,
    int Layers,
    int HiddenSize,
    int IntermediateSize,
    int Heads,
    int KeyValueHeads,
    int HeadDim,
    int VocabSize,
    int ContextLength,
    double RopeTheta,
    string? RopeScaling,
    bool TieWordEmbeddings,
    int Tensors,
    string TokenizerKind)
{
    /// <summary>Parameters in billions, for display.</summary>
    public double ParametersB => Math.Round(Parameters / 1e9, 3);
}

/// <summary><c>Get-GpuModelInfo</c> / <c>gpuops model info</c>: describe a model directory or .gguf file without loading weights.</summary>
public sealed class GetModelInfoOperation : IOperation
{
    public string Path { get; set; } = "";

    /// <summary>Bytes per KV-cache element (2 for fp16/bf16 caches).</summary>
    public int KvCacheElementSize { get; set; } = 2;

    public void Execute(IOperationHost host) => host.WriteObject(Read(Path, KvCacheElementSize));

    public static ModelInfo Read(string path, int kvElementSize = 2)
    {
        if (string.IsNullOrWhiteSpace(path)) throw GpuOpsException.InvalidArgument("PathRequired", "give a model directory or a .gguf file.");
        var full = System.IO.Path.GetFullPath(path);
        if (File.Exists(full) && full.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase))
        {
            using var f = GgufFile.Open(full);
            var c = GgufModel.ReadConfig(f);
            string tk = f.GetString("tokenizer.ggml.model") switch { "gpt2" => "ByteLevelBpe", "llama" => "SentencePieceBpe", null => "None", var m => m };
            return Build(full, "gguf", c, f.Tensors.Select(t => (t.DType.ToString(), t.ElementCount, t.ByteLength)).ToList(), f.FileLength, tk, kvElementSize);
        }

        if (File.Exists(full) && full.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) full = System.IO.Path.GetDirectoryName(full)!;
        if (!Directory.Exists(full))
            throw new GpuOpsException("ModelNotFound", ErrorCategory.ObjectNotFound, $"{path}: not a model directory or a .gguf file.", path);
        var config = HfConfig.ReadConfig(full);
        var (files, _, _) = SafeTensorsWeightSource.ResolveFiles(full);
        var tensors = new List<(string, long, long)>();
        long fileBytes = 0;
        foreach (var file in files)
        {
            foreach (var t in SafeTensorsFile.ReadHeader(file, out _)) tensors.Add((t.DType.ToString(), t.ElementCount, t.ByteLength));
            fileBytes += new FileInfo(file).Length;
        }

        return Build(full, "safetensors", config, tensors, fileBytes, TokenizerJson.DetectKind(full), kvElementSize);
    }

    private static ModelInfo Build(string path, string format, LlamaConfig c, List<(string DType, long Elements, long Bytes)> tensors, long fileBytes, string tokenizer, int kvElementSize)
    {
        var dtypes = tensors.GroupBy(t => t.DType).OrderByDescending(g => g.Sum(t => t.Bytes))
            .Select(g => $"{g.Key}:{g.Count()}").ToList();
        string? scaling = c.RopeScaling is { } s ? $"{s.Type} x{s.Factor}" : null;
        return new ModelInfo(path, format, c.Architecture, c.ModelType, tensors.Sum(t => t.Elements), string.Join(", ", dtypes), fileBytes,
            tensors.Sum(t => t.Bytes), LlamaLayout.KvCacheBytesPerToken(c, kvElementSize) * 1000, c.NumLayers, c.HiddenSize, c.IntermediateSize,
            c.NumHeads, c.NumKeyValueHeads, c.HeadDim, c.VocabSize, c.MaxPositionEmbeddings, c.RopeTheta, scaling, c.TieWordEmbeddings,
            tensors.Count, tokenizer);
    }
}

/// <summary>One text's token ids (plain data).</summary>
public sealed record TokenizationResult(string Text, int[] Ids, string[] Tokens, int Count);

/// <summary>Ids decoded back to text (plain data).</summary>
public sealed record DetokenizationResult(int[] Ids, string Text);

/// <summary>Tokenizers opened from disk, cached by path and modification time (tokenizing a pipeline of strings is cheap).</summary>
public static class TokenizerCache
{
    private static readonly ConcurrentDictionary<string, (DateTime Stamp, ITokenizer Tokenizer)> Cache = new(StringComparer.Ordinal);

    public static ITokenizer Get(string path)
    {
        if (string.IsNullOrWhiteSpace(path)) throw GpuOpsException.InvalidArgument("ModelRequired", "give a model directory, tokenizer.json or .gguf file.");
        var full = System.IO.Path.GetFullPath(path);
        string stampFile = Directory.Exists(full) ? System.IO.Path.Combine(full, "tokenizer.json") : full;
        if (!File.Exists(stampFile))
            throw new GpuOpsException("TokenizerNotFound", ErrorCategory.ObjectNotFound, $"{path}: no tokenizer.json or .gguf file there.", path);
        var stamp = File.GetLastWriteTimeUtc(stampFile);
        if (Cache.TryGetValue(full, out var hit) && hit.Stamp == stamp) return hit.Tokenizer;
        var tok = ModelFiles.OpenTokenizer(full);
        if (Cache.Count > 16) Cache.Clear();
        Cache[full] = (stamp, tok);
        return tok;
    }
}

/// <summary><c>ConvertTo-GpuToken</c> / <c>gpuops tokenize</c>: text to token ids, bit-exact with Hugging Face.</summary>
public sealed class ConvertToTokenOperation : IOperation
{
    /// <summary>Model directory, tokenizer.json, or .gguf file.</summary>
    public string Model { get; set; } = "";

    public string[] Text { get; set; } = [];

    /// <summary>Apply the post-processor template (BOS) as Hugging Face does by default.</summary>
    public bool AddSpecialTokens { get; set; } = true;

    /// <summary>A tokenizer to use instead of opening <see cref="Model"/> (e.g. from a loaded model).</summary>
    public ITokenizer? Tokenizer { get; set; }

    /// <summary>A loaded model whose tokenizer to use (a clear error once it has been removed).</summary>
    public Engine.GpuModelHandle? LoadedModel { get; set; }

    public void Execute(IOperationHost host)
    {
        var tok = Tokenizer ?? LoadedModel?.Tokenizer ?? TokenizerCache.Get(Model);
        host.WriteVerbose($"Tokenizer: {tok.GetType().Name} of {(LoadedModel is { } m ? $"the loaded model {m}" : Model)}, vocabulary {tok.VocabSize}.");
        foreach (var text in Text)
        {
            host.CancellationToken.ThrowIfCancellationRequested();
            var ids = tok.Encode(text ?? "", AddSpecialTokens);
            var tokens = tok is Tokenizers.HfTokenizer hf ? ids.Select(i => hf.IdToToken(i) ?? "").ToArray() : [];
            host.WriteObject(new TokenizationResult(text ?? "", ids, tokens, ids.Length));
        }
    }
}

/// <summary><c>ConvertFrom-GpuToken</c> / <c>gpuops detokenize</c>: token ids back to text through the decoder chain.</summary>
public sealed class ConvertFromTokenOperation : IOperation
{
    public string Model { get; set; } = "";

    public int[] Ids { get; set; } = [];

    public bool SkipSpecialTokens { get; set; } = true;

    public ITokenizer? Tokenizer { get; set; }

    /// <summary>A loaded model whose tokenizer to use (a clear error once it has been removed).</summary>
    public Engine.GpuModelHandle? LoadedModel { get; set; }

    public void Execute(IOperationHost host)
    {
        var tok = Tokenizer ?? LoadedModel?.Tokenizer ?? TokenizerCache.Get(Model);
        foreach (var id in Ids)
        {
            if (id < 0 || id >= tok.VocabSize)
                throw GpuOpsException.InvalidArgument("TokenIdOutOfRange", $"token id {id} is outside the vocabulary (0..{tok.VocabSize - 1}).", id);
        }

        string text;
        try
        {
            text = tok.Decode(Ids, SkipSpecialTokens);
        }
        catch (ArgumentOutOfRangeException ex)
        {
            throw new GpuOpsException("TokenIdOutOfRange", ErrorCategory.InvalidArgument, ex.Message.Split(" (Parameter")[0], Ids, ex);
        }

        host.WriteObject(new DetokenizationResult(Ids, text));
    }
}
