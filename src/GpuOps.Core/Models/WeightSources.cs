using GpuOps.Core.Formats;

namespace GpuOps.Core.Models;

/// <summary>Where a tensor's stored bytes lie in a memory-mapped file (for staging copies of tensors over 2 GB).</summary>
public readonly record struct WeightLocation(MappedFile File, long Offset, long Length)
{
    public unsafe byte* Pointer => File.Pointer + Offset;
}

/// <summary>A weight source backed by memory-mapped files: raw bytes can be addressed without a span.</summary>
public interface IMappedWeightSource : IWeightSource
{
    WeightLocation GetLocation(string name);
}
