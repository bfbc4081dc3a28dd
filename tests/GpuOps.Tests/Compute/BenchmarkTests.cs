using GpuOps.Cli;
using GpuOps.Core.Hosting;
using GpuOps.Cuda.Bench;
using GpuOps.Cuda.Compile;
using GpuOps.Tests.Support;
using Xunit;

namespace GpuOps.Tests.Compute;

[Collection("Cuda")]
public class BenchmarkTests
{
    [Fact]
    public void Without_a_GPU_the_benchmark_is_a_terminating_error_not_a_silent_ok()
    {
        if (Gpu.Present) Assert.Skip("a GPU is present");
        var host = new RecordingHost();
        var ex = Assert.ThrowsAny<GpuOpsException>(() => new InvokeBenchmarkOperation { Suite = [BenchmarkSuite.Launch], Quick = true }.Execute(host));
        Assert.False(string.IsNullOrWhiteSpace(ex.ErrorId));
        Assert.Empty(host.Objects);
    }

    [Fact]
    public void The_cli_rejects_an_unknown_suite_with_a_non_zero_exit_code()
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = GpuOpsCli.Run(["bench", "--suite", "Nonsense"], o, e);
        Assert.NotEqual(0, code);
        Assert.Contains("unknown suite", e.ToString());
    }

    [Theory]
    [InlineData("cpu", "measures a GPU")]
    [InlineData("auto", "measures a GPU")]
    [InlineData("cuda:x", "is not a GPU")]
    [InlineData("-1", "is not a GPU")]
    public void The_cli_refuses_a_device_that_is_not_a_gpu_before_touching_cuda(string device, string message)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = GpuOpsCli.Run(["bench", "--device", device], o, e);
        Assert.NotEqual(0, code);
        Assert.Contains(message, e.ToString());
    }

    [Theory]
    [InlineData("3", 3)]
    [InlineData("cuda:2", 2)]
    [InlineData("CUDA:1", 1)]
    [InlineData("cuda", 0)]
    public void The_cli_takes_a_gpu_as_an_ordinal_or_as_the_engine_verbs_spell_it(string device, int ordinal)
    {
        var parse = GpuOpsCli.BuildRoot(new GpuOps.Cli.CliContext(new StringWriter(), new StringWriter())).Parse(["bench", "--device", device]);
        Assert.Empty(parse.Errors);
        var option = parse.CommandResult.Command.Options.OfType<System.CommandLine.Option<int>>().Single(x => x.Name == "--device");
        Assert.Equal(ordinal, parse.GetValue(option));
    }

    [Fact]
    public void Kernel_sources_expand_their_includes_with_line_markers_for_error_messages()
    {
        var cache = new KernelCache(Path.GetTempPath(), Repo.PathOf("kernels"));
        foreach (var file in Directory.GetFiles(Repo.PathOf("kernels"), "*.cu").Select(Path.GetFileName))
        {
            var src = cache.ExpandedSource(file!);
            Assert.StartsWith($"#line 1 \"{file}\"", src);
            Assert.Contains("#line 1 \"common.cuh\"", src);
            Assert.DoesNotContain(src.Split('\n'), l => l.TrimStart().StartsWith("#include \"", StringComparison.Ordinal));
            Assert.Contains("extern \"C\" __global__", src);
        }
    }

    [Fact]
    public void The_energy_window_never_fails_a_benchmark_and_reports_nothing_for_an_unknown_gpu()
    {
        var w = BenchmarkEnergyWindow.Start(0, "GPU-00000000-0000-0000-0000-000000000000");
        var e = w.Stop();
        Assert.Null(e.Joules);
        Assert.Null(e.AveragePowerWatts);
    }

    [GpuFact]
    public void Launch_suite_reports_event_timed_results_with_gpu_state()
    {
        var host = new RecordingHost();
        new InvokeBenchmarkOperation { Suite = [BenchmarkSuite.Launch], Quick = true }.Execute(host);
        var results = host.ObjectsOf<BenchmarkResult>().ToList();
        Assert.Equal(2, results.Count);
        Assert.All(results, r =>
        {
            Assert.True(r.MinMs <= r.MedianMs && r.MedianMs <= r.MaxMs);
            Assert.True(r.Value > 0);
            Assert.Equal("µs", r.Unit);
            Assert.False(string.IsNullOrEmpty(r.GpuName));
            Assert.False(string.IsNullOrEmpty(r.CudaDriverVersion));
        });
    }

    [GpuFact]
    public void A_gpu_named_by_uuid_is_found_by_its_cuda_ordinal()
    {
        var uuid = GpuOps.Cuda.Driver.CudaApi.DeviceUuid(0);
        var host = new RecordingHost();
        new InvokeBenchmarkOperation { Suite = [BenchmarkSuite.Launch], Quick = true, Device = 63, Uuid = uuid.ToUpperInvariant()[4..] }.Execute(host);
        Assert.All(host.ObjectsOf<BenchmarkResult>(), r => Assert.Equal(uuid, r.GpuUuid));
        Assert.Equal(0, GpuOps.Cuda.Bench.InvokeBenchmarkOperation.OrdinalOf(uuid));
        var ex = Assert.Throws<GpuOpsException>(() => InvokeBenchmarkOperation.OrdinalOf("GPU-00000000-0000-0000-0000-000000000000"));
        Assert.Equal("GpuNotFound", ex.ErrorId);
    }
}
