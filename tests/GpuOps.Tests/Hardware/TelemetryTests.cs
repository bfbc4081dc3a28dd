using System.Diagnostics;
using GpuOps.Core.Hosting;
using GpuOps.Nvml;
using GpuOps.Nvml.Native;
using Xunit;

namespace GpuOps.Tests.Hardware;

[Collection("NativeEnvironment")]
public class TelemetryTests
{
    [Fact]
    public void One_sample_per_gpu_with_instant_and_average_power_labelled()
    {
        using var fake = new FakeNvml("gpu0.power_base_mw=250000", "gpu0.throttle=0xC", "gpu1.temp=77");
        var host = new RecordingHost();
        new GetTelemetryOperation().Execute(host);
        var s = host.ObjectsOf<GpuTelemetrySample>().ToList();
        Assert.Equal(2, s.Count);
        Assert.Equal(251.0, s[0].PowerInstantWatts);  // the fake's instant = average + 1 W
        Assert.Equal(250.0, s[0].PowerAverageWatts);
        Assert.True(s[0].EnergyJoules >= 1000.0);     // counter offset 1000 J at t0
        Assert.Equal("SwPowerCap, HwSlowdown", s[0].ClockEventReasons);
        Assert.Equal(0xC, s[0].ClockEventReasonsMask);
        Assert.Equal(10, s[0].GpuUtilizationPercent);
        Assert.Equal(5, s[0].MemoryUtilizationPercent);
        Assert.Equal(1755, s[0].SmClockMHz);
        Assert.Equal(2619, s[0].MemoryClockMHz);
        Assert.Equal(77, s[1].TemperatureC);
        Assert.Equal(s[0].Timestamp, s[1].Timestamp);
    }

    [Fact]
    public void Unsupported_fields_fall_back_to_power_usage_or_null()
    {
        using var fake = new FakeNvml("gpu0.fields=unsupported", "gpu1.fields=unsupported", "gpu1.power_usage=unsupported", "gpu1.energy=unsupported");
        var host = new RecordingHost();
        new GetTelemetryOperation().Execute(host);
        var s = host.ObjectsOf<GpuTelemetrySample>().ToList();
        Assert.Null(s[0].PowerInstantWatts);
        Assert.Equal(100.0, s[0].PowerAverageWatts); // nvmlDeviceGetPowerUsage
        Assert.Null(s[1].PowerInstantWatts);
        Assert.Null(s[1].PowerAverageWatts);
        Assert.Null(s[1].EnergyJoules);
        Assert.Equal(41, s[1].TemperatureC);
        Assert.Empty(host.Errors);
    }

    [Fact]
    public void A_stream_reads_the_slow_energy_counter_from_a_poller_not_once_per_sample()
    {
        // nvmlDeviceGetTotalEnergyConsumption costs ~3.5 ms on an H200: a 100 Hz stream takes it from a poller
        // that refreshes once a second, so successive samples repeat the latest reading and never go backwards.
        using var fake = new FakeNvml("gpu0.power_base_mw=300000");
        var host = new RecordingHost();
        new GetTelemetryOperation { Index = [0], Interval = TimeSpan.FromMilliseconds(10), Duration = TimeSpan.FromMilliseconds(1500) }.Execute(host);
        var energy = host.ObjectsOf<GpuTelemetrySample>().Select(x => x.EnergyJoules!.Value).ToList();
        Assert.True(energy.Count >= 80, $"only {energy.Count} samples");
        int distinct = energy.Distinct().Count();
        Assert.InRange(distinct, 2, 4); // ~1.5 s / 1 s refreshes, plus the first reading
        for (int i = 1; i < energy.Count; i++) Assert.True(energy[i] >= energy[i - 1], $"energy went backwards at sample {i}");
        Assert.True(energy[^1] > energy[0]);
    }

    [Fact]
    public void A_stream_keeps_its_cadence_and_count()
    {
        using var fake = new FakeNvml();
        var host = new RecordingHost();
        var sw = Stopwatch.StartNew();
        new GetTelemetryOperation { Interval = TimeSpan.FromMilliseconds(20), Count = 10 }.Execute(host);
        sw.Stop();
        var s = host.ObjectsOf<GpuTelemetrySample>().ToList();
        Assert.Equal(20, s.Count);
        var g0 = s.Where(x => x.GpuIndex == 0).ToList();
        Assert.Equal(10, g0.Count);
        // Tick k is due at k × 20 ms on an absolute schedule: never early, and lateness does not accumulate.
        for (int k = 0; k < g0.Count; k++) Assert.True(g0[k].ElapsedSeconds >= k * 0.020 - 1e-9, $"tick {k} at {g0[k].ElapsedSeconds}");
        Assert.True(sw.Elapsed.TotalSeconds >= 0.18, $"10 ticks at 20 ms took only {sw.Elapsed.TotalSeconds} s");
        Assert.True(sw.Elapsed.TotalSeconds < 5, $"10 ticks at 20 ms took {sw.Elapsed.TotalSeconds} s");
    }

