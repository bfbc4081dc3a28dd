using System.Runtime.CompilerServices;
using GpuOps.Core.Native;
using Xunit;

namespace GpuOps.Tests.Support;

/// <summary>Why GPU tests are skipped on this machine (null when a CUDA GPU is present).</summary>
public static class Gpu
{
    private static readonly Lazy<string?> Reason = new(() =>
    {
        if (Environment.GetEnvironmentVariable("GPUOPS_SKIP_GPU_TESTS") == "1") return "GPUOPS_SKIP_GPU_TESTS=1";
        if (!NativeLibraries.IsAvailable(NativeLibraryKind.CudaDriver))
            return $"no CUDA driver: {NativeLibraries.DisplayName(NativeLibraryKind.CudaDriver)} not found (GPU tests run on a GPU host)";
        var devices = NativeProbe.CudaDevices(out var error);
        return devices.Count > 0 ? null : $"no CUDA GPU: {error ?? "the driver reports 0 devices"}";
    });

    public static string? SkipReason => Reason.Value;

    public static bool Present => SkipReason is null;
}

/// <summary>A test that needs a CUDA GPU; skipped with the reason where there is none.</summary>
public sealed class GpuFactAttribute : FactAttribute
{
    public GpuFactAttribute([CallerFilePath] string? sourceFilePath = null, [CallerLineNumber] int sourceLineNumber = -1)
        : base(sourceFilePath, sourceLineNumber)
    {
        if (Gpu.SkipReason is { } reason) Skip = reason;
    }
}

/// <summary>A theory that needs a CUDA GPU; skipped with the reason where there is none.</summary>
public sealed class GpuTheoryAttribute : TheoryAttribute
{
    public GpuTheoryAttribute([CallerFilePath] string? sourceFilePath = null, [CallerLineNumber] int sourceLineNumber = -1)
        : base(sourceFilePath, sourceLineNumber)
    {
        if (Gpu.SkipReason is { } reason) Skip = reason;
    }
}
