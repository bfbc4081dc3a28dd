using GpuOps.Core.Models;

namespace GpuOps.Core.Engine;

/// <summary>A KV cache of an <see cref="IInferenceEngine"/>: one slot per sequence, each up to <see cref="MaxContext"/> positions.</summary>
public interface IKvCache : IDisposable
{
    int Slots { get; }

    int MaxContext { get; }

    /// <summary>Memory held by keys and values.</summary>
    long Bytes { get; }

    /// <summary>Positions filled in <paramref name="slot"/>.</summary>
    int Length(int slot);

    /// <summary>Forget a slot's contents.</summary>
    void Reset(int slot);

    void ResetAll();
}

/// <summary>
/// A loaded llama / mistral / qwen2 decoder on some device: the CPU float32 engine (<see cref="LlamaCpuEngine"/>) and the
/// CUDA bf16 engine (GpuOps.Cuda) implement it, so generation (TextGenerator), perplexity (PerplexityCalculator), the
/// benchmark and the adapters drive any engine the same way.
/// </summary>
public interface IInferenceEngine : IDisposable
{
    LlamaConfig Config { get; }

    /// <summary>"cpu" or "cuda:N".</summary>
    string Device { get; }

    /// <summary>Compute dtype of the weights ("float32", "bfloat16").</summary>
    string DType { get; }

    long ParameterCount { get; }

    /// <summary>Bytes the weights take on the device.</summary>
    long WeightBytes { get; }

    /// <summary>
    /// Bytes the engine holds now beside its weights and the KV caches: activation workspaces and, on CUDA, the
    /// persistent decode kernel's per-block copy of W_down (made by the first batch-1 decode that uses it).
    /// </summary>
    long WorkspaceBytes => 0;

    /// <summary>
    /// Starts measuring the energy of the device the engine runs on (NVML's energy counter), or null where there is
    /// none to measure (the CPU engine, no NVML).
    /// </summary>
    IEnergyMeter? StartEnergyMeter() => null;

    /// <summary>
    /// Bytes of weights one decode step reads (the numerator of the bandwidth bound): everything but the embedding
    /// table, plus one row of it.
    /// </summary>
    long WeightBytesPerToken { get; }

    /// <summary>A KV cache with <paramref name="slots"/> sequences of up to <paramref name="maxContext"/> positions.</summary>
    IKvCache CreateCache(int slots, int maxContext);

    /// <summary>
    /// Append each chunk's tokens to its cache slot and return, per chunk, the logits of every new position
    /// ([tokens·vocab], when <paramref name="allLogits"/>) or of its last one ([vocab]).
    /// </summary>
    float[][] Forward(IKvCache cache, IReadOnlyList<SequenceChunk> chunks, bool allLogits, CancellationToken cancellationToken = default);

    /// <summary>As <see cref="Forward"/>, but only the greedy choice (argmax of the last position's logits) of each chunk.</summary>
    int[] ForwardArgMax(IKvCache cache, IReadOnlyList<SequenceChunk> chunks, CancellationToken cancellationToken = default);
}

/// <summary>An engine that can run many greedy decode steps on the device without the host in the loop (benchmarks).</summary>
public interface IDeviceGreedyDecoder
{
    /// <summary>
    /// From <paramref name="next"/> (one token per slot 0..B-1, each at its slot's current length), run
    /// <paramref name="steps"/> greedy decode steps; returns the new ids [step][b] and the seconds the steps took on the device.
    /// The energy (joules, from NVML's counter) is null where it cannot be read.
    /// </summary>
    DeviceDecodeResult DecodeGreedy(IKvCache cache, int[] next, int steps, CancellationToken cancellationToken = default);

    /// <summary>The device's memory copy bandwidth (bytes read + written per second) over a buffer of <paramref name="bytes"/>.</summary>
    double MeasureCopyBytesPerSecond(long bytes);
}

/// <summary>What <see cref="IDeviceGreedyDecoder.DecodeGreedy"/> produced. Plain data.</summary>
public sealed record DeviceDecodeResult(int[][] Ids, double Seconds, double? Joules);

/// <summary>An energy measurement in progress (<see cref="IInferenceEngine.StartEnergyMeter"/>).</summary>
public interface IEnergyMeter : IDisposable
{
    /// <summary>Stops; the joules the device used since the start, or null where the window was too short for the counter or a read failed.</summary>
    double? Stop();
}