    [Fact]
    public void A_duration_bounds_the_stream()
    {
        using var fake = new FakeNvml();
        var host = new RecordingHost();
        new GetTelemetryOperation { Index = [0], Interval = TimeSpan.FromMilliseconds(10), Duration = TimeSpan.FromMilliseconds(100) }.Execute(host);
        int n = host.ObjectsOf<GpuTelemetrySample>().Count();
        Assert.InRange(n, 2, 10);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-1.0)]
    [InlineData(0.0005)]
    public void Bad_intervals_are_refused(double seconds)
    {
        using var fake = new FakeNvml();
        var ex = Assert.Throws<GpuOpsException>(() => new GetTelemetryOperation { Interval = TimeSpan.FromSeconds(seconds) }.Execute(new RecordingHost()));
        Assert.Equal("InvalidInterval", ex.ErrorId);
        Assert.Equal(ErrorCategory.InvalidArgument, ex.Category);
    }

    [Fact]
    public void Bad_count_and_duration_are_refused()
    {
        using var fake = new FakeNvml();
        Assert.Equal("InvalidCount", Assert.Throws<GpuOpsException>(() => new GetTelemetryOperation { Count = 0 }.Execute(new RecordingHost())).ErrorId);
        Assert.Equal("InvalidDuration", Assert.Throws<GpuOpsException>(() => new GetTelemetryOperation { Duration = TimeSpan.Zero }.Execute(new RecordingHost())).ErrorId);
    }

    [Fact]
    public void Cancellation_stops_an_endless_stream()
    {
        using var fake = new FakeNvml();
        using var cts = new CancellationTokenSource();
        var host = new RecordingHost(cts.Token);
        host.OnObject = _ =>
        {
            if (host.Objects.Count == 6) cts.Cancel();
        };
        Assert.ThrowsAny<OperationCanceledException>(() => new GetTelemetryOperation { Interval = TimeSpan.FromMilliseconds(5), Count = 10000 }.Execute(host));
        Assert.Equal(6, host.Objects.Count);
    }

    [Fact]
    public void A_gpu_lost_mid_stream_is_reported_once_and_the_other_keeps_streaming()
    {
        using var fake = new FakeNvml();
        fake.Set($"gpu1.lost_s={fake.SinceT0() + 0.3:F3}");
        var host = new RecordingHost();
        new GetTelemetryOperation { Interval = TimeSpan.FromMilliseconds(20), Count = 30 }.Execute(host);
        var s = host.ObjectsOf<GpuTelemetrySample>().ToList();
        Assert.Equal(30, s.Count(x => x.GpuIndex == 0));
        Assert.InRange(s.Count(x => x.GpuIndex == 1), 1, 29);
        var e = Assert.Single(host.Errors);
        Assert.Equal("GpuLost", e.ErrorId);
        Assert.Equal(ErrorCategory.DeviceError, e.Category);
        Assert.Contains("GPU 1", e.Message);
    }

    [Fact]
    public void When_every_gpu_is_lost_the_stream_ends_with_an_error()
    {
        using var fake = new FakeNvml();
        var lost = fake.SinceT0() + 0.1;
        fake.Set($"gpu0.lost_s={lost:F3}", $"gpu1.lost_s={lost:F3}");
        var ex = Assert.Throws<NvmlException>(() => new GetTelemetryOperation { Interval = TimeSpan.FromMilliseconds(10), Count = 1000 }.Execute(new RecordingHost()));
        Assert.Equal(NvmlReturn.GpuIsLost, ex.Code);
        Assert.Equal("GpuLost", ex.ErrorId);
    }

    /// <summary>Sample cost, CPU use and cadence on the fake (a measurement with loose sanity bounds, not a timing test).</summary>
    [Fact]
    public void Statistics_measure_sample_cost_cpu_and_jitter_at_100_hz()
    {
        using var fake = new FakeNvml();
        var host = new RecordingHost();
        new GetTelemetryOperation { Interval = TimeSpan.FromMilliseconds(10), Count = 100, Statistics = true }.Execute(host);
        var st = Assert.Single(host.Objects) as TelemetryStreamStatistics;
        Assert.NotNull(st);
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"fake NVML, 2 GPUs, 100 Hz x 100: sample cost mean {st.SampleCostMeanMs:0.###} ms (p99 {st.SampleCostP99Ms:0.###}), " +
            $"jitter mean {st.JitterMeanMs:0.###} ms (p99 {st.JitterP99Ms:0.###}, max {st.JitterMaxMs:0.###}), CPU {st.CpuPercentOfOneCore:0.#}% of a core, {st.AchievedHz:0.#} Hz, missed {st.MissedTicks}");
        Assert.Equal(100, st.Ticks);
        Assert.Equal(2 * st.Ticks, st.Samples);
        Assert.Equal(100.0, st.TargetHz, 6);
        Assert.True(st.SampleCostMeanMs > 0 && st.SampleCostMeanMs < 50, $"sample cost {st.SampleCostMeanMs} ms");
        Assert.True(st.WallSeconds >= 0.99 * (st.Ticks - 1 + st.MissedTicks) * 0.010, "the stream ran faster than its schedule");
        Assert.True(st.JitterMeanMs >= 0, "ticks are never early");
        Assert.EndsWith("libnvidia-ml-fake.so", st.NvmlLibrary);
    }
}
