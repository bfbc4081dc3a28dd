using GpuOps.Core.Formats;
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
        var tokenizer = OpenTokenizer(path);
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


    private static ModelBundle OpenGguf(string path) => throw new Hosting.GpuOpsException("UnsupportedModelFile", Hosting.ErrorCategory.NotImplemented, $"{path}: GGUF support is not built yet.", path);

    private static ITokenizer OpenGgufTokenizer(string path) => throw new Hosting.GpuOpsException("UnsupportedModelFile", Hosting.ErrorCategory.NotImplemented, $"{path}: GGUF support is not built yet.", path);

    private static LlamaConfig ReadGgufConfig(string path) => throw new Hosting.GpuOpsException("UnsupportedModelFile", Hosting.ErrorCategory.NotImplemented, $"{path}: GGUF support is not built yet.", path);
}
