using GpuOps.Core.Hosting;
using GpuOps.Nvml.Native;

namespace GpuOps.Nvml;

/// <summary><c>Get-Gpu</c> / <c>gpuops gpu list</c>: one <see cref="GpuInfo"/> per GPU.</summary>
public sealed class GetGpuOperation : IOperation
{
    public int[]? Index { get; set; }
    public string[]? Uuid { get; set; }

    public void Execute(IOperationHost host)
    {
        var devices = NvmlDevice.Select(Index, Uuid, e => host.WriteError(OperationError.From(e)));   // (a GPU that is not there: an error, the others listed)
        NvmlDevice.WarnIfNone(host, devices, Index, Uuid);
        string? driver = NvmlDevice.DriverVersion();
        string? cuda = NvmlDevice.CudaDriverVersion();
        host.WriteVerbose($"NVML {GpuOps.Core.Native.NativeLibraries.LoadedPath(GpuOps.Core.Native.NativeLibraryKind.Nvml)}: driver {driver ?? "unknown"}, CUDA {cuda ?? "unknown"}; {devices.Count} GPU(s) selected.");
        foreach (var d in devices)
        {
            host.CancellationToken.ThrowIfCancellationRequested();
            try
            {
                host.WriteObject(Read(d, driver, cuda));
            }
            catch (NvmlException ex)
            {
                host.WriteError(OperationError.From(ex));
            }
        }
    }

    internal static GpuInfo Read(NvmlDevice d, string? driver, string? cuda)
    {
        var mem = d.Memory();
        var constraints = d.PowerLimitConstraintsMilliwatts();
        return new GpuInfo(
            d.Index,
            d.Name,
            d.Uuid,
            d.PciBusId(),
            driver,
            cuda,
            d.ComputeCapability(),
            (long?)mem?.Total,
            (long?)mem?.Used,
            (long?)mem?.Free,
            Watts(d.PowerLimitMilliwatts()),
            Watts(d.DefaultPowerLimitMilliwatts()),
            Watts(constraints?.Min),
            Watts(constraints?.Max),
            Watts(d.EnforcedPowerLimitMilliwatts()),
            (int?)d.ClockMHz(1),
            (int?)d.MaxClockMHz(1),
            (int?)d.ClockMHz(2),
            (int?)d.MaxClockMHz(2),
            (int?)d.TemperatureC(),
            d.PersistenceMode(),
            d.MigMode(),
            d.EccEnabled());
    }

    internal static double? Watts(uint? milliwatts) => milliwatts / 1000.0;
}

/// <summary><c>Get-GpuProcess</c> / <c>gpuops gpu processes</c>: the processes using each GPU and their memory.</summary>
public sealed class GetGpuProcessOperation : IOperation
{
    public int[]? Index { get; set; }
    public string[]? Uuid { get; set; }

    public void Execute(IOperationHost host)
    {
        var devices = NvmlDevice.Select(Index, Uuid, e => host.WriteError(OperationError.From(e)));
        NvmlDevice.WarnIfNone(host, devices, Index, Uuid);
        foreach (var d in devices)
        {
            host.CancellationToken.ThrowIfCancellationRequested();
            try
            {
                foreach (var p in d.Processes())
                {
                    host.WriteObject(new GpuProcessInfo(d.Index, d.Uuid, (int)p.Pid, ProcessName((int)p.Pid), (long?)p.UsedBytes, p.Type,
                        (int?)p.GpuInstanceId, (int?)p.ComputeInstanceId));
                }
            }
            catch (NvmlException ex)
            {
                host.WriteError(OperationError.From(ex));
            }
        }
    }

    internal static string? ProcessName(int pid)
    {
        try
        {
            using var p = System.Diagnostics.Process.GetProcessById(pid);
            return p.ProcessName;
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            // Gone, or in another PID namespace (containers): NVML reports host PIDs.
            return null;
        }
    }
}
