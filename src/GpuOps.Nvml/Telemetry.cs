using System.Diagnostics;
using GpuOps.Core.Hosting;
using GpuOps.Core.Native;
using GpuOps.Nvml.Native;

namespace GpuOps.Nvml;

/// <summary>Clock event ("throttle") reasons: nvmlClocksEventReason* bits of nvml.h.</summary>
public static class ClockEventReasons
{
    private static readonly (ulong Bit, string Name)[] Bits =
    [
        (0x1, "GpuIdle"), (0x2, "ApplicationsClocksSetting"), (0x4, "SwPowerCap"), (0x8, "HwSlowdown"),
        (0x10, "SyncBoost"), (0x20, "SwThermalSlowdown"), (0x40, "HwThermalSlowdown"), (0x80, "HwPowerBrakeSlowdown"),
        (0x100, "DisplayClockSetting"),
    ];

    /// <summary>"SwPowerCap, HwSlowdown"; "None" for 0; unknown bits as hex.</summary>
    public static string Decode(ulong mask)
    {
        if (mask == 0) return "None";
        var names = new List<string>();
        ulong known = 0;
        foreach (var (bit, name) in Bits)
        {
            known |= bit;
            if ((mask & bit) != 0) names.Add(name);
        }

        if ((mask & ~known) != 0) names.Add($"0x{mask & ~known:X}");
        return string.Join(", ", names);
    }
}

/// <summary>Reads one full telemetry sample of a GPU (unsupported values are asked once, then skipped).</summary>
internal static class TelemetryReader
{
    public static GpuTelemetrySample Read(NvmlDevice d, DateTimeOffset timestamp, double elapsed, EnergyCounterPoller? energyPoller = null)
    {
        var (instant, average) = d.PowerFields();
        if (average is null && instant is null)
        {
            average = (double?)d.PowerUsageMilliwatts();
        }

        // One nvmlDeviceGetTotalEnergyConsumption costs about 3.5 ms on an H200 (driver 580; every other value read
        // here costs 1-6 us), so streams take the counter from a poller thread that refreshes it once a second
        // (0.35% of a core; Measure-GpuEnergy reads the counter exactly at the start and end of its window).
        double? energy = energyPoller is not null ? energyPoller.Millijoules(d) : d.EnergyMillijoules();
        var util = d.Utilization();
        var mem = d.Memory();
        var reasons = d.ClockEventReasons();
        return new GpuTelemetrySample(
            timestamp,
            elapsed,
            d.Index,
            d.Uuid,
            instant / 1000.0,
            average / 1000.0,
            energy / 1000.0,
            (int?)d.TemperatureC(),
            (int?)util?.Gpu,
            (int?)util?.Memory,
            (long?)mem?.Used,
            (int?)d.ClockMHz(1),
            (int?)d.ClockMHz(2),
            reasons is null ? "Unknown" : ClockEventReasons.Decode(reasons.Value),
            (long?)reasons);
    }
}

/// <summary>
/// Reads the GPUs' energy counters on a background thread every <see cref="Period"/> and keeps the latest
/// reading: the counter query is far slower than every other telemetry value (about 3.5 ms on an H200 with
/// driver 580), so a 100 Hz stream that read it per sample would spend a third of a core in the driver.
/// </summary>
internal sealed class EnergyCounterPoller : IDisposable
{
    public static readonly TimeSpan DefaultPeriod = TimeSpan.FromSeconds(1);

    private readonly NvmlDevice[] _devices;
    private readonly double?[] _millijoules;
    private readonly object _gate = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _thread;

    public EnergyCounterPoller(IReadOnlyList<NvmlDevice> devices, TimeSpan? period = null)
    {
        _devices = devices.ToArray();
        _millijoules = new double?[_devices.Length];
        Period = period ?? DefaultPeriod;
        ReadAll(); // the first samples get a real reading
        _thread = new Thread(() =>
        {
            while (!_stop.Token.WaitHandle.WaitOne(Period)) ReadAll();
        })
        {
            IsBackground = true,
            Name = "GpuOps energy counter",
        };
        _thread.Start();
    }

    public TimeSpan Period { get; }

    /// <summary>The latest counter reading of <paramref name="device"/> (mJ), or null (unsupported, or the GPU was lost).</summary>
    public double? Millijoules(NvmlDevice device)
    {
        int i = Array.IndexOf(_devices, device);
        if (i < 0) return null;
        lock (_gate) return _millijoules[i];
    }

    public void Dispose()
    {
        _stop.Cancel();
        _thread.Join();
        _stop.Dispose();
    }

