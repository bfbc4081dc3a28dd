using System.Diagnostics;
using System.Text.Json;
using GpuOps.Core.Hosting;
using GpuOps.Core.Native;
using GpuOps.Nvml;
using GpuOps.Tests.Support;
using Xunit;

namespace GpuOps.Tests.Hardware;

/// <summary>
/// The read paths against the real NVML on a GPU host (skipped elsewhere). Figures are written as JSON to $OUT
/// (scripts/gpu-host-run.sh sets it) or artifacts/, for bench/results. Never changes a power limit: the Set path
/// runs with ShouldProcess answering no (-WhatIf).
/// </summary>
[Collection("NativeEnvironment")]
public class GpuHostNvmlTests
{
    private static string OutFile(string name)
    {
        var dir = Environment.GetEnvironmentVariable("OUT") is { Length: > 0 } o ? o : Repo.PathOf("artifacts");
        Directory.CreateDirectory(dir);
        return Path.Combine(dir, name);
    }

    private static void Record(string name, object value)
    {
        var json = JsonSerializer.Serialize(value, new JsonSerializerOptions { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals });
        File.WriteAllText(OutFile(name), json);
        TestContext.Current.TestOutputHelper?.WriteLine(json);
    }

    private static void RealNvml()
    {
        NativeLibraries.ResetForTests();
        if (!NativeLibraries.IsAvailable(NativeLibraryKind.Nvml)) Assert.Skip("NVML is not available on this GPU host");
    }

    [GpuFact]
    public void Inventory_from_the_real_nvml()
    {
        RealNvml();
        var host = new RecordingHost();
        new GetGpuOperation().Execute(host);
        new GetGpuProcessOperation().Execute(host);
        new GetPowerLimitOperation().Execute(host);
        var gpus = host.ObjectsOf<GpuInfo>().ToList();
        Assert.NotEmpty(gpus);
        foreach (var g in gpus)
        {
            Assert.StartsWith("GPU-", g.Uuid);
            Assert.False(string.IsNullOrEmpty(g.Name));
            Assert.True(g.MemoryTotalBytes > 0);
            Assert.Matches(@"^\d+\.\d+$", g.ComputeCapability!);
            if (g.PowerLimitWatts is { } l && g.MinPowerLimitWatts is { } mn && g.MaxPowerLimitWatts is { } mx) Assert.InRange(l, mn, mx);
        }

        Assert.Empty(host.Errors);
        Record("nvml-inventory.json", new { gpus, processes = host.ObjectsOf<GpuProcessInfo>(), powerLimits = host.ObjectsOf<GpuPowerLimit>() });
    }

    [GpuFact]
    public void A_100_hz_stream_for_10_s_costs_little_and_keeps_its_cadence()
    {
        RealNvml();
        var host = new RecordingHost();
        var one = new RecordingHost();
        new GetTelemetryOperation().Execute(one); // a single sample: what one looks like on this GPU
        new GetTelemetryOperation { Interval = TimeSpan.FromMilliseconds(10), Duration = TimeSpan.FromSeconds(10), Statistics = true }.Execute(host);
        var st = Assert.Single(host.ObjectsOf<TelemetryStreamStatistics>());
        Record("nvml-stream-100hz.json", new { statistics = st, sample = one.ObjectsOf<GpuTelemetrySample>() });
        Assert.InRange(st.Ticks + st.MissedTicks, 990, 1001);
        Assert.True(st.SampleCostMeanMs < 10, $"one full sample took {st.SampleCostMeanMs} ms");
    }

    [GpuFact]
    public void An_energy_window_around_a_known_load()
    {
        RealNvml();
        // The load: 6 s of large matrix multiplications on GPU 0 with PyTorch (present on the GPU hosts).
        const string script = "import torch,time\n" +
                              "a=torch.randn(8192,8192,device='cuda',dtype=torch.float16);b=torch.randn_like(a)\n" +
                              "torch.cuda.synchronize();t=time.time();n=0\n" +
                              "while time.time()-t<6:\n  c=a@b;n+=1\n  torch.cuda.synchronize() if n%20==0 else None\n" +
                              "torch.cuda.synchronize();print(n*2*8192**3/(time.time()-t)/1e12)\n";
        var psi = new ProcessStartInfo("python3") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(script);
        psi.Environment["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"; // CUDA device 0 = NVML GPU 0
        psi.Environment["CUDA_VISIBLE_DEVICES"] = "0";
        var idle = EnergyWindow.Start([0], TimeSpan.FromMilliseconds(20));
        Thread.Sleep(2000);
        var idleReading = idle.Stop()[0];
        Process p;
        try
        {
            p = Process.Start(psi)!;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            Assert.Skip("python3 is not installed on this host");
            return;
        }

        using var window = EnergyWindow.Start([0], TimeSpan.FromMilliseconds(20));
        var stdout = p.StandardOutput.ReadToEnd();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        var load = window.Stop()[0];
        if (p.ExitCode != 0 && stderr.Contains("No module named 'torch'")) Assert.Skip("PyTorch is not installed on this host");
        Assert.True(p.ExitCode == 0, stderr);
        Record("nvml-energy-window.json", new { idle = idleReading, load, tflops = stdout.Trim() });
        Assert.True(load.Joules > 0);
        Assert.True(load.AveragePowerWatts > idleReading.AveragePowerWatts, $"load {load.AveragePowerWatts} W vs idle {idleReading.AveragePowerWatts} W");
        Assert.True(load.PeakPowerWatts >= load.AveragePowerWatts * 0.9);
    }

    [GpuFact]
    public void Set_percent_70_what_if_says_what_it_would_do_and_changes_nothing()
    {
        RealNvml();
        var before = new RecordingHost();
        new GetPowerLimitOperation().Execute(before);
        var host = new RecordingHost { Confirm = false }; // -WhatIf: never set a limit on a lent GPU
        new SetPowerLimitOperation { Percent = 70 }.Execute(host);
        var after = new RecordingHost();
        new GetPowerLimitOperation().Execute(after);
        Record("nvml-power-whatif.json", new { whatIf = host.ShouldProcessCalls.Select(c => $"What if: Performing the operation \"{c.Action}\" on target \"{c.Target}\"."), before = before.Objects });
        Assert.Equal(before.ObjectsOf<GpuPowerLimit>().Select(l => l.PowerLimitWatts), after.ObjectsOf<GpuPowerLimit>().Select(l => l.PowerLimitWatts));
        Assert.NotEmpty(host.ShouldProcessCalls);
        Assert.All(host.ShouldProcessCalls, c => Assert.Equal(ConfirmImpact.High, c.Impact));
    }
}
