using GpuOps.Core.Hosting;
using GpuOps.Cuda.Bench;
using GpuOps.Nvml;
using GpuOps.Tests.Support;
using Xunit;

namespace GpuOps.Tests.Hardware;

/// <summary>
/// Optimize-GpuPowerLimit -Benchmark Memory|Gemm on a real GPU, swept against the fake NVML: the fake GPU is given
/// the real GPU's UUID, so the workload runs on the real GPU (found by that UUID) while the limits set are the
/// fake's. No power limit of a real GPU is ever set.
/// </summary>
[Collection("NativeEnvironment")]
public class PowerSweepBenchmarkTests
{
    [Fact]
    public void Memory_and_Gemm_are_registered_and_described()
    {
        PowerSweepBenchmarks.Register();
        PowerSweepBenchmarks.Register();   // (a second call changes nothing)
        Assert.Contains("Memory", PowerSweepWorkloads.Names);
        Assert.Contains("Gemm", PowerSweepWorkloads.Names);
        Assert.Equal("Gemm", PowerSweepWorkloads.Resolve("gemm"));
        Assert.Contains("GB/s", PowerSweepWorkloads.Describe("memory"));
        Assert.Contains("TFLOP/s", PowerSweepWorkloads.Describe("GEMM"));
    }

    [Fact]
    public void Without_a_gpu_a_benchmark_sweep_fails_before_any_limit_is_set()
    {
        if (Gpu.Present) Assert.Skip("a GPU is present");
        PowerSweepBenchmarks.Register();
        using var fake = new FakeNvml("gpu0.limit_mw=600000");
        var op = new OptimizePowerLimitOperation { Index = 0, StepWatts = 500, WorkloadLookup = "Memory", WorkloadName = "Memory" };
        var ex = Assert.ThrowsAny<GpuOpsException>(() => op.Execute(new RecordingHost()));
        Assert.False(string.IsNullOrWhiteSpace(ex.ErrorId));
        Assert.Null(fake.Get("calls.set"));
        Assert.Equal(600000u, fake.LimitMilliwatts(0));
        Assert.Null(PowerLimitJournal.Read("GPU-fa4e0000-0000-4000-8000-000000000000"));
    }

    [GpuTheory]
    [InlineData("Memory", "GB/s", 100.0, 20000.0)]
    [InlineData("Gemm", "TFLOP/s", 10.0, 5000.0)]
    public void A_benchmark_runs_on_the_real_gpu_named_by_the_swept_uuid(string name, string unit, double low, double high)
    {
        PowerSweepBenchmarks.Register();
        var uuid = GpuOps.Cuda.Driver.CudaApi.DeviceUuid(0);
        using var fake = new FakeNvml("gpus=2", $"gpu1.uuid={uuid}", "gpu1.limit_mw=650000");
        double saved = PowerSweepBenchmarks.RunSeconds;
        PowerSweepBenchmarks.RunSeconds = 0.2;
        try
        {
            var host = new RecordingHost();
            new OptimizePowerLimitOperation { Index = 1, StepWatts = 500, WarmupRuns = 1, Runs = 2, WorkloadLookup = name.ToLowerInvariant(), WorkloadName = name }.Execute(host);
            var result = Assert.Single(host.ObjectsOf<PowerOptimizationResult>());
            Assert.Equal(name, result.Workload);
            Assert.Equal(2, result.Points.Count);
            foreach (var p in result.Points)
            {
                Assert.Equal(unit, p.ThroughputUnit);
                Assert.InRange(p.Throughput, low, high);
                Assert.InRange(p.SecondsPerRun, 0.05, 5);   // (sized for 0.2 s at the limit in force)
            }

            Assert.Contains(host.Verbose, v => v.Contains("is CUDA device 0"));
            Assert.Equal(650000u, fake.LimitMilliwatts(1));
            Assert.Equal(700000u, fake.LimitMilliwatts(0));   // (the other fake GPU was never touched)
        }
        finally
        {
            PowerSweepBenchmarks.RunSeconds = saved;
        }
    }
}
