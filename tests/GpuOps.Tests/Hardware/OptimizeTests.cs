using System.Diagnostics;
using GpuOps.Core.Hosting;
using GpuOps.Nvml;
using GpuOps.Tests.Support;
using Xunit;

namespace GpuOps.Tests.Hardware;

public class PowerObjectiveTests
{
    // Synthetic sweep: time per unit of work grows as the limit drops; power follows the limit.
    private static List<PowerSweepPoint> Points(params (double Limit, double Seconds, double Watts)[] pts) =>
        pts.Select(p => OptimizePowerLimitOperation.MakePoint(0, "GPU-x", p.Limit, 1, p.Seconds, 1.0 / p.Seconds, p.Watts * p.Seconds, p.Watts, "counter", 700)).ToList();

    private static readonly (double, double, double)[] Sweep =
    [
        (700, 1.00, 690), // E = 690, EDP = 690
        (600, 1.02, 590), // E = 601.8, EDP = 613.8
        (500, 1.08, 495), // E = 534.6, EDP = 577.4
        (400, 1.25, 398), // E = 497.5, EDP = 621.9
        (300, 1.80, 299), // E = 538.2
    ];

    [Fact]
    public void MinEnergy_picks_the_least_energy_per_unit_of_work()
    {
        var pts = Points(Sweep);
        Assert.Equal(400, OptimizePowerLimitOperation.Choose(pts, PowerObjective.MinEnergy)!.PowerLimitWatts);
    }

    [Fact]
    public void MinEnergyDelay_picks_the_least_energy_times_time()
    {
        Assert.Equal(500, OptimizePowerLimitOperation.Choose(Points(Sweep), PowerObjective.MinEnergyDelay)!.PowerLimitWatts);
    }

    [Fact]
    public void MaxSlowdown_picks_the_least_energy_within_the_factor()
    {
        Assert.Equal(500, OptimizePowerLimitOperation.Choose(Points(Sweep), PowerObjective.MaxSlowdown, factor: 1.1)!.PowerLimitWatts);
        Assert.Equal(400, OptimizePowerLimitOperation.Choose(Points(Sweep), PowerObjective.MaxSlowdown, factor: 1.3)!.PowerLimitWatts);
        Assert.Equal(700, OptimizePowerLimitOperation.Choose(Points(Sweep), PowerObjective.MaxSlowdown, factor: 1.0)!.PowerLimitWatts);
        // The slowdown is relative to the highest limit (as Zeus), not to the fastest point.
        var odd = Points((700, 1.00, 690), (600, 0.90, 650), (500, 1.04, 495));
        Assert.Equal(500, OptimizePowerLimitOperation.Choose(odd, PowerObjective.MaxSlowdown, factor: 1.05)!.PowerLimitWatts);
    }

    [Fact]
    public void Cost_is_zeus_eta_energy_plus_max_power_time()
    {
        var pts = Points(Sweep);
        // η = 1: energy only; η = 0: time only (the fastest).
        Assert.Equal(400, OptimizePowerLimitOperation.Choose(pts, PowerObjective.Cost, eta: 1.0, maxPowerWatts: 700)!.PowerLimitWatts);
        Assert.Equal(700, OptimizePowerLimitOperation.Choose(pts, PowerObjective.Cost, eta: 0.0, maxPowerWatts: 700)!.PowerLimitWatts);
        var chosen = OptimizePowerLimitOperation.Choose(pts, PowerObjective.Cost, eta: 0.5, maxPowerWatts: 700)!;
        // 0.5·E + 0.5·700·T: 700 → 695, 600 → 657.9, 500 → 645.3, 400 → 686.25, 300 → 899.1
        Assert.Equal(500, chosen.PowerLimitWatts);
        Assert.Equal(0.5 * 534.6 + 0.5 * 700 * 1.08, chosen.Cost, 6);
    }

