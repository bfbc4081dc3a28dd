using System.Collections.Concurrent;
using System.Diagnostics;
using GpuOps.Core.Hosting;
using GpuOps.Nvml.Native;

namespace GpuOps.Nvml;

/// <summary>How Optimize-GpuPowerLimit chooses a limit (as Zeus defines them).</summary>
public enum PowerObjective
{
    /// <summary>Least energy per unit of work.</summary>
    MinEnergy,
    /// <summary>Least energy × time per unit of work (EDP).</summary>
    MinEnergyDelay,
    /// <summary>Zeus' cost: η·E + (1−η)·MaxPower·T per unit of work (η = -Eta, MaxPower = the GPU's maximum limit).</summary>
    Cost,
    /// <summary>Least energy among limits at most -Factor times slower than at the highest limit swept.</summary>
    MaxSlowdown,
}

/// <summary>The GPU a registered sweep workload is made for: NVML's index and the UUID (which finds its CUDA ordinal).</summary>
public sealed record PowerSweepTarget(int Index, string Uuid, IOperationHost Host);

/// <summary>
/// A workload made for one sweep (<c>Optimize-GpuPowerLimit -Benchmark</c>): set up once on the target GPU before the
/// first limit is set (allocation, compilation, tuning), run many times, disposed after the sweep whatever happens.
/// </summary>
public interface IPowerSweepWorkload : IDisposable
{
    /// <summary>The unit of what <see cref="Run"/> returns (GB/s, TFLOP/s), or "runs/s" where it returns null.</summary>
    string ThroughputUnit { get; }

    /// <summary>Runs the work once (to completion on the GPU); returns its throughput, or null (then runs per second count).</summary>
    double? Run(CancellationToken token);
}

/// <summary>
/// Named workloads for <c>Optimize-GpuPowerLimit -Benchmark</c> / <c>gpuops power optimize --benchmark</c>. Other areas
/// register theirs (GpuOps.Cuda: Memory and Gemm); a registration makes a workload for the GPU swept.
/// </summary>
public static class PowerSweepWorkloads
{
    private sealed record Entry(string Name, string Description, Func<PowerSweepTarget, IPowerSweepWorkload> Factory);

    private static readonly ConcurrentDictionary<string, Entry> Registry = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Registers (or replaces) a workload made for each sweep's GPU.</summary>
    public static void Register(string name, string description, Func<PowerSweepTarget, IPowerSweepWorkload> factory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(factory);
        Registry[name] = new Entry(name, description, factory);
    }

    /// <summary>Registers a workload that needs no set-up (the same function on every GPU).</summary>
    public static void Register(string name, Func<CancellationToken, double?> workload, string throughputUnit = "runs/s") =>
        Register(name, "", _ => new FunctionWorkload(workload, throughputUnit));

    public static IReadOnlyCollection<string> Names => Registry.Values.Select(e => e.Name).OrderBy(k => k, StringComparer.OrdinalIgnoreCase).ToList();

    /// <summary>What a registered workload does (for completion tooltips and help), or null.</summary>
    public static string? Describe(string name) => Registry.TryGetValue(name, out var e) ? e.Description : null;

    /// <summary>The registered name as spelled at registration (BenchmarkNotFound when none).</summary>
    public static string Resolve(string name) =>
        Registry.TryGetValue(name, out var e)
            ? e.Name
            : throw new GpuOpsException("BenchmarkNotFound", ErrorCategory.ObjectNotFound,
                Registry.IsEmpty
                    ? $"There is no benchmark named '{name}': none is registered in this build; use -ScriptBlock (gpuops: -- <command>)."
                    : $"There is no benchmark named '{name}'; known: {string.Join(", ", Names)}.", name, null,
                "Tab completes the names (gpuops power optimize --help lists them); or give the work as -ScriptBlock (gpuops: -- <command>).");

    /// <summary>Makes the named workload for the target GPU (its set-up runs here).</summary>
    public static IPowerSweepWorkload Create(string name, PowerSweepTarget target) => Registry[Resolve(name)].Factory(target);

    private sealed class FunctionWorkload(Func<CancellationToken, double?> run, string unit) : IPowerSweepWorkload
    {
        public string ThroughputUnit => unit;
        public double? Run(CancellationToken token) => run(token);
        public void Dispose() { }
    }
}

