using System.Text.Json;
using GpuOps.Tests.Foundation;
using Xunit;

namespace GpuOps.Tests.Hardware;

[Collection("NativeEnvironment")]
public class HardwareCliTests
{
    private static List<JsonElement> JsonLines(string stdout) =>
        stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();

    [Fact]
    public void Gpu_list_json_prints_one_object_per_gpu()
    {
        using var fake = new FakeNvml();
        var (code, stdout, _) = CliTests.Gpuops("gpu", "list", "--json");
        Assert.Equal(0, code);
        var lines = JsonLines(stdout);
        Assert.Equal(2, lines.Count);
        Assert.Equal("GPU-fa4e0000-0000-4000-8000-000000000001", lines[1].GetProperty("uuid").GetString());
        Assert.Equal(700, lines[0].GetProperty("powerLimitWatts").GetDouble());
    }

    [Fact]
    public void Gpu_processes_and_power_get_work()
    {
        using var fake = new FakeNvml("gpu1.procs=777:1048576");
        var (code, stdout, _) = CliTests.Gpuops("gpu", "processes", "--json");
        Assert.Equal(0, code);
        var p = Assert.Single(JsonLines(stdout));
        Assert.Equal(777, p.GetProperty("processId").GetInt32());
        Assert.Equal(1, p.GetProperty("gpuIndex").GetInt32());
        (code, stdout, _) = CliTests.Gpuops("power", "get", "--index", "1");
        Assert.Equal(0, code);
        Assert.Contains("PowerLimitWatts", stdout);
    }

    [Fact]
    public void Without_nvml_every_verb_exits_non_zero_with_one_line_naming_the_library()
    {
        var old = Environment.GetEnvironmentVariable("GPUOPS_NVML_LIBRARY");
        try
        {
            Environment.SetEnvironmentVariable("GPUOPS_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1");
            GpuOps.Core.Native.NativeLibraries.ResetForTests();
            foreach (var args in new[]
                     {
                         new[] { "gpu", "list" }, ["gpu", "processes", "--json"], ["telemetry"], ["telemetry", "export", "--path", "/tmp/x.prom"],
                         ["energy", "--", "true"], ["power", "get"], ["power", "set", "--watts", "300", "--yes"], ["power", "restore", "--yes"],
                         ["power", "optimize", "--yes", "--", "true"],
                     })
            {
                var (code, stdout, stderr) = CliTests.Gpuops(args);
                Assert.True(code != 0, string.Join(' ', args));
                var errLines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
                Assert.True(errLines.Length == 1, string.Join(' ', args) + ": " + stderr);
                Assert.Contains("libnvidia-ml.so.1", errLines[0]);
                Assert.Equal(string.Empty, stdout.Trim());
            }
        }
        finally
        {
            Environment.SetEnvironmentVariable("GPUOPS_NVML_LIBRARY", old);
            GpuOps.Core.Native.NativeLibraries.ResetForTests();
        }
    }

    [Fact]
    public void Power_set_percent_what_if_says_what_it_would_do_and_changes_nothing()
    {
        using var fake = new FakeNvml();
        var (code, stdout, stderr) = CliTests.Gpuops("power", "set", "--percent", "70", "--what-if");
        Assert.Equal(0, code);
        Assert.Contains("What if: Performing the operation \"Set the power limit from 700 W to 490 W\" on target \"GPU 0", stderr);
        Assert.Contains("on target \"GPU 1", stderr);
        Assert.Equal(string.Empty, stdout.Trim());
        Assert.Equal(700000u, fake.LimitMilliwatts(0));
    }

    [Fact]
    public void Power_set_needs_yes_then_restore_brings_back_the_original()
    {
        using var fake = new FakeNvml();
        var (code, _, stderr) = CliTests.Gpuops("power", "set", "--index", "1", "--watts", "350");
        Assert.Equal(1, code);
        Assert.Contains("--yes", stderr);
        Assert.Equal(700000u, fake.LimitMilliwatts(1));
        (code, var stdout, _) = CliTests.Gpuops("power", "set", "--index", "1", "--watts", "350", "--yes", "--json");
        Assert.Equal(0, code);
        Assert.Equal(350, Assert.Single(JsonLines(stdout)).GetProperty("powerLimitWatts").GetDouble());
        Assert.Equal(350000u, fake.LimitMilliwatts(1));
        (code, _, _) = CliTests.Gpuops("power", "restore", "--yes");
        Assert.Equal(0, code);
        Assert.Equal(700000u, fake.LimitMilliwatts(1));
    }

