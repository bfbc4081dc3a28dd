namespace GpuOps.Core.Models;

// Contracts between the model-format area (readers, configs, tokenizers) and the inference engine.
// The format area implements them; the engine consumes them. Keep them small and stable.

/// <summary>Element types of stored tensors (safetensors dtypes and GGUF/ggml types).</summary>
public enum TensorDType
{
    F64, F32, F16, BF16, I64, I32, I16, I8, U8, Bool, F8E4M3, F8E5M2,
    // ggml block-quantized types (GGUF)
    Q8_0, Q4_0, Q4_K, Q6_K, MXFP4,
}

/// <summary>One stored tensor's metadata (plain data).</summary>
public sealed record TensorInfo(string Name, TensorDType DType, long[] Shape, long ByteLength)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>How RoPE pairs dimensions for a set of q/k weights.</summary>
public enum RopeLayout
{
    /// <summary>Hugging Face: dimension i pairs with i + d/2 (rotate_half).</summary>
    RotateHalf,
    /// <summary>GPT-J / llama.cpp-permuted GGUF: dimension 2i pairs with 2i+1.</summary>
    Interleaved,
}

/// <summary>
/// Named weight tensors, addressed by their Hugging Face names (model.layers.0.self_attn.q_proj.weight, ...),
/// whatever the file format. Readers map GGUF names to these.
/// </summary>
public interface IWeightSource : IDisposable
{
    IReadOnlyCollection<string> Names { get; }

    bool Contains(string name);

    TensorInfo GetInfo(string name);

    /// <summary>The stored bytes (zero-copy view of the mapped file where possible).</summary>
    ReadOnlySpan<byte> GetRaw(string name);

    /// <summary>Convert or dequantize into float32 (row-major, <see cref="TensorInfo.Shape"/>).</summary>
    void ReadFloat32(string name, Span<float> destination);

    /// <summary>The RoPE layout the q/k projection weights of this source are stored in.</summary>
    RopeLayout RopeLayout { get; }
}

/// <summary>Text to ids and back, bit-exact with Hugging Face tokenizers.</summary>
public interface ITokenizer
{
    /// <summary>Encode; with <paramref name="addSpecialTokens"/> the post-processor's template applies (BOS).</summary>
    int[] Encode(string text, bool addSpecialTokens = true);

    /// <summary>Decode through the decoder chain.</summary>
    string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = true);

    int VocabSize { get; }

    int? BosTokenId { get; }

    IReadOnlyList<int> EosTokenIds { get; }

    /// <summary>"ByteLevelBpe" or "SentencePieceBpe".</summary>
    string Kind { get; }
}

/// <summary>RoPE scaling (rope_scaling / rope_parameters); null type = none.</summary>
public sealed record RopeScaling(
    string Type,
    double Factor = 1.0,
    double LowFreqFactor = 1.0,
    double HighFreqFactor = 4.0,
    int OriginalMaxPositionEmbeddings = 8192);

/// <summary>The architecture hyper-parameters the engine needs (llama, mistral, qwen2 families).</summary>
public sealed record LlamaConfig(
    string Architecture,
    string ModelType,
    int VocabSize,
    int HiddenSize,
    int IntermediateSize,
    int NumLayers,
    int NumHeads,
    int NumKeyValueHeads,
    int HeadDim,
    double RmsNormEps,
    double RopeTheta,
    RopeScaling? RopeScaling,
    bool TieWordEmbeddings,
    bool AttentionBias,
    int MaxPositionEmbeddings,
    string TorchDType,
    int? SlidingWindow = null);

/// <summary>generation_config.json (defaults for sampling and stop ids).</summary>
public sealed record GenerationDefaults(
    IReadOnlyList<int> EosTokenIds,
    int? BosTokenId,
    double? Temperature,
    double? TopP,
    int? TopK,
    double? RepetitionPenalty,
    bool? DoSample,
    int? MaxNewTokens);
