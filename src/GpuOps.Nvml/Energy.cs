using GpuOps.Core.Hosting;
using GpuOps.Nvml.Native;

namespace GpuOps.Nvml;

/// <summary>
/// <c>Measure-GpuEnergy</c> / <c>gpuops energy -- command</c>: runs the workload inside an <see cref="EnergyWindow"/>
/// and emits one <see cref="EnergyReading"/> per GPU (also when the workload fails, before its error).
/// </summary>
public sealed class MeasureEnergyOperation : IOperation
{
    public int[]? Index { get; set; }
    public string[]? Uuid { get; set; }

    /// <summary>The work to measure (runs on the calling thread; it should observe the token).</summary>
    public Action<CancellationToken>? Workload { get; set; }

    /// <summary>Power sampling period (used for the peak, and for the energy where the GPU has no counter).</summary>
    public TimeSpan SampleInterval { get; set; } = TimeSpan.FromMilliseconds(20);

    public void Execute(IOperationHost host)
    {
        if (Workload is null) throw GpuOpsException.InvalidArgument("WorkloadRequired", "Give the work to measure: -ScriptBlock (gpuops: energy -- <command>).");
        if (SampleInterval < TimeSpan.FromMilliseconds(1))
            throw GpuOpsException.InvalidArgument("InvalidInterval", $"The sampling interval must be at least 1 ms (got {SampleInterval.TotalMilliseconds} ms).", SampleInterval);
        var devices = NvmlDevice.Select(Index, Uuid);
        if (devices.Count == 0) throw new GpuOpsException("NoGpu", ErrorCategory.ObjectNotFound, "NVML sees no GPUs: there is nothing to measure.", null);
        IReadOnlyList<EnergyReading> readings;
        Dictionary<string, (int GpuIndex, string Uuid, GpuOpsException Error, double LastGoodSeconds)> failed;
        using (var window = EnergyWindow.Start(devices, SampleInterval))
        {
            try
            {
                Workload(host.CancellationToken);
            }
            catch
            {
                foreach (var r in window.Stop()) host.WriteObject(r);
                throw;
            }

            readings = window.Stop();
            failed = window.Failed.ToDictionary(f => f.Uuid);
        }

        foreach (var r in readings)
        {
            if (failed.TryGetValue(r.Uuid, out var f))
            {
                // a part of the window is not a measurement of the work: an error for this GPU, not a reading
                host.WriteError(OperationError.From(new GpuOpsException(f.Error.ErrorId, f.Error.Category,
                    $"GPU {r.GpuIndex} ({r.Uuid}) failed {f.LastGoodSeconds:0.###} s into the window ({f.Error.Message.TrimEnd('.')}); its energy until then was {r.Joules:0.###} J, not a measurement of the whole work.",
                    r.GpuIndex, f.Error)));
                continue;
            }

            if (!double.IsFinite(r.Joules))
            {
                host.WriteError(OperationError.From(new GpuOpsException("NotSupported", ErrorCategory.NotImplemented,
                    $"GPU {r.GpuIndex} ({r.Uuid}) reports neither an energy counter nor its power draw: its energy cannot be measured.", r.GpuIndex)));
                continue;
            }

            if (r.Method == "sampled") host.WriteVerbose($"GPU {r.GpuIndex} has no energy counter: energy integrated from power sampled every {SampleInterval.TotalMilliseconds:0.#} ms.");
            host.WriteObject(r);
        }
    }
}