    [Theory]
    [InlineData("telemetry", "--interval", "0")]
    [InlineData("telemetry", "--interval", "-1", "--count", "3")]
    [InlineData("telemetry", "--count", "0")]
    [InlineData("power", "set", "--watts", "-50", "--yes")]
    [InlineData("power", "set", "--watts", "100000", "--yes")]
    [InlineData("power", "set", "--watts", "100", "--yes")]
    [InlineData("power", "set", "--index", "7", "--watts", "300", "--yes")]
    [InlineData("power", "set", "--uuid", "GPU-nope", "--watts", "300", "--yes")]
    [InlineData("gpu", "list", "--index", "2")]
    [InlineData("power", "optimize", "--yes", "--step", "0", "--", "true")]
    public void Bad_input_is_one_clear_line_and_a_non_zero_exit(params string[] args)
    {
        using var fake = new FakeNvml();
        var (code, _, stderr) = CliTests.Gpuops(args);
        Assert.NotEqual(0, code);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("gpuops: ", lines[0]);
        Assert.Equal(700000u, fake.LimitMilliwatts(0));
        Assert.Null(fake.Get("calls.set"));
    }

    [Fact]
    public void Telemetry_stats_prints_one_summary_object()
    {
        using var fake = new FakeNvml();
        var (code, stdout, _) = CliTests.Gpuops("telemetry", "--interval", "0.01", "--count", "30", "--stats", "--json");
        Assert.Equal(0, code);
        var s = Assert.Single(JsonLines(stdout));
        Assert.Equal(30, s.GetProperty("ticks").GetInt64());
        Assert.Equal(60, s.GetProperty("samples").GetInt64());
        Assert.Equal(100, s.GetProperty("targetHz").GetDouble(), 6);
        Assert.True(s.GetProperty("sampleCostMeanMs").GetDouble() > 0);
        Assert.True(s.GetProperty("cpuPercentOfOneCore").GetDouble() >= 0);
        Assert.True(s.TryGetProperty("jitterP99Ms", out _));
    }

    [Fact]
    public void Telemetry_stream_json_prints_one_line_per_gpu_and_tick()
    {
        using var fake = new FakeNvml();
        var (code, stdout, _) = CliTests.Gpuops("telemetry", "--interval", "0.005", "--count", "4", "--index", "1", "--json");
        Assert.Equal(0, code);
        var lines = JsonLines(stdout);
        Assert.Equal(4, lines.Count);
        Assert.All(lines, l => Assert.Equal(1, l.GetProperty("gpuIndex").GetInt32()));
        Assert.All(lines, l => Assert.True(l.TryGetProperty("powerInstantWatts", out _) && l.TryGetProperty("powerAverageWatts", out _)));
    }

    [Fact]
    public void Telemetry_export_writes_a_prometheus_textfile()
    {
        using var fake = new FakeNvml();
        var path = Path.Combine(fake.Root, "gpu.prom");
        var (code, _, _) = CliTests.Gpuops("telemetry", "export", "--path", path, "--interval", "0.01", "--count", "2");
        Assert.Equal(0, code);
        Assert.Contains("gpuops_energy_joules_total{gpu=\"1\"", File.ReadAllText(path));
    }

    [Fact]
    public void Energy_runs_a_command_and_reports_each_gpu()
    {
        if (!OperatingSystem.IsLinux()) return;
        using var fake = new FakeNvml("gpu0.power_base_mw=300000");
        var (code, stdout, _) = CliTests.Gpuops("energy", "--json", "--", "sleep", "0.3");
        Assert.Equal(0, code);
        var r = JsonLines(stdout);
        Assert.Equal(2, r.Count);
        Assert.Equal("counter", r[0].GetProperty("method").GetString());
        Assert.InRange(r[0].GetProperty("seconds").GetDouble(), 0.29, 5);
        Assert.InRange(r[0].GetProperty("averagePowerWatts").GetDouble(), 280, 320);
        (code, _, var stderr) = CliTests.Gpuops("energy", "--", "false");
        Assert.Equal(1, code);
        Assert.Contains("exited with code 1", stderr);
        (code, _, stderr) = CliTests.Gpuops("energy", "--", "/no/such/command");
        Assert.Equal(1, code);
        Assert.Contains("Cannot run '/no/such/command'", stderr);
    }

    [Fact]
    public void Power_optimize_runs_a_command_at_each_limit_and_restores()
    {
        if (!OperatingSystem.IsLinux()) return;
        using var fake = new FakeNvml("gpu0.limit_mw=600000");
        var (code, stdout, stderr) = CliTests.Gpuops("power", "optimize", "--yes", "--json", "--step", "250", "--warmup", "0", "--runs", "1",
            "--objective", "MinEnergyDelay", "--", "sh", "-c", "sleep 0.02; echo 12.5");
        Assert.True(code == 0, stderr);
        var result = Assert.Single(JsonLines(stdout));
        Assert.Equal("MinEnergyDelay", result.GetProperty("objective").GetString());
        var points = result.GetProperty("points").EnumerateArray().ToList();
        Assert.Equal(new double[] { 700, 450, 200 }, points.Select(p => p.GetProperty("powerLimitWatts").GetDouble()));
        Assert.All(points, p => Assert.Equal(12.5, p.GetProperty("throughput").GetDouble()));
        Assert.Equal(600000u, fake.LimitMilliwatts(0));
        Assert.Contains("12.5", stderr); // the command's output goes to stderr with --json
    }
}
