using GpuOps.Core.Formats;
using GpuOps.Core.Hosting;
using GpuOps.Core.Tokenizers;

namespace GpuOps.Core.Models;

/// <summary>Everything a model directory (or a .gguf file) holds: config, weights, tokenizer, generation defaults.</summary>
public sealed class ModelBundle : IDisposable
{
    public ModelBundle(string path, string format, LlamaConfig config, IWeightSource weights, ITokenizer tokenizer, GenerationDefaults generation)
    {
        Path = path;
        Format = format;
        Config = config;
        Weights = weights;
        Tokenizer = tokenizer;
        Generation = generation;
    }

    public string Path { get; }

    /// <summary>"safetensors" or "gguf".</summary>
    public string Format { get; }

    public LlamaConfig Config { get; }

    public IWeightSource Weights { get; }

    public ITokenizer Tokenizer { get; }

    public GenerationDefaults Generation { get; }

    /// <summary>False when the directory has no tokenizer.json (Tokenizer then throws a clear error when used).</summary>
    public bool HasTokenizer => Tokenizer is not MissingTokenizer;

    public void Dispose() => Weights.Dispose();
}

/// <summary>The one entry point for opening models from disk.</summary>
public static class ModelFiles
{
    /// <summary>
    /// Open a Hugging Face model directory (config.json, *.safetensors or an index, tokenizer.json,
    /// generation_config.json) or a .gguf file. Weights are memory-mapped, not read.
    /// </summary>
    public static ModelBundle Open(string path)
    {
        path = System.IO.Path.GetFullPath(path);
        if (File.Exists(path) && path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase)) return OpenGguf(path);
        if (!Directory.Exists(path))
        {
            if (File.Exists(path) && path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
                path = System.IO.Path.GetDirectoryName(path)!;
            else
                throw new Hosting.GpuOpsException("ModelNotFound", Hosting.ErrorCategory.ObjectNotFound,
                    $"{path}: not a model directory or a .gguf file.", path, null, "Pass a Hugging Face model directory (config.json + *.safetensors) or a .gguf file.");
        }

        var config = HfConfig.ReadConfig(path);
        ITokenizer tokenizer = File.Exists(System.IO.Path.Combine(path, "tokenizer.json"))
            ? OpenTokenizer(path)
            : new MissingTokenizer(path);
        var generation = HfConfig.ReadGenerationDefaults(path);
        var weights = SafeTensorsWeightSource.Open(path);
        return new ModelBundle(path, "safetensors", config, weights, tokenizer, generation);
    }

    /// <summary>The tokenizer of a model directory (tokenizer.json) or a .gguf file.</summary>
    public static ITokenizer OpenTokenizer(string path)
    {
        path = System.IO.Path.GetFullPath(path);
        if (File.Exists(path) && path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase)) return OpenGgufTokenizer(path);
        if (File.Exists(path) && !path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) path = System.IO.Path.GetDirectoryName(path)!;
        var tok = TokenizerJson.Load(path);
        return tok;
    }

    /// <summary>The configuration of a model directory or a .gguf file, without mapping weights.</summary>
    public static LlamaConfig ReadConfig(string path)
    {
        path = System.IO.Path.GetFullPath(path);
        if (File.Exists(path) && path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase)) return ReadGgufConfig(path);
        if (File.Exists(path) && !path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) path = System.IO.Path.GetDirectoryName(path)!;
        return HfConfig.ReadConfig(path);
    }


    private static ModelBundle OpenGguf(string path)
    {
        var file = GgufFile.Open(path);
        try
        {
            var config = GgufModel.ReadConfig(file);
            var tokenizer = GgufModel.ReadTokenizer(file);
            var generation = GgufModel.ReadGenerationDefaults(file);
            return new ModelBundle(path, "gguf", config, new GgufWeightSource(file), tokenizer, generation);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static ITokenizer OpenGgufTokenizer(string path)
    {
        using var file = GgufFile.Open(path);
        return GgufModel.ReadTokenizer(file);
    }

    private static LlamaConfig ReadGgufConfig(string path)
    {
        using var file = GgufFile.Open(path);
        return GgufModel.ReadConfig(file);
    }
}

/// <summary>Stands in for a tokenizer a model directory does not have; every use throws a clear error.</summary>
public sealed class MissingTokenizer(string directory) : ITokenizer
{
    private GpuOpsException Missing() => new("TokenizerNotFound", ErrorCategory.ObjectNotFound,
        $"{directory}: no tokenizer.json, so text cannot be encoded or decoded.", directory, null, "Copy the model's tokenizer.json into the directory, or pass token ids.");

    public int[] Encode(string text, bool addSpecialTokens = true) => throw Missing();
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = true) => throw Missing();
    public int VocabSize => 0;
    public int? BosTokenId => null;
    public IReadOnlyList<int> EosTokenIds => Array.Empty<int>();
    public string Kind => "None";
}