/// <summary>
/// <c>Optimize-GpuPowerLimit</c> / <c>gpuops power optimize</c>: sweeps power limits from the maximum down to the
/// minimum in steps, runs the workload (warm-up runs, then measured runs inside an <see cref="EnergyWindow"/>) at
/// each, and chooses a limit by <see cref="Objective"/>. Whatever happens (an exception, Ctrl+C) the limit in force
/// before the sweep is restored; it is journaled first, so a killed sweep is undone by Restore-GpuPowerLimit.
/// With <see cref="Apply"/> the chosen limit is set afterwards (ShouldProcess).
/// </summary>
public sealed class OptimizePowerLimitOperation : IOperation
{
    public int? Index { get; set; }
    public string? Uuid { get; set; }

    /// <summary>Runs the work once; returns its throughput, or null to count runs per second.</summary>
    public Func<CancellationToken, double?>? Workload { get; set; }

    /// <summary>A registered workload (<see cref="PowerSweepWorkloads"/>) to use when <see cref="Workload"/> is null: looked up
    /// before anything runs (an unknown name is BenchmarkNotFound), made for the GPU swept after confirmation.</summary>
    public string? WorkloadLookup { get; set; }

    /// <summary>The unit of the numbers <see cref="Workload"/> returns (points where it returned none count runs/s).</summary>
    public string ThroughputUnit { get; set; } = "as returned";

    /// <summary>A name for the workload (messages and verbose output).</summary>
    public string WorkloadName { get; set; } = "workload";

    public double StepWatts { get; set; } = 25;
    public double? MinWatts { get; set; }
    public double? MaxWatts { get; set; }
    public int WarmupRuns { get; set; } = 1;
    public int Runs { get; set; } = 3;
    public PowerObjective Objective { get; set; } = PowerObjective.MinEnergy;

    /// <summary>MaxSlowdown: the largest slowdown accepted (1.1 = 10 % slower than at the highest limit).</summary>
    public double Factor { get; set; } = 1.1;

    /// <summary>Cost: η, the weight of energy against time (0..1).</summary>
    public double Eta { get; set; } = 0.5;

    public bool Apply { get; set; }

    /// <summary>Energy sampler period inside each measured window.</summary>
    public TimeSpan EnergySampleInterval { get; set; } = TimeSpan.FromMilliseconds(20);