    private void ReadAll()
    {
        for (int i = 0; i < _devices.Length; i++)
        {
            double? v;
            try
            {
                v = _devices[i].EnergyMillijoules();
            }
            catch (NvmlException)
            {
                v = null; // the sampling thread reports a lost GPU; here it just has no reading
            }

            lock (_gate) _millijoules[i] = v;
        }
    }
}

/// <summary>
/// <c>Get-GpuTelemetry</c> / <c>gpuops telemetry</c>: one sample per GPU, or a stream with Interval/Count/Duration
/// (until cancelled). The schedule is absolute (tick k is due at start + k·Interval on a Stopwatch), so lateness
/// never accumulates into drift; a tick that is more than one interval late is counted as missed, not bunched.
/// </summary>
public sealed class GetTelemetryOperation : IOperation
{
    public int[]? Index { get; set; }
    public string[]? Uuid { get; set; }

    /// <summary>Time between samples; a stream when set (or when Count/Duration is set: 1 s by default).</summary>
    public TimeSpan? Interval { get; set; }

    /// <summary>Number of samples per GPU.</summary>
    public int? Count { get; set; }

    /// <summary>How long to sample.</summary>
    public TimeSpan? Duration { get; set; }

    /// <summary>
    /// Emit one <see cref="TelemetryStreamStatistics"/> (sample cost, CPU use, jitter) instead of the samples
    /// (alone: 100 samples at 100 Hz).
    /// </summary>
    public bool Statistics { get; set; }

    public static readonly TimeSpan MinimumInterval = TimeSpan.FromMilliseconds(1);

    public void Execute(IOperationHost host)
    {
        Validate();
        bool missing = false;
        var devices = NvmlDevice.Select(Index, Uuid, e => { missing = true; host.WriteError(OperationError.From(e)); }).ToList();
        if (devices.Count == 0 && missing) return;   // (every GPU asked for is missing: said above)
        if (devices.Count == 0) throw new GpuOpsException("NoGpu", ErrorCategory.ObjectNotFound, "NVML sees no GPUs.", null);
        bool stream = Interval is not null || Count is not null || Duration is not null;
        if (!stream && !Statistics)
        {
            var now = DateTimeOffset.UtcNow;
            foreach (var d in devices) host.WriteObject(TelemetryReader.Read(d, now, 0));
            return;
        }

        // -Statistics alone measures 100 samples at 100 Hz.
        var interval = Interval ?? (Statistics ? TimeSpan.FromMilliseconds(10) : TimeSpan.FromSeconds(1));
        long maxTicks = Count ?? long.MaxValue;
        if (Statistics && Count is null && Duration is null) maxTicks = 100;
        host.WriteVerbose($"Sampling GPU(s) {string.Join(", ", devices.Select(d => d.Index))} every {interval.TotalMilliseconds:0.###} ms" +
            (maxTicks != long.MaxValue ? $", {maxTicks} time(s)" : "") + (Duration is { } dur ? $", for {dur}" : "") +
            (maxTicks == long.MaxValue && Duration is null ? ", until stopped (Ctrl+C)" : "") + ".");
        Stream(host, devices, interval, maxTicks, Duration);
    }

    private void Validate()
    {
        if (Interval is { } i && i <= TimeSpan.Zero)
            throw GpuOpsException.InvalidArgument("InvalidInterval", $"The interval must be positive (got {i.TotalSeconds} s).", i);
        if (Interval is { } j && j < MinimumInterval)
            throw GpuOpsException.InvalidArgument("InvalidInterval", $"The interval must be at least 1 ms (got {j.TotalMilliseconds} ms): GpuOps samples at up to 1000 Hz.", j);
        if (Count is { } c && c < 1)
            throw GpuOpsException.InvalidArgument("InvalidCount", $"The count must be at least 1 (got {c}).", c);
        if (Duration is { } d && d <= TimeSpan.Zero)
            throw GpuOpsException.InvalidArgument("InvalidDuration", $"The duration must be positive (got {d.TotalSeconds} s).", d);
    }

