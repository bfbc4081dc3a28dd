using System.Diagnostics;
using GpuOps.Core.Hosting;
using GpuOps.Core.Native;
using GpuOps.Nvml.Native;

namespace GpuOps.Nvml;

/// <summary>
/// Energy used by GPUs between <see cref="TryStart"/> and <see cref="Stop"/>. Where the GPU has an energy counter
/// (nvmlDeviceGetTotalEnergyConsumption, Volta and newer) the energy is the sum of counter deltas ("counter"); a
/// counter that goes backwards (driver reload, reset) contributes its new value, not a negative delta. Where it has
/// none, power is sampled and integrated with the trapezoid rule ("sampled"). A background sampler (50 Hz by
/// default) reads power for the peak in both modes and reads the counter often enough to see resets.
/// Other areas (benchmarks, inference) wrap their work in a window to attach energy to their results:
/// <code>using var w = EnergyWindow.TryStart(); ...; var readings = w?.Stop();</code>
/// </summary>
public sealed class EnergyWindow : IDisposable
{
    private readonly List<GpuState> _gpus;
    private readonly TimeSpan _interval;
    private readonly Stopwatch _clock = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly object _lock = new();
    private Thread? _thread;
    private IReadOnlyList<EnergyReading>? _result;

    private EnergyWindow(IEnumerable<NvmlDevice> devices, TimeSpan interval)
    {
        _interval = interval;
        _gpus = devices.Select(d => new GpuState(d)).ToList();
    }

    /// <summary>The sampler's period (default 20 ms: 50 Hz).</summary>
    public TimeSpan SampleInterval => _interval;

    /// <summary>Start a window over the given GPUs (null: all). Null when NVML is unavailable (no driver, no GPU).</summary>
    public static EnergyWindow? TryStart(IReadOnlyList<int>? gpuIndices = null)
    {
        if (!NativeLibraries.IsAvailable(NativeLibraryKind.Nvml)) return null;
        try
        {
            NvmlApi.Get();
        }
        catch (GpuOpsException)
        {
            return null;
        }

        return Start(gpuIndices, TimeSpan.FromMilliseconds(20));
    }

    /// <summary>Start a window over the GPU with this UUID (as CUDA reports it); null where NVML or the GPU is not there.</summary>
    public static EnergyWindow? TryStartByUuid(string uuid, TimeSpan? sampleInterval = null)
    {
        if (!NativeLibraries.IsAvailable(NativeLibraryKind.Nvml)) return null;
        try
        {
            return Start([NvmlDevice.ByUuid(uuid)], sampleInterval ?? TimeSpan.FromMilliseconds(20));
        }
        catch (GpuOpsException)
        {
            return null;
        }
    }

    /// <summary>Start a window; throws (naming the library) when NVML is missing, or GpuNotFound for a bad index.</summary>
    public static EnergyWindow Start(IReadOnlyList<int>? gpuIndices, TimeSpan sampleInterval)
    {
        if (sampleInterval <= TimeSpan.Zero) throw GpuOpsException.InvalidArgument("InvalidInterval", "The energy sampling interval must be positive.", sampleInterval);
        return Start(NvmlDevice.Select(gpuIndices, null), sampleInterval);
    }

    internal static EnergyWindow Start(IEnumerable<NvmlDevice> devices, TimeSpan sampleInterval)
    {
        var w = new EnergyWindow(devices, sampleInterval);
        w._clock.Start();
        foreach (var g in w._gpus) g.Sample(w._clock, first: true);
        w._thread = new Thread(w.Run) { IsBackground = true, Name = "GpuOps energy sampler", Priority = ThreadPriority.AboveNormal };
        w._thread.Start();
        return w;
    }

    /// <summary>Stop sampling and return one reading per GPU (the same list on later calls).</summary>
    public IReadOnlyList<EnergyReading> Stop()
    {
        lock (_lock)
        {
            if (_result is not null) return _result;
            _stop.Cancel();
            _thread?.Join();
            foreach (var g in _gpus) g.Sample(_clock, first: false);
            _clock.Stop();
            _result = _gpus.Select(g => g.Reading()).ToList();
            return _result;
        }
    }

    /// <summary>
    /// The GPUs that failed during the window (lost, or NVML refused a read), each with the error and the seconds
    /// into the window of its last good reading: their readings cover only the time before.
    /// </summary>
    public IReadOnlyList<(int GpuIndex, string Uuid, GpuOpsException Error, double LastGoodSeconds)> Failed
    {
        get
        {
            Stop();
            return _gpus.Where(g => g.Failure is not null).Select(g => (g.Index, g.Uuid, g.Failure!, g.LastGoodSeconds)).ToList();
        }
    }

