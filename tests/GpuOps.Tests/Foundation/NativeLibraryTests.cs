using GpuOps.Core.Hosting;
using GpuOps.Core.Native;
using Xunit;

namespace GpuOps.Tests.Foundation;

/// <summary>Tests that change GPUOPS_*_LIBRARY run alone: the variables are process-wide.</summary>
[CollectionDefinition("NativeEnvironment", DisableParallelization = true)]
public sealed class NativeEnvironmentCollection;

[Collection("NativeEnvironment")]
public class NativeLibraryTests
{
    [Fact]
    public void A_missing_library_gives_one_clear_line_naming_it_and_how_to_get_it()
    {
        var old = Environment.GetEnvironmentVariable("GPUOPS_NVML_LIBRARY");
        try
        {
            Environment.SetEnvironmentVariable("GPUOPS_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1");
            NativeLibraries.ResetForTests();
            var ex = Assert.Throws<NativeLibraryNotFoundException>(() => NativeLibraries.Require(NativeLibraryKind.Nvml));
            Assert.Equal("NativeLibraryNotFound", ex.ErrorId);
            Assert.Equal(ErrorCategory.NotInstalled, ex.Category);
            Assert.Contains(NativeLibraries.DisplayName(NativeLibraryKind.Nvml), ex.Message);
            Assert.Contains("/nonexistent/libnvidia-ml.so.1 does not exist", ex.Message);
            Assert.DoesNotContain('\n', ex.Message);
            Assert.Contains("NVIDIA GPU driver", ex.RecommendedAction);
            Assert.False(NativeProbe.Probe(NativeLibraryKind.Nvml).Found);
        }
        finally
        {
            Environment.SetEnvironmentVariable("GPUOPS_NVML_LIBRARY", old);
            NativeLibraries.ResetForTests();
        }
    }

    [Fact]
    public void Library_candidates_follow_the_documented_order()
    {
        if (OperatingSystem.IsWindows()) return;
        Assert.Equal("libcuda.so.1", NativeLibraries.Candidates(NativeLibraryKind.CudaDriver)[0]);
        Assert.Equal("libnvidia-ml.so.1", NativeLibraries.Candidates(NativeLibraryKind.Nvml)[0]);
        Assert.Equal(new[] { "libnvrtc.so.13", "libnvrtc.so.12" }, NativeLibraries.Candidates(NativeLibraryKind.Nvrtc).Take(2));
        Assert.Equal(new[] { "libcublasLt.so.13", "libcublasLt.so.12" }, NativeLibraries.Candidates(NativeLibraryKind.CublasLt).Take(2));
    }

    [Fact]
    public void An_override_that_points_at_a_real_library_is_loaded()
    {
        if (!OperatingSystem.IsLinux()) return;
        var libc = new[] { "/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/lib64/libc.so.6" }.FirstOrDefault(File.Exists);
        Assert.NotNull(libc);
        var old = Environment.GetEnvironmentVariable("GPUOPS_CUBLASLT_LIBRARY");
        try
        {
            Environment.SetEnvironmentVariable("GPUOPS_CUBLASLT_LIBRARY", libc);
            NativeLibraries.ResetForTests();
            Assert.NotEqual(IntPtr.Zero, NativeLibraries.Require(NativeLibraryKind.CublasLt));
            Assert.Equal(libc, NativeLibraries.LoadedPath(NativeLibraryKind.CublasLt));
            var ex = Assert.Throws<GpuOpsException>(() => NativeLibraries.RequireExport(NativeLibraryKind.CublasLt, "cublasLtCreate"));
            Assert.Equal("NativeSymbolNotFound", ex.ErrorId);
            Assert.Contains("cublasLtCreate", ex.Message);
        }
        finally
        {
            Environment.SetEnvironmentVariable("GPUOPS_CUBLASLT_LIBRARY", old);
            NativeLibraries.ResetForTests();
        }
    }
}
