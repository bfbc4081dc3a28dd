using GpuOps.Core.Native;
using GpuOps.Tests.Support;
using Xunit;

namespace GpuOps.Tests.Foundation;

public class GpuSmokeTests
{
    [GpuFact]
    public void The_CUDA_driver_lists_at_least_one_GPU_with_memory_and_a_compute_capability()
    {
        var gpus = NativeProbe.CudaDevices(out var error);
        Assert.Null(error);
        Assert.NotEmpty(gpus);
        Assert.All(gpus, g =>
        {
            Assert.True(g.MemoryTotalBytes > 1L << 30);
            Assert.Matches(@"^\d+\.\d+$", g.ComputeCapability);
            Assert.True(g.MultiprocessorCount > 0);
        });
        Assert.NotNull(NativeProbe.CudaDriverVersion());
    }
}
