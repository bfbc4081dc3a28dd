using GpuOps.Core.Models;

namespace GpuOps.Core.Engine;

/// <summary>
/// A loaded decoder on some device. The CPU engine (<see cref="LlamaCpuEngine"/>) implements it; a CUDA engine
/// plugs in behind the same interface, so generation, perplexity, the benchmark and the adapters stay unchanged.
/// </summary>
public interface IInferenceEngine
{
    LlamaConfig Config { get; }

    /// <summary>"cpu" or "cuda:N".</summary>
    string Device { get; }

    /// <summary>Compute dtype of the weights ("float32", "bfloat16", ...).</summary>
    string DType { get; }

    long ParameterCount { get; }

    /// <summary>Bytes of weights one decode step reads (the numerator of the bandwidth bound).</summary>
    long WeightBytesPerToken { get; }

    /// <summary>A KV cache with <paramref name="slots"/> sequences of up to <paramref name="maxContext"/> positions.</summary>
    IKvCache CreateCache(int slots, int maxContext);

    /// <summary>
    /// Append each chunk's tokens to its cache slot and return, per chunk, the logits of every new position
    /// ([tokens·vocab], when <paramref name="allLogits"/>) or of its last one ([vocab]).
    /// </summary>
    float[][] Forward(IKvCache cache, IReadOnlyList<SequenceChunk> chunks, bool allLogits, CancellationToken cancellationToken = default);
}

/// <summary>A KV cache of an <see cref="IInferenceEngine"/>: one slot per sequence.</summary>
public interface IKvCache
{
    int Slots { get; }

    int MaxContext { get; }

    /// <summary>Memory held by keys and values.</summary>
    long Bytes { get; }

    /// <summary>Positions filled in a slot.</summary>
    int Length(int slot);

    void Reset(int slot);

    void ResetAll();
}