    [Fact]
    public void The_sweep_grid_runs_from_max_down_to_min_and_includes_min()
    {
        Assert.Equal(21, OptimizePowerLimitOperation.Limits(200000, 700000, 25000).Count);
        Assert.Equal(new uint[] { 700000, 550000, 400000, 250000, 200000 }, OptimizePowerLimitOperation.Limits(200000, 700000, 150000));
        Assert.Equal(new uint[] { 300000 }, OptimizePowerLimitOperation.Limits(300000, 300000, 25000));
    }
}

[Collection("NativeEnvironment")]
public class OptimizeTests
{
    private const string Uuid0 = "GPU-fa4e0000-0000-4000-8000-000000000000";

    private static OptimizePowerLimitOperation Sweep(Func<CancellationToken, double?> workload, double step = 100) => new()
    {
        Index = 0,
        StepWatts = step,
        WarmupRuns = 1,
        Runs = 2,
        Workload = workload,
        EnergySampleInterval = TimeSpan.FromMilliseconds(5),
    };

    [Fact]
    public void A_sweep_visits_every_limit_measures_energy_and_restores_the_original()
    {
        using var fake = new FakeNvml("gpu0.limit_mw=650000", "gpu0.power_base_mw=2000000");
        var seen = new List<uint>();
        var host = new RecordingHost();
        Sweep(_ =>
        {
            seen.Add(fake.LimitMilliwatts(0));
            Thread.Sleep(30);
            return null;
        }).Execute(host);

        // 1 warm-up + 2 measured runs at each of 700, 600, ..., 200 W.
        var expected = new uint[] { 700000, 600000, 500000, 400000, 300000, 200000 };
        Assert.Equal(expected.SelectMany(l => Enumerable.Repeat(l, 3)), seen);
        Assert.Equal(650000u, fake.LimitMilliwatts(0));
        Assert.Null(PowerLimitJournal.Read(Uuid0));
        var result = Assert.Single(host.ObjectsOf<PowerOptimizationResult>());
        Assert.Equal(650.0, result.OriginalWatts);
        Assert.False(result.Applied);
        Assert.Equal(6, result.Points.Count);
        Assert.Single(result.Points, p => p.Chosen);
        Assert.Equal(result.ChosenWatts, result.Points.Single(p => p.Chosen).PowerLimitWatts);
        foreach (var p in result.Points)
        {
            // Demand is above every limit: the fake draws exactly the limit.
            Assert.InRange(p.AveragePowerWatts / p.PowerLimitWatts, 0.9, 1.1);
            Assert.Equal("counter", p.EnergyMethod);
            Assert.InRange(p.SecondsPerRun, 0.029, 2.0);
            Assert.InRange(p.Throughput, 1, 70);
        }

        // Equal work at every limit and power = limit: the lowest limit needs the least energy per run.
        Assert.Equal(200.0, result.ChosenWatts);
        Assert.Single(host.ShouldProcessCalls);
    }

    [Fact]
    public void A_workload_exception_still_restores_the_original_limit()
    {
        using var fake = new FakeNvml("gpu0.limit_mw=600000");
        int runs = 0;
        var ex = Assert.Throws<InvalidOperationException>(() => Sweep(_ =>
        {
            if (++runs == 7) throw new InvalidOperationException("workload crashed");
            return 10;
        }).Execute(new RecordingHost()));
        Assert.Equal("workload crashed", ex.Message);
        Assert.Equal(600000u, fake.LimitMilliwatts(0));
        Assert.Null(PowerLimitJournal.Read(Uuid0));
        Assert.True(int.Parse(fake.Get("calls.set")!) >= 4); // 700, 600, 500, then the restore
    }

    [Fact]
    public void Cancellation_mid_sweep_restores_the_original_limit()
    {
        using var fake = new FakeNvml("gpu0.limit_mw=550000");
        using var cts = new CancellationTokenSource();
        int runs = 0;
        Assert.ThrowsAny<OperationCanceledException>(() => Sweep(_ =>
        {
            if (++runs == 5) cts.Cancel();
            Thread.Sleep(2);
            return null;
        }).Execute(new RecordingHost(cts.Token)));
        Assert.Equal(550000u, fake.LimitMilliwatts(0));
        Assert.Null(PowerLimitJournal.Read(Uuid0));
    }

