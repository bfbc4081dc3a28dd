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

public static class WeightSourceExtensions
{
    /// <summary>
    /// Rows [rowStart, rowStart+rowCount) of a 2-D tensor as float32, in the layout <see cref="IWeightSource.ReadFloat32"/>
    /// uses (for GGUF q/k: Hugging Face order unless opened with <see cref="GgufQkLayout.Stored"/>).
    /// </summary>
    public static void ReadFloat32Rows(this IWeightSource source, string name, long rowStart, int rowCount, Span<float> destination)
    {
        switch (source)
        {
            case SafeTensorsWeightSource s: s.ReadFloat32Rows(name, rowStart, rowCount, destination); break;
            case GgufWeightSource g: g.ReadFloat32Rows(name, rowStart, rowCount, destination); break;
            default:
            {
                var info = source.GetInfo(name);
                if (info.Shape.Length != 2) throw new ArgumentException($"tensor '{name}' is not 2-D.", nameof(name));
                var all = new float[info.ElementCount];
                source.ReadFloat32(name, all);
                all.AsSpan((int)(rowStart * info.Shape[1]), (int)(rowCount * info.Shape[1])).CopyTo(destination);
                break;
            }
        }
    }
}