    public void Dispose()
    {
        Stop();
        _stop.Dispose();
    }

    private void Run()
    {
        long intervalTicks = Math.Max(1, (long)(_interval.TotalSeconds * Stopwatch.Frequency));
        long tick = 1;
        var token = _stop.Token;
        while (true)
        {
            long due = tick * intervalTicks;
            if (!GetTelemetryOperation.WaitUntil(_clock, due, token)) return;
            long now = _clock.ElapsedTicks;
            if (now - due >= intervalTicks) tick += (now - due) / intervalTicks;
            foreach (var g in _gpus) g.Sample(_clock, first: false);
            tick++;
        }
    }

    private sealed class GpuState
    {
        private readonly NvmlDevice _device;
        private readonly object _gate = new();
        private bool _counter;
        private ulong _lastCounter;
        private double _counterMj;
        private double _sampledJ;
        private double _lastPowerW = double.NaN;
        private double _lastT;
        private double _peakW = double.NaN;
        private double _firstCounterT = double.NaN;
        private double _lastCounterT = double.NaN;
        private double _firstPowerT = double.NaN;
        private bool _lost;
        private double _lastGoodT;

        public GpuState(NvmlDevice device)
        {
            _device = device;
            Uuid = device.Uuid;
            Index = device.Index;
        }

        public string Uuid { get; }

        public int Index { get; }

        /// <summary>Why sampling stopped before the window ended (null: it did not).</summary>
        public GpuOpsException? Failure { get; private set; }

        public double LastGoodSeconds => _lastGoodT;

        /// <summary>
        /// Read the counter and the power. Each value is stamped with the midpoint of the clock readings taken just
        /// before and after its call, so the time a reading covers is the time between its reads (a preempted thread
        /// does not skew the average power).
        /// </summary>
        public void Sample(Stopwatch clock, bool first)
        {
            lock (_gate)
            {
                if (_lost) return;
                try
                {
                    long b = clock.ElapsedTicks;
                    var e = _device.EnergyMillijoules();
                    double te = (b + clock.ElapsedTicks) / 2.0 / Stopwatch.Frequency;
                    if (first)
                    {
                        _counter = e is not null;
                        _lastCounter = e ?? 0;
                        _firstCounterT = _lastCounterT = te;
                    }
                    else if (_counter && e is { } c)
                    {
                        // A counter that went backwards was reset: count what it accumulated since.
                        _counterMj += c >= _lastCounter ? c - _lastCounter : c;
                        _lastCounter = c;
                        _lastCounterT = te;
                    }

                    b = clock.ElapsedTicks;
                    var (instant, average) = _device.PowerFields();
                    double? mw = instant ?? average ?? (double?)_device.PowerUsageMilliwatts();
                    double t = (b + clock.ElapsedTicks) / 2.0 / Stopwatch.Frequency;
                    if (mw is { } p)
                    {
                        double w = p / 1000.0;
                        if (double.IsNaN(_firstPowerT)) _firstPowerT = t;
                        if (!double.IsNaN(_lastPowerW) && t > _lastT) _sampledJ += 0.5 * (w + _lastPowerW) * (t - _lastT);
                        _lastPowerW = w;
                        _lastT = t;
                        _peakW = double.IsNaN(_peakW) ? w : Math.Max(_peakW, w);
                    }

                    _lastGoodT = t;
                }
                catch (GpuOpsException ex)
                {
                    // The GPU is lost (or NVML failed): keep what was measured until now, and say so (Failed).
                    _lost = true;
                    Failure = ex;
                }
            }
        }

        public EnergyReading Reading()
        {
            lock (_gate)
            {
                double seconds = _counter ? _lastCounterT - _firstCounterT : _lastT - _firstPowerT;
                if (double.IsNaN(seconds)) seconds = 0;
                double joules = _counter ? _counterMj / 1000.0 : (double.IsNaN(_lastPowerW) ? double.NaN : _sampledJ);
                double avg = seconds > 0 ? joules / seconds : double.NaN;
                return new EnergyReading(_device.Index, Uuid, joules, seconds, avg, double.IsNaN(_peakW) ? avg : _peakW, _counter ? "counter" : "sampled");
            }
        }
    }
}