    [Fact]
    public void Apply_sets_the_choice_and_keeps_the_original_in_the_journal()
    {
        using var fake = new FakeNvml("gpu0.power_base_mw=2000000");
        var host = new RecordingHost();
        var op = Sweep(_ => { Thread.Sleep(5); return null; }, step: 250);
        op.Apply = true;
        op.Objective = PowerObjective.MaxSlowdown;
        op.Factor = 1.5;
        op.Execute(host);
        var result = Assert.Single(host.ObjectsOf<PowerOptimizationResult>());
        Assert.True(result.Applied);
        Assert.Equal((uint)(result.ChosenWatts * 1000), fake.LimitMilliwatts(0));
        Assert.Equal(700000u, PowerLimitJournal.Read(Uuid0)!.OriginalMilliwatts);
        Assert.Equal(2, host.ShouldProcessCalls.Count);
        new RestorePowerLimitOperation { Index = [0] }.Execute(new RecordingHost());
        Assert.Equal(700000u, fake.LimitMilliwatts(0));
    }

    [Fact]
    public void What_if_runs_nothing()
    {
        using var fake = new FakeNvml();
        int runs = 0;
        Sweep(_ => { runs++; return null; }).Execute(new RecordingHost { Confirm = false });
        Assert.Equal(0, runs);
        Assert.Null(fake.Get("calls.set"));
    }

    [Fact]
    public void Bad_sweep_parameters_are_refused()
    {
        using var fake = new FakeNvml();
        var bad = new Action<OptimizePowerLimitOperation>[]
        {
            o => o.StepWatts = 0,
            o => o.StepWatts = -25,
            o => o.Runs = 0,
            o => o.MinWatts = -1,
            o => { o.Objective = PowerObjective.MaxSlowdown; o.Factor = 0.5; },
            o => { o.Objective = PowerObjective.Cost; o.Eta = 2; },
            o => o.Workload = null,
        };
        foreach (var b in bad)
        {
            var op = Sweep(_ => null);
            b(op);
            var ex = Assert.Throws<GpuOpsException>(() => op.Execute(new RecordingHost()));
            Assert.Equal(ErrorCategory.InvalidArgument, ex.Category);
        }

        var range = Sweep(_ => null);
        range.MinWatts = 100;
        Assert.Equal("PowerLimitOutOfRange", Assert.Throws<GpuOpsException>(() => range.Execute(new RecordingHost())).ErrorId);
        var inverted = Sweep(_ => null);
        (inverted.MinWatts, inverted.MaxWatts) = (600, 300);   // (both allowed, but the wrong way round: say so)
        var inv = Assert.Throws<GpuOpsException>(() => inverted.Execute(new RecordingHost()));
        Assert.Equal("InvalidSweepRange", inv.ErrorId);
        Assert.Contains("above its maximum", inv.Message);
        var byName = Sweep(_ => null);
        (byName.Workload, byName.WorkloadLookup) = (null, "no-such-benchmark");
        Assert.Equal("BenchmarkNotFound", Assert.Throws<GpuOpsException>(() => byName.Execute(new RecordingHost())).ErrorId);
        var unknown = Sweep(_ => null);
        unknown.Index = 4;
        Assert.Equal("GpuNotFound", Assert.Throws<GpuOpsException>(() => unknown.Execute(new RecordingHost())).ErrorId);
        Assert.Equal("BenchmarkNotFound", Assert.Throws<GpuOpsException>(() => PowerSweepWorkloads.Resolve("no-such-benchmark")).ErrorId);
        Assert.Null(fake.Get("calls.set"));
    }