    private void Stream(IOperationHost host, List<NvmlDevice> devices, TimeSpan interval, long maxTicks, TimeSpan? duration)
    {
        var token = host.CancellationToken;
        long intervalTicks = Math.Max(1, (long)(interval.TotalSeconds * Stopwatch.Frequency));
        long durationTicks = duration is { } du ? (long)(du.TotalSeconds * Stopwatch.Frequency) : long.MaxValue;
        var costs = Statistics ? new List<double>() : null;
        var jitters = Statistics ? new List<double>() : null;
        long samples = 0, missed = 0, tick = 0, ticksDone = 0;
        double lastLatenessMs = 0;
        if (Statistics)
        {
            // Warm up (JIT, unsupported-value probing) so the figures describe the steady state.
            foreach (var d in devices) TelemetryReader.Read(d, DateTimeOffset.UtcNow, 0);
        }

        using var energyPoller = new EnergyCounterPoller(devices);
        var proc = Process.GetCurrentProcess();
        var cpuStart = proc.TotalProcessorTime;
        var wallStart = DateTimeOffset.UtcNow;
        var sw = Stopwatch.StartNew();
        bool cancelled = false;
        try
        {
            while (ticksDone < maxTicks)
            {
                long due = tick * intervalTicks;
                if (due >= durationTicks && ticksDone > 0) break;
                if (!WaitUntil(sw, due, token))
                {
                    cancelled = true;
                    break;
                }

                long now = sw.ElapsedTicks;
                long late = now - due;
                if (late >= intervalTicks)
                {
                    // More than one interval late (a GC pause, a slow call): skip the ticks that are gone.
                    long skip = late / intervalTicks;
                    missed += skip;
                    tick += skip;
                    due = tick * intervalTicks;
                    late = now - due;
                }

                lastLatenessMs = late * 1000.0 / Stopwatch.Frequency;
                jitters?.Add(lastLatenessMs);
                var ts = wallStart + TimeSpan.FromSeconds((double)now / Stopwatch.Frequency);
                double elapsed = (double)now / Stopwatch.Frequency;
                long c0 = Stopwatch.GetTimestamp();
                var batch = new List<GpuTelemetrySample>(devices.Count);
                for (int i = 0; i < devices.Count; i++)
                {
                    try
                    {
                        batch.Add(TelemetryReader.Read(devices[i], ts, elapsed, energyPoller));
                    }
                    catch (NvmlException ex) when (ex.Code == NvmlReturn.GpuIsLost)
                    {
                        host.WriteError(OperationError.From(ex));
                        devices.RemoveAt(i--);
                        if (devices.Count == 0) throw;
                    }
                }

                costs?.Add((Stopwatch.GetTimestamp() - c0) * 1000.0 / Stopwatch.Frequency);
                samples += batch.Count;
                if (!Statistics)
                {
                    foreach (var s in batch) host.WriteObject(s);
                }

                tick++;
                ticksDone++;
            }
        }
        finally
        {
            sw.Stop();
        }

        if (Statistics)
        {
            double wall = sw.Elapsed.TotalSeconds;
            proc.Refresh();
            double cpu = (proc.TotalProcessorTime - cpuStart).TotalSeconds;
            host.WriteObject(new TelemetryStreamStatistics(
                devices.Count,
                interval.TotalMilliseconds,
                1.0 / interval.TotalSeconds,
                ticksDone,
                samples,
                missed,
                wall,
                wall > 0 ? ticksDone / wall : 0,
                Mean(costs!), Percentile(costs!, 0.5), Percentile(costs!, 0.99), costs!.DefaultIfEmpty(0).Max(),
                Mean(jitters!), Percentile(jitters!, 0.5), Percentile(jitters!, 0.99), jitters!.DefaultIfEmpty(0).Max(),
                lastLatenessMs,
                wall > 0 ? 100.0 * cpu / wall : 0,
                NativeLibraries.LoadedPath(NativeLibraryKind.Nvml) ?? string.Empty));
        }

        if (cancelled) token.ThrowIfCancellationRequested();
    }

    /// <summary>
    /// Sleep until the Stopwatch reaches <paramref name="dueTicks"/>. Sleeps are rounded up to whole
    /// milliseconds (no spinning: a 100 Hz stream must cost next to no CPU), so a tick runs 0–1 ms late and
    /// lateness never adds up. False when cancelled.
    /// </summary>
    internal static bool WaitUntil(Stopwatch sw, long dueTicks, CancellationToken token)
    {
        while (true)
        {
            if (token.IsCancellationRequested) return false;
            long remaining = dueTicks - sw.ElapsedTicks;
            if (remaining <= 0) return true;
            int ms = (int)Math.Ceiling(remaining * 1000.0 / Stopwatch.Frequency);
            if (token.WaitHandle.WaitOne(Math.Max(1, ms))) return false;
        }
    }

    internal static double Mean(List<double> v) => v.Count == 0 ? 0 : v.Average();

    internal static double Percentile(List<double> v, double p)
    {
        if (v.Count == 0) return 0;
        var sorted = v.OrderBy(x => x).ToArray();
        int idx = (int)Math.Ceiling(p * sorted.Length) - 1;
        return sorted[Math.Clamp(idx, 0, sorted.Length - 1)];
    }
}
