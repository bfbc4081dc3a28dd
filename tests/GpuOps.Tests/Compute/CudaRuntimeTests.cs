using GpuOps.Core.Compute;
using GpuOps.Core.Hosting;
using GpuOps.Cuda;
using GpuOps.Cuda.Compile;
using GpuOps.Cuda.Driver;
using GpuOps.Tests.Support;
using Xunit;

namespace GpuOps.Tests.Compute;

/// <summary>Driver bindings, memory accounting, the compile cache, graphs and error reporting on a GPU.</summary>
[Collection("Cuda")]
public sealed class CudaRuntimeTests
{
    [GpuFact]
    public void A_thousand_allocate_free_cycles_leave_device_memory_where_it_started()
    {
        using var be = new CudaBackend(0);
        using (var warm = be.Allocate(DType.BF16, [1024, 1024])) { }
        be.Synchronize();
        var before = be.Context.MemoryInfo().Free;
        for (int i = 0; i < 1000; i++)
        {
            using var t = be.Allocate(i % 2 == 0 ? DType.BF16 : DType.F32, [1 + i % 7, 1 << 18], "cycle");
        }

        be.Synchronize();
        Assert.Equal(0, be.Pool.Count);
        Assert.Equal(0, be.Pool.BytesInUse);
        Assert.Equal(before, be.Context.MemoryInfo().Free);
    }

    [GpuFact]
    public void A_thousand_compile_cache_hits_leave_device_memory_where_it_started()
    {
        var dir = Path.Combine(Path.GetTempPath(), "gpuops-kcache-" + Guid.NewGuid().ToString("N"));
        try
        {
            var cache = new KernelCache(dir);
            using var ctx = CudaContext.Open(0);
            var first = cache.GetCubin("elementwise.cu", ctx.Major, ctx.Minor);
            Assert.Equal(1, cache.Compiles);
            Assert.Single(Directory.GetFiles(dir, "*.cubin"));
            using (var m = new CudaModule(ctx, first, "elementwise.cu")) m.Function("empty_kernel");
            var before = ctx.MemoryInfo().Free;
            for (int i = 0; i < 1000; i++)
            {
                cache.ClearMemory(); // every request goes to the disk cache
                var cubin = cache.GetCubin("elementwise.cu", ctx.Major, ctx.Minor);
                using var m = new CudaModule(ctx, cubin, "elementwise.cu");
                Assert.NotEqual(IntPtr.Zero, m.Function("cast_any"));
            }

            Assert.Equal(1, cache.Compiles);
            Assert.Equal(1000, cache.DiskHits);
            Assert.Equal(before, ctx.MemoryInfo().Free);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [GpuFact]
    public void Out_of_memory_is_refused_before_allocating_with_needed_and_free()
    {
        using var be = new CudaBackend(0);
        long total = be.Context.TotalMemoryBytes;
        var ex = Assert.Throws<GpuOpsException>(() => be.Allocate(DType.F32, [(int)(total / 4 / 1024 / 1024) + 1024, 1024 * 1024], "too big"));
        Assert.Equal("OutOfDeviceMemory", ex.ErrorId);
        Assert.Equal(ErrorCategory.ResourceUnavailable, ex.Category);
        Assert.Contains("needs", ex.Message);
        Assert.Contains("free", ex.Message);
        Assert.Equal(0, be.Pool.Count);
    }

    [GpuFact]
    public void A_failed_driver_call_names_the_operation_and_the_CUDA_error()
    {
        using var ctx = CudaContext.Open(0);
        ctx.Bind();
        var ex = Assert.Throws<CudaException>(() => CudaApi.Check(CudaApi.cuMemFree(0xdead0000UL), "cuMemFree_v2"));
        Assert.StartsWith("cuMemFree_v2 failed: CUDA_ERROR_", ex.Message);
        Assert.Equal("cuMemFree_v2", ex.Operation);
        Assert.StartsWith("CUDA_ERROR_", ex.ErrorName);
    }

    [GpuFact]
    public void A_kernel_that_does_not_compile_shows_the_NVRTC_log_with_file_and_line()
    {
        var kdir = Path.Combine(Path.GetTempPath(), "gpuops-kbad-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(kdir);
        try
        {
            File.WriteAllText(Path.Combine(kdir, "common.cuh"), "#pragma once\n#define OK 1\n");
            File.WriteAllText(Path.Combine(kdir, "bad.cu"), "#include \"common.cuh\"\nextern \"C\" __global__ void k(float* x) {\n    x[0] = undefined_name;\n}\n");
            var cache = new KernelCache(Path.Combine(kdir, "cache"), kdir);
            using var ctx = CudaContext.Open(0);
            var ex = Assert.Throws<GpuOpsException>(() => cache.GetCubin("bad.cu", ctx.Major, ctx.Minor));
            Assert.Equal("KernelCompileFailed", ex.ErrorId);
            Assert.Contains("bad.cu(3)", ex.Message);
            Assert.Contains("undefined_name", ex.Message);
        }
        finally
        {
            Directory.Delete(kdir, true);
        }
    }

    [GpuFact]
    public void A_captured_graph_replays_the_kernels_it_recorded()
    {
        using var be = new CudaBackend(0);
        var x = be.Allocate(DType.F32, [1000]);
        x.CopyFromFloats(Enumerable.Range(0, 1000).Select(i => (float)i).ToArray());
        var y = be.Allocate(DType.F32, [1000]);
        be.Unary(UnaryOp.Scale, x, y, 1f); // compile and load before capture
        be.Synchronize();
        using var graph = be.Context.Capture(() =>
        {
            be.Unary(UnaryOp.Scale, x, y, 2f);
            be.Binary(BinaryOp.Add, y, x, x); // x = 3x
        });
        for (int i = 0; i < 3; i++) graph.Launch();
        be.Synchronize();
        var v = x.ToFloatArray();
        Assert.Equal(27f * 999, v[999]);
        Assert.Equal(27f * 5, v[5]);
    }

    [GpuFact]
    public void Disposing_the_backend_frees_every_tensor_it_still_holds()
    {
        using var probe = CudaContext.Open(0); // keeps the primary context alive across the backend's life
        var be = new CudaBackend(0);
        be.Synchronize();
        long before = probe.MemoryInfo().Free;
        for (int i = 0; i < 10; i++) be.Allocate(DType.F16, [1 << 20], "leak" + i);
        Assert.Equal(10, be.Pool.Count);
        Assert.Equal(10 * (2L << 20), be.Pool.BytesInUse);
        Assert.Equal(10, be.Pool.Report().Count);
        Assert.True(probe.MemoryInfo().Free < before);
        be.Dispose();
        Assert.Equal(before, probe.MemoryInfo().Free);
    }

    [GpuFact]
    public void Device_properties_are_read()
    {
        using var ctx = CudaContext.Open(0);
        Assert.True(ctx.MultiprocessorCount > 0);
        Assert.True(ctx.L2CacheBytes > 0);
        Assert.Matches("^GPU-[0-9a-f]{8}-", ctx.Uuid);
        Assert.True(ctx.DriverVersion >= 12000);
        Assert.Equal("GpuNotFound", Assert.Throws<GpuOpsException>(() => CudaContext.Open(999)).ErrorId);
    }
}