    [Fact]
    public void A_registered_benchmark_can_drive_the_sweep()
    {
        using var fake = new FakeNvml();
        PowerSweepWorkloads.Register("test-constant", _ => { Thread.Sleep(2); return 42.0; }, "widgets/s");
        Assert.Contains("test-constant", PowerSweepWorkloads.Names);
        var host = new RecordingHost();
        var op = Sweep(_ => null, step: 500);
        (op.Workload, op.WorkloadLookup) = (null, "TEST-Constant");   // (names are not case-sensitive)
        op.Execute(host);
        var result = Assert.Single(host.ObjectsOf<PowerOptimizationResult>());
        Assert.Equal("test-constant", result.Workload);
        Assert.All(result.Points, p => Assert.Equal(42.0, p.Throughput));
        Assert.All(result.Points, p => Assert.Equal("widgets/s", p.ThroughputUnit));
        Assert.Equal(700000u, fake.LimitMilliwatts(0));
    }

    /// <summary>A registered workload that records its life: made for which GPU, when, how often run, disposed.</summary>
    private sealed class Probe : IPowerSweepWorkload
    {
        public static readonly List<string> Log = new();
        private readonly FakeNvml _fake;

        public Probe(PowerSweepTarget t, FakeNvml fake)
        {
            _fake = fake;
            Log.Add($"made for {t.Index} {t.Uuid} at {fake.LimitMilliwatts(t.Index)}");
        }

        public string ThroughputUnit => "GB/s";

        public double? Run(CancellationToken token)
        {
            Thread.Sleep(2);
            Log.Add("run at " + _fake.LimitMilliwatts(1));
            return _fake.LimitMilliwatts(1) / 1000.0;   // (throughput follows the limit)
        }

        public void Dispose() => Log.Add("disposed");
    }

    [Fact]
    public void A_registered_workload_is_made_for_the_gpu_swept_after_confirmation_and_freed_afterwards()
    {
        using var fake = new FakeNvml("gpus=2", "gpu1.limit_mw=650000");
        PowerSweepWorkloads.Register("test-probe", "records its life", t => new Probe(t, fake));
        Probe.Log.Clear();

        // -WhatIf: looked up (an unknown name would be an error) but never made
        var whatIf = Sweep(_ => null, step: 500);
        (whatIf.Workload, whatIf.WorkloadLookup, whatIf.Index) = (null, "test-probe", 1);
        whatIf.Execute(new RecordingHost { Confirm = false });
        Assert.Empty(Probe.Log);

        var host = new RecordingHost();
        var op = Sweep(_ => null, step: 500);
        (op.Workload, op.WorkloadLookup, op.Index) = (null, "test-probe", 1);
        op.Execute(host);
        // made once on GPU 1 at the limit in force before the sweep; 1 warm-up + 2 runs at 700 and 200 W; then freed
        Assert.Equal(
            ["made for 1 GPU-fa4e0000-0000-4000-8000-000000000001 at 650000", "run at 700000", "run at 700000", "run at 700000",
             "run at 200000", "run at 200000", "run at 200000", "disposed"],
            Probe.Log);
        var result = Assert.Single(host.ObjectsOf<PowerOptimizationResult>());
        Assert.Equal("test-probe", result.Workload);
        Assert.Equal([700.0, 200.0], result.Points.Select(p => p.Throughput));
        Assert.All(result.Points, p => Assert.Equal("GB/s", p.ThroughputUnit));
        Assert.Contains(host.Verbose, v => v.Contains("setting up the test-probe workload"));
        Assert.Equal(650000u, fake.LimitMilliwatts(1));
    }