    public void Execute(IOperationHost host)
    {
        Validate();
        var d = Uuid is not null ? NvmlDevice.ByUuid(Uuid) : NvmlDevice.ByIndex(Index ?? 0);
        var (cmin, cmax) = PowerLimitReader.Constraints(d);
        uint lo = MinWatts is { } mn ? (uint)Math.Round(mn * 1000) : cmin;
        uint hi = MaxWatts is { } mx ? (uint)Math.Round(mx * 1000) : cmax;
        if (lo > hi)
        {
            throw new GpuOpsException("InvalidSweepRange", ErrorCategory.InvalidArgument,
                $"GPU {d.Index}: the sweep's minimum {PowerLimitReader.W(lo)} is above its maximum {PowerLimitReader.W(hi)}.", d.Index, null,
                "Give -MinWatts at most -MaxWatts (gpuops: --min-watts, --max-watts).");
        }

        if (lo < cmin || hi > cmax)
        {
            throw new GpuOpsException("PowerLimitOutOfRange", ErrorCategory.InvalidArgument,
                $"GPU {d.Index}: the sweep range {PowerLimitReader.W(lo)} to {PowerLimitReader.W(hi)} is not within the allowed range {PowerLimitReader.W(cmin)} to {PowerLimitReader.W(cmax)}.", d.Index);
        }

        var limits = Limits(lo, hi, (uint)Math.Round(StepWatts * 1000));
        uint original = d.PowerLimitMilliwatts() ?? throw new GpuOpsException("NotSupported", ErrorCategory.NotImplemented, $"GPU {d.Index} reports no power limit.", d.Index);
        if (!host.ShouldProcess(PowerLimitReader.Target(d),
                $"Sweep the power limit over {limits.Count} values from {PowerLimitReader.W(hi)} down to {PowerLimitReader.W(lo)} running {WorkloadName}, then restore {PowerLimitReader.W(original)}",
                ConfirmImpact.High))
        {
            return;
        }

        // A registered workload is made now, on the GPU swept and at the limit in force (allocation, compilation and
        // tuning stay out of the sweep); it is freed however the sweep ends.
        if (Workload is null) host.WriteVerbose($"GPU {d.Index}: setting up the {WorkloadLookup} workload.");
        using var made = Workload is null ? PowerSweepWorkloads.Create(WorkloadLookup!, new PowerSweepTarget(d.Index, d.Uuid, host)) : null;
        Func<CancellationToken, double?> run = made is null ? Workload! : made.Run;
        string unit = made?.ThroughputUnit ?? ThroughputUnit;
        var (_, journaled) = PowerLimitReader.Journal(d, original, "Optimize-GpuPowerLimit");
        var token = host.CancellationToken;
        var points = new List<PowerSweepPoint>();
        var progress = new ProgressReporter(host, 3, $"Optimizing the power limit of GPU {d.Index}");
        bool restored = false;
        try
        {
            for (int i = 0; i < limits.Count; i++)
            {
                token.ThrowIfCancellationRequested();
                uint limit = limits[i];
                progress.Report((double)i / limits.Count, $"{PowerLimitReader.W(limit)} ({i + 1} of {limits.Count})", force: true);
                d.SetPowerLimitMilliwatts(limit);
                for (int w = 0; w < WarmupRuns; w++)
                {
                    token.ThrowIfCancellationRequested();
                    run(token);
                }

                var throughputs = new List<double>();
                var runsPerSecond = new List<double>();
                bool counted = false;
                var sw = Stopwatch.StartNew();
                IReadOnlyList<EnergyReading> readings;
                using (var window = EnergyWindow.Start([d], EnergySampleInterval))
                {
                    for (int r = 0; r < Runs; r++)
                    {
                        token.ThrowIfCancellationRequested();
                        var t0 = sw.Elapsed;
                        var tp = run(token);
                        var dt = (sw.Elapsed - t0).TotalSeconds;
                        bool given = tp is { } x && double.IsFinite(x) && x > 0;
                        counted |= !given;
                        runsPerSecond.Add(dt > 0 ? 1.0 / dt : double.NaN);
                        if (given) throughputs.Add(tp!.Value);
                    }

                    readings = window.Stop();
                }

                var e = readings[0];
                double seconds = e.Seconds / Runs;
                double joules = e.Joules / Runs;
                // (where some runs return no number, runs are counted for all: an average of two units means nothing)
                double throughput = counted ? runsPerSecond.Average() : throughputs.Average();

                string pointUnit = counted ? "runs/s" : unit;
                points.Add(MakePoint(d.Index, d.Uuid, limit / 1000.0, Runs, seconds, throughput, joules, e.AveragePowerWatts, e.Method, cmax / 1000.0) with { ThroughputUnit = pointUnit });
                host.WriteVerbose($"GPU {d.Index} at {PowerLimitReader.W(limit)}: {seconds:0.###} s/run, {joules:0.##} J/run, throughput {throughput:0.###} {pointUnit}.");
            }

            progress.Complete();
        }
        finally
        {
            // Whatever happened: put back the limit in force before the sweep.
            try
            {
                d.SetPowerLimitMilliwatts(original);
                restored = true;
            }
            catch (GpuOpsException ex)
            {
                host.WriteWarning($"GPU {d.Index}: could not restore the power limit {PowerLimitReader.W(original)} ({ex.Message}); the journal keeps it for Restore-GpuPowerLimit.");
            }

            if (restored && journaled && !Apply) PowerLimitJournal.Delete(d.Uuid);
        }

        var chosen = Choose(points, Objective, Factor, Eta, cmax / 1000.0);
        var marked = points.Select(p => p with { Chosen = ReferenceEquals(p, chosen) }).ToList();
        bool applied = false;
        if (Apply && chosen is not null &&
            host.ShouldProcess(PowerLimitReader.Target(d), $"Set the power limit to {chosen.PowerLimitWatts:0.###} W (best by {Objective})", ConfirmImpact.High))
        {
            d.SetPowerLimitMilliwatts((uint)Math.Round(chosen.PowerLimitWatts * 1000));
            applied = true;
        }
        else if (Apply && restored && journaled)
        {
            PowerLimitJournal.Delete(d.Uuid);
        }

        host.WriteObject(new PowerOptimizationResult(d.Index, d.Uuid, Objective.ToString(),
            Objective == PowerObjective.MaxSlowdown ? Factor : null, Objective == PowerObjective.Cost ? Eta : null,
            original / 1000.0, chosen?.PowerLimitWatts ?? original / 1000.0, applied, marked)
        {
            Workload = made is null ? WorkloadName : WorkloadLookup!,
        });
    }

