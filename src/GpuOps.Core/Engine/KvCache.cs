using GpuOps.Core.Hosting;

namespace GpuOps.Core.Engine;

/// <summary>
/// Key/value cache of the CPU engine: one slot per sequence of a batch, each holding up to
/// <see cref="MaxContext"/> positions of every layer's keys and values (float32, [position, kvHeads·headDim]).
/// </summary>
public sealed class KvCache : IKvCache
{
    private readonly float[][][] _keys;   // [layer][slot] -> [maxContext * kvDim]
    private readonly float[][][] _values;
    private readonly int[] _lengths;

    public KvCache(int layers, int slots, int maxContext, int kvDim)
    {
        if (slots <= 0) throw GpuOpsException.InvalidArgument("KvCacheSlots", $"A KV cache needs at least one slot, got {slots}.");
        if (maxContext <= 0) throw GpuOpsException.InvalidArgument("KvCacheContext", $"MaxContext must be positive, got {maxContext}.");
        long bytes = 2L * layers * slots * maxContext * kvDim * sizeof(float);
        if ((long)maxContext * kvDim > Array.MaxLength)
            throw new GpuOpsException("KvCacheTooLarge", ErrorCategory.LimitsExceeded, $"A KV cache of {maxContext} positions is too large for one slot.", maxContext);
        long available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        if (available > 0 && bytes > available)
        {
            throw new GpuOpsException("KvCacheTooLarge", ErrorCategory.LimitsExceeded,
                $"A KV cache of {slots} x {maxContext} positions needs {bytes / (double)(1L << 30):0.##} GiB; this process can use {available / (double)(1L << 30):0.##} GiB.",
                maxContext, null, "Give a smaller MaxContext (gpuops: --max-context) or fewer prompts at once.");
        }
        Layers = layers;
        Slots = slots;
        MaxContext = maxContext;
        KvDim = kvDim;
        Bytes = bytes;
        _keys = new float[layers][][];
        _values = new float[layers][][];
        for (int l = 0; l < layers; l++)
        {
            _keys[l] = new float[slots][];
            _values[l] = new float[slots][];
            for (int s = 0; s < slots; s++)
            {
                _keys[l][s] = new float[(long)maxContext * kvDim];
                _values[l][s] = new float[(long)maxContext * kvDim];
            }
        }

        _lengths = new int[slots];
    }

    public int Layers { get; }
    public int Slots { get; }
    public int MaxContext { get; }
    public int KvDim { get; }

    /// <summary>Memory held by keys and values.</summary>
    public long Bytes { get; }

    /// <summary>Positions filled in <paramref name="slot"/>.</summary>
    public int Length(int slot) => _lengths[slot];

    /// <summary>Forget a slot's contents (it can be reused for a new sequence).</summary>
    public void Reset(int slot) => _lengths[slot] = 0;

    public void ResetAll() => Array.Clear(_lengths);

    public void Dispose()
    {
    }

    internal float[] Keys(int layer, int slot) => _keys[layer][slot];

    internal float[] Values(int layer, int slot) => _values[layer][slot];

    internal void Advance(int slot, int count) => _lengths[slot] += count;

    /// <summary>Bytes a cache of this shape needs per position and slot.</summary>
    public static long BytesPerPosition(int layers, int kvDim) => 2L * layers * kvDim * sizeof(float);
}