    [Fact]
    public void A_registered_workload_is_freed_when_the_sweep_fails_and_one_that_cannot_be_made_changes_nothing()
    {
        using var fake = new FakeNvml("gpu0.limit_mw=600000");
        int runs = 0;
        bool disposed = false;
        PowerSweepWorkloads.Register("test-crash", "fails on its 4th run", _ => new Crashing(() => ++runs == 4, () => disposed = true));
        var op = Sweep(_ => null);
        (op.Workload, op.WorkloadLookup) = (null, "test-crash");
        Assert.Throws<InvalidOperationException>(() => op.Execute(new RecordingHost()));
        Assert.True(disposed);
        Assert.Equal(600000u, fake.LimitMilliwatts(0));
        Assert.Null(PowerLimitJournal.Read(Uuid0));

        // a set-up that fails (no CUDA device has this GPU's UUID, out of memory…): before the journal and any limit
        PowerSweepWorkloads.Register("test-no-device", "cannot be made", _ => throw new GpuOpsException("GpuNotFound", ErrorCategory.ObjectNotFound, "No CUDA device has UUID 'x'."));
        var op2 = Sweep(_ => null);
        (op2.Workload, op2.WorkloadLookup) = (null, "test-no-device");
        var setsBefore = fake.Get("calls.set");
        Assert.Equal("GpuNotFound", Assert.Throws<GpuOpsException>(() => op2.Execute(new RecordingHost())).ErrorId);
        Assert.Equal(600000u, fake.LimitMilliwatts(0));
        Assert.Null(PowerLimitJournal.Read(Uuid0));
        Assert.Equal(setsBefore, fake.Get("calls.set"));
    }

    private sealed class Crashing(Func<bool> crashNow, Action onDispose) : IPowerSweepWorkload
    {
        public string ThroughputUnit => "runs/s";

        public double? Run(CancellationToken token) => crashNow() ? throw new InvalidOperationException("workload crashed") : null;

        public void Dispose() => onDispose();
    }

    [Fact]
    public void Runs_that_return_no_number_make_the_point_count_runs_per_second()
    {
        using var fake = new FakeNvml();
        int i = 0;
        var host = new RecordingHost();
        var op = Sweep(_ => { Thread.Sleep(5); return ++i % 2 == 0 ? 1000.0 : null; }, step: 500);
        op.ThroughputUnit = "tokens/s";
        op.Execute(host);
        var result = Assert.Single(host.ObjectsOf<PowerOptimizationResult>());
        Assert.All(result.Points, p => Assert.Equal("runs/s", p.ThroughputUnit));
        Assert.All(result.Points, p => Assert.InRange(p.Throughput, 1, 250));   // runs of >= 5 ms, not 1000
        var given = Sweep(_ => 1000.0, step: 500);
        given.ThroughputUnit = "tokens/s";
        var host2 = new RecordingHost();
        given.Execute(host2);
        Assert.All(host2.ObjectsOf<PowerOptimizationResult>().Single().Points, p => Assert.Equal(("tokens/s", 1000.0), (p.ThroughputUnit, p.Throughput)));
    }

    /// <summary>
    /// The crash case: a gpuops process is killed mid-sweep (no finally runs). The journal, written before the first
    /// change, lets a second process put back the original limit.
    /// </summary>
    [Fact]
    public void A_killed_sweep_is_undone_by_restore_in_a_second_process()
    {
        using var fake = new FakeNvml("gpu0.limit_mw=625000");
        var cli = CliDll();
        using var sweep = StartCli(fake, cli, "power", "optimize", "--yes", "--index", "0", "--step", "100", "--warmup", "0", "--runs", "1", "--", "sleep", "0.4");
        try
        {
            // Wait until the sweep has changed the limit (the fake's state file is shared across processes).
            var deadline = Stopwatch.StartNew();
            while (fake.LimitMilliwatts(0) == 625000u && !sweep.HasExited && deadline.Elapsed < TimeSpan.FromSeconds(60)) Thread.Sleep(20);
            if (sweep.HasExited) Assert.Fail("the sweep ended before it could be killed: " + sweep.StandardError.ReadToEnd());
            Assert.NotEqual(625000u, fake.LimitMilliwatts(0));
            sweep.Kill(entireProcessTree: true);
            sweep.WaitForExit();
        }
        finally
        {
            if (!sweep.HasExited) sweep.Kill(entireProcessTree: true);
        }

        Assert.NotEqual(625000u, fake.LimitMilliwatts(0));
        Assert.Equal(625000u, PowerLimitJournal.Read(Uuid0)!.OriginalMilliwatts);

        using var restore = StartCli(fake, cli, "power", "restore", "--yes", "--json");
        var stdout = restore.StandardOutput.ReadToEnd();
        var stderr = restore.StandardError.ReadToEnd();
        Assert.True(restore.WaitForExit(60000));
        Assert.True(restore.ExitCode == 0, stderr);
        Assert.Equal(625000u, fake.LimitMilliwatts(0));
        Assert.Null(PowerLimitJournal.Read(Uuid0));
        Assert.Contains("\"powerLimitWatts\":625", stdout);
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);

