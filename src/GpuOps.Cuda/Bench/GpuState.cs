using System.Runtime.InteropServices;
using GpuOps.Core.Native;

namespace GpuOps.Cuda.Bench;

/// <summary>Clocks, temperature, power limit and driver version of one GPU at a moment (NVML; nulls without it).</summary>
public sealed record GpuStateSnapshot(int? SmClockMHz, int? MemoryClockMHz, int? TemperatureC, double? PowerLimitWatts, string? DriverVersion);

/// <summary>
/// Reads a few NVML values through exported functions (no dependence on the NVML bindings' types), by GPU UUID so
/// the CUDA ordinal and the NVML index need not agree. Reads only: never changes a setting.
/// </summary>
public static unsafe class GpuState
{
    private static readonly Lazy<bool> Initialized = new(() =>
    {
        if (!NativeLibraries.TryGetExport(NativeLibraryKind.Nvml, "nvmlInit_v2", out var init)) return false;
        return ((delegate* unmanaged<int>)init)() == 0;
    });

    public static GpuStateSnapshot Read(string? uuid)
    {
        if (uuid is null || !Initialized.Value) return new(null, null, null, null, NativeProbe.NvmlDriverVersion());
        try
        {
            if (!NativeLibraries.TryGetExport(NativeLibraryKind.Nvml, "nvmlDeviceGetHandleByUUID", out var byUuid)) return new(null, null, null, null, null);
            IntPtr dev;
            var u = System.Text.Encoding.ASCII.GetBytes(uuid + "\0");
            fixed (byte* up = u)
                if (((delegate* unmanaged<byte*, IntPtr*, int>)byUuid)(up, &dev) != 0) return new(null, null, null, null, null);
            static int? Clock(IntPtr dev, int type)
            {
                if (!NativeLibraries.TryGetExport(NativeLibraryKind.Nvml, "nvmlDeviceGetClockInfo", out var f)) return null;
                uint v;
                return ((delegate* unmanaged<IntPtr, int, uint*, int>)f)(dev, type, &v) == 0 ? (int)v : null;
            }

            int? temp = null;
            if (NativeLibraries.TryGetExport(NativeLibraryKind.Nvml, "nvmlDeviceGetTemperature", out var tf))
            {
                uint t;
                if (((delegate* unmanaged<IntPtr, int, uint*, int>)tf)(dev, 0, &t) == 0) temp = (int)t;
            }

            double? limit = null;
            if (NativeLibraries.TryGetExport(NativeLibraryKind.Nvml, "nvmlDeviceGetPowerManagementLimit", out var pf))
            {
                uint mw;
                if (((delegate* unmanaged<IntPtr, uint*, int>)pf)(dev, &mw) == 0) limit = mw / 1000.0;
            }

            string? driver = null;
            if (NativeLibraries.TryGetExport(NativeLibraryKind.Nvml, "nvmlSystemGetDriverVersion", out var df))
            {
                byte* buf = stackalloc byte[96];
                if (((delegate* unmanaged<byte*, uint, int>)df)(buf, 96) == 0) driver = Marshal.PtrToStringUTF8((IntPtr)buf);
            }

            return new(Clock(dev, 1), Clock(dev, 2), temp, limit, driver); // NVML_CLOCK_SM = 1, NVML_CLOCK_MEM = 2
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            return new(null, null, null, null, null);
        }
    }
}

/// <summary>Energy over one timed window (all nulls when no NVML energy window is available).</summary>
public sealed record EnergySample(double? Joules, double? Seconds, double? AveragePowerWatts, string? Method);

/// <summary>
/// THE one place where a benchmark opens an energy-measurement window: <see cref="Start"/> before the timed runs,
/// <see cref="Stop"/> after them, through the NVML energy window (<see cref="GpuOps.Nvml.EnergyWindow"/>; the reading
/// of this GPU is found by UUID, so CUDA ordinals and NVML indices need not agree). Without NVML, or when the window is
/// too short for the energy counter to resolve, the sample is empty and results carry null energy.
/// </summary>
public sealed class BenchmarkEnergyWindow
{
    /// <summary>Windows shorter than this are not reported (the energy counter updates too coarsely).</summary>
    public static readonly TimeSpan MinimumWindow = TimeSpan.FromMilliseconds(100);

    private readonly string? _uuid;
    private readonly GpuOps.Nvml.EnergyWindow? _window;

    private BenchmarkEnergyWindow(string? uuid, GpuOps.Nvml.EnergyWindow? window)
    {
        _uuid = uuid;
        _window = window;
    }

    public static BenchmarkEnergyWindow Start(int gpuIndex, string? uuid = null)
    {
        GpuOps.Nvml.EnergyWindow? w = null;
        try
        {
            w = GpuOps.Nvml.EnergyWindow.TryStart(uuid is null ? [gpuIndex] : null);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // energy is optional: a benchmark never fails for want of it
        }

        return new BenchmarkEnergyWindow(uuid, w);
    }

    /// <summary>True when an NVML window is open (energy can be measured on this machine).</summary>
    public bool IsMeasuring => _window is not null;

    public EnergySample Stop()
    {
        if (_window is null) return new(null, null, null, null);
        try
        {
            var readings = _window.Stop();
            var r = _uuid is null ? readings.FirstOrDefault() : readings.FirstOrDefault(x => string.Equals(x.Uuid, _uuid, StringComparison.OrdinalIgnoreCase));
            if (r is null) return new(null, null, null, null);
            if (r.Seconds < MinimumWindow.TotalSeconds)
                return new(null, r.Seconds, null, $"{r.Method}: window {r.Seconds * 1000:0} ms, too short to measure");
            return new(r.Joules, r.Seconds, r.AveragePowerWatts, r.Method);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            return new(null, null, null, "energy window failed: " + ex.Message);
        }
        finally
        {
            _window.Dispose();
        }
    }
}
