using GpuOps.Core.Hosting;
using GpuOps.Nvml;
using Xunit;

namespace GpuOps.Tests.Hardware;

[Collection("NativeEnvironment")]
public class EnergyTests
{
    // The fake's power is constant unless ramped: energy over a window is power × time (its counter integrates
    // exactly on the fake's wall clock), so a tolerance of a few percent covers timer and scheduling noise.

    [Fact]
    public void Counter_energy_is_power_times_time()
    {
        using var fake = new FakeNvml("gpu0.power_base_mw=250000", "gpu1.power_base_mw=400000");
        var w = EnergyWindow.TryStart();
        Assert.NotNull(w);
        Thread.Sleep(400);
        var r = w.Stop();
        Assert.Equal(2, r.Count);
        Assert.All(r, x => Assert.Equal("counter", x.Method));
        Assert.InRange(r[0].Seconds, 0.39, 2.0);
        Assert.InRange(r[0].AveragePowerWatts, 240, 260);
        Assert.InRange(r[1].AveragePowerWatts, 390, 410);
        Assert.InRange(r[0].Joules / (250 * r[0].Seconds), 0.95, 1.05);
        Assert.Equal(251.0, r[0].PeakPowerWatts);
        Assert.Equal("GPU-fa4e0000-0000-4000-8000-000000000001", r[1].Uuid);
        Assert.Same(r, w.Stop());
        w.Dispose();
    }

    [Fact]
    public void Without_a_counter_power_is_sampled_and_integrated()
    {
        using var fake = new FakeNvml("gpu0.energy=unsupported", "gpu0.power_base_mw=300000");
        using var w = EnergyWindow.Start([0], TimeSpan.FromMilliseconds(10));
        Thread.Sleep(300);
        var r = Assert.Single(w.Stop());
        Assert.Equal("sampled", r.Method);
        // Instant power is 301 W on the fake.
        Assert.InRange(r.Joules / (301 * r.Seconds), 0.9, 1.05);
        Assert.InRange(r.AveragePowerWatts, 270, 305);
    }

    [Fact]
    public void A_counter_reset_inside_the_window_is_not_a_negative_delta()
    {
        using var fake = new FakeNvml("gpu0.power_base_mw=200000", "gpu0.energy_offset_mj=50000000");
        fake.Set($"gpu0.energy_reset_s={fake.SinceT0() + 0.2:F3}");
        using var w = EnergyWindow.Start([0], TimeSpan.FromMilliseconds(20));
        Thread.Sleep(500);
        var r = Assert.Single(w.Stop());
        Assert.Equal("counter", r.Method);
        // Across the reset the counter drops from ~50 kJ to ~0: only the energy between the last sample before the
        // reset and the reset (at most one sampler period) may be lost.
        Assert.InRange(r.Joules, 200 * r.Seconds - 200 * 0.06, 200 * r.Seconds * 1.05);
    }

    [Fact]
    public void A_power_ramp_gives_a_peak_above_the_average()
    {
        using var fake = new FakeNvml("gpu0.power_base_mw=100000", "gpu0.power_ramp_mw_s=500000");
        using var w = EnergyWindow.Start([0], TimeSpan.FromMilliseconds(10));
        Thread.Sleep(400);
        var r = Assert.Single(w.Stop());
        Assert.True(r.PeakPowerWatts > r.AveragePowerWatts + 50, $"peak {r.PeakPowerWatts} W, average {r.AveragePowerWatts} W");
    }

    [Fact]
    public void A_gpu_lost_inside_the_window_keeps_what_was_measured()
    {
        using var fake = new FakeNvml("gpu0.power_base_mw=200000");
        fake.Set($"gpu0.lost_s={fake.SinceT0() + 0.3:F3}");
        using var w = EnergyWindow.Start([0], TimeSpan.FromMilliseconds(10));
        Thread.Sleep(600);
        var r = Assert.Single(w.Stop());
        // About 0.3 s at 200 W, measured up to the loss; nothing after it.
        Assert.InRange(r.Joules, 200 * 0.05, 200 * 0.45);
        Assert.InRange(r.Seconds, 0.01, 0.45);
    }

    [Fact]
    public void Measure_reports_a_gpu_lost_mid_window_as_an_error_not_a_reading()
    {
        using var fake = new FakeNvml("gpu1.power_base_mw=200000");
        fake.Set($"gpu1.lost_s={fake.SinceT0() + 0.2:F3}");
        var host = new RecordingHost();
        new MeasureEnergyOperation { Workload = _ => Thread.Sleep(500) }.Execute(host);
        Assert.Equal(0, Assert.Single(host.ObjectsOf<EnergyReading>()).GpuIndex);
        var e = Assert.Single(host.Errors);
        Assert.Contains("GPU 1", e.Message);
        Assert.Contains("into the window", e.Message);
    }

    [Fact]
    public void Measure_reports_a_gpu_without_counter_or_power_as_an_error_not_NaN()
    {
        using var fake = new FakeNvml("gpu1.energy=unsupported", "gpu1.power_usage=unsupported", "gpu1.fields=unsupported");
        var host = new RecordingHost();
        new MeasureEnergyOperation { Workload = _ => Thread.Sleep(100) }.Execute(host);
        Assert.Equal(0, Assert.Single(host.ObjectsOf<EnergyReading>()).GpuIndex);
        Assert.Equal("NotSupported", Assert.Single(host.Errors).ErrorId);
    }

    [Fact]
    public void An_unknown_gpu_index_is_an_error_not_a_silent_empty_window()
    {
        using var fake = new FakeNvml();
        Assert.Equal("GpuNotFound", Assert.Throws<GpuOpsException>(() => EnergyWindow.TryStart([3])).ErrorId);
    }

    [Fact]
    public void Measure_runs_the_workload_and_reports_each_gpu()
    {
        using var fake = new FakeNvml("gpu0.power_base_mw=300000");
        var host = new RecordingHost();
        int ran = 0;
        new MeasureEnergyOperation { Workload = _ => { ran++; Thread.Sleep(250); } }.Execute(host);
        Assert.Equal(1, ran);
        var r = host.ObjectsOf<EnergyReading>().ToList();
        Assert.Equal(new[] { 0, 1 }, r.Select(x => x.GpuIndex));
        Assert.InRange(r[0].Seconds, 0.24, 2);
        Assert.InRange(r[0].AveragePowerWatts, 285, 315);
    }

    [Fact]
    public void Measure_reports_the_energy_before_a_failing_workload_s_error()
    {
        using var fake = new FakeNvml();
        var host = new RecordingHost();
        var ex = Assert.Throws<InvalidOperationException>(() => new MeasureEnergyOperation
        {
            Index = [1],
            Workload = _ => { Thread.Sleep(50); throw new InvalidOperationException("boom"); },
        }.Execute(host));
        Assert.Equal("boom", ex.Message);
        Assert.Equal(1, Assert.Single(host.ObjectsOf<EnergyReading>()).GpuIndex);
    }
}