    /// <summary>Ctrl+C (SIGINT) or SIGTERM mid-sweep: the sweep's finally runs, the original limit is back, exit code 130.</summary>
    [Theory]
    [InlineData(2)]
    [InlineData(15)]
    public void A_signal_mid_sweep_restores_the_original_limit_and_exits_130(int signal)
    {
        if (!OperatingSystem.IsLinux()) Assert.Skip("POSIX signals: Linux");
        using var fake = new FakeNvml("gpu0.limit_mw=625000");
        var cli = CliDll();
        using var sweep = StartCli(fake, cli, "power", "optimize", "--yes", "-q", "--index", "0", "--step", "100", "--warmup", "0", "--runs", "1", "--", "sleep", "0.4");
        var stderr = sweep.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        var stdout = sweep.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var deadline = Stopwatch.StartNew();
        while (fake.LimitMilliwatts(0) == 625000u && !sweep.HasExited && deadline.Elapsed < TimeSpan.FromSeconds(60)) Thread.Sleep(20);
        Assert.False(sweep.HasExited, "the sweep ended before the signal");
        Assert.NotEqual(625000u, fake.LimitMilliwatts(0));
        Assert.Equal(0, kill(sweep.Id, signal));
        Assert.True(sweep.WaitForExit(30000), "the sweep stopped");
        Assert.Equal(130, sweep.ExitCode);
        Assert.Equal(625000u, fake.LimitMilliwatts(0));
        Assert.Null(PowerLimitJournal.Read(Uuid0));
        Assert.Contains("cancelled", stderr.Result);
        _ = stdout.Result;
    }

    /// <summary>`gpuops telemetry --interval ... | head -1`: when the reader closes the pipe, the stream stops (exit 141).</summary>
    [Fact]
    public void A_stream_stops_when_its_reader_closes_the_pipe()
    {
        if (!OperatingSystem.IsLinux()) Assert.Skip("pipes: Linux");
        using var fake = new FakeNvml();
        var cli = CliDll();
        using var stream = StartCli(fake, cli, "telemetry", "--interval", "0.05", "--json", "-q");
        var first = stream.StandardOutput.ReadLine();
        Assert.StartsWith("{", first);
        stream.StandardOutput.Close();
        Assert.True(stream.WaitForExit(20000), "the stream stopped after its reader went away");
        Assert.Equal(141, stream.ExitCode);
    }

    internal static string CliDll()
    {
        // tests/GpuOps.Tests/bin/<Config>/net8.0/ → src/GpuOps.Cli/bin/<Config>/net8.0/gpuops.dll
        var config = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent?.Name ?? "Release";
        var dll = Repo.PathOf("src", "GpuOps.Cli", "bin", config, "net8.0", "gpuops.dll");
        if (!File.Exists(dll)) Assert.Skip($"the gpuops CLI is not built at {dll}");
        return dll;
    }

    internal static Process StartCli(FakeNvml fake, string dll, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in fake.Environment()) psi.Environment[k] = v;
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        return Process.Start(psi)!;
    }
}