    private void Validate()
    {
        if (Workload is null && WorkloadLookup is not null) WorkloadLookup = PowerSweepWorkloads.Resolve(WorkloadLookup);
        else if (Workload is null) throw GpuOpsException.InvalidArgument("WorkloadRequired", "Give a workload: -ScriptBlock or -Benchmark (gpuops: -- <command>).");
        if (!double.IsFinite(StepWatts) || StepWatts < 1 || StepWatts > SetPowerLimitOperation.AbsurdWatts)
            throw GpuOpsException.InvalidArgument("InvalidStep", $"The step must be between 1 and {SetPowerLimitOperation.AbsurdWatts} W (got {StepWatts}).", StepWatts);
        foreach (var (name, v) in new[] { ("minimum", MinWatts), ("maximum", MaxWatts) })
        {
            if (v is { } w && (!double.IsFinite(w) || w <= 0 || w > SetPowerLimitOperation.AbsurdWatts))
                throw GpuOpsException.InvalidArgument("InvalidPowerLimit", $"The {name} of the sweep ({w} W) is not a possible power limit.", w);
        }

        if (Runs < 1) throw GpuOpsException.InvalidArgument("InvalidRuns", $"At least one measured run is needed (got {Runs}).", Runs);
        if (WarmupRuns < 0) throw GpuOpsException.InvalidArgument("InvalidRuns", $"Warm-up runs cannot be negative (got {WarmupRuns}).", WarmupRuns);
        if (Objective == PowerObjective.MaxSlowdown && (!double.IsFinite(Factor) || Factor < 1))
            throw GpuOpsException.InvalidArgument("InvalidFactor", $"The slowdown factor must be at least 1 (got {Factor}).", Factor);
        if (Objective == PowerObjective.Cost && (!double.IsFinite(Eta) || Eta < 0 || Eta > 1))
            throw GpuOpsException.InvalidArgument("InvalidEta", $"η must be between 0 and 1 (got {Eta}).", Eta);
    }

    /// <summary>Limits from <paramref name="hi"/> down to <paramref name="lo"/> by <paramref name="step"/>, the minimum always included.</summary>
    internal static List<uint> Limits(uint lo, uint hi, uint step)
    {
        var list = new List<uint>();
        for (long v = hi; v >= lo; v -= step) list.Add((uint)v);
        if (list[^1] != lo) list.Add(lo);
        return list;
    }

    internal static PowerSweepPoint MakePoint(int gpu, string uuid, double limitW, int runs, double secondsPerRun, double throughput,
        double joulesPerRun, double avgPowerW, string method, double maxPowerW)
    {
        // Per unit of work: time = 1 / throughput; energy = average power × time.
        double timePerWork = throughput > 0 ? 1.0 / throughput : double.NaN;
        double energyPerWork = avgPowerW * timePerWork;
        return new PowerSweepPoint(gpu, uuid, limitW, runs, secondsPerRun, throughput, joulesPerRun, avgPowerW, energyPerWork, timePerWork,
            energyPerWork * timePerWork, double.NaN, method, false);
    }

    /// <summary>The point the objective prefers (ties: the higher limit); Cost is filled in for every point.</summary>
    public static PowerSweepPoint? Choose(List<PowerSweepPoint> points, PowerObjective objective, double factor = 1.1, double eta = 0.5, double? maxPowerWatts = null)
    {
        if (points.Count == 0) return null;
        double maxPower = maxPowerWatts ?? points.Max(p => p.PowerLimitWatts);
        for (int i = 0; i < points.Count; i++)
        {
            var p = points[i];
            points[i] = p with { Cost = eta * p.EnergyPerWork + (1 - eta) * maxPower * p.TimePerWork };
        }

        var valid = points.Where(p => double.IsFinite(p.EnergyPerWork) && double.IsFinite(p.TimePerWork)).ToList();
        if (valid.Count == 0) return null;
        IEnumerable<PowerSweepPoint> candidates = valid;
        Func<PowerSweepPoint, double> key = objective switch
        {
            PowerObjective.MinEnergy => p => p.EnergyPerWork,
            PowerObjective.MinEnergyDelay => p => p.EnergyDelayProduct,
            PowerObjective.Cost => p => p.Cost,
            _ => p => p.EnergyPerWork,
        };
        if (objective == PowerObjective.MaxSlowdown)
        {
            // As Zeus' MaxSlowdownConstraint: relative to the time at the highest limit swept.
            double baseline = valid.OrderByDescending(p => p.PowerLimitWatts).First().TimePerWork;
            candidates = valid.Where(p => p.TimePerWork <= factor * baseline * (1 + 1e-12));
        }

        return candidates.OrderBy(key).ThenByDescending(p => p.PowerLimitWatts).First();
    }
}
