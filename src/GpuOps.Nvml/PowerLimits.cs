using GpuOps.Core.Hosting;
using GpuOps.Nvml.Native;

namespace GpuOps.Nvml;

internal static class PowerLimitReader
{
    public static GpuPowerLimit Read(NvmlDevice d)
    {
        var c = d.PowerLimitConstraintsMilliwatts();
        var current = d.PowerLimitMilliwatts() ?? throw new GpuOpsException("NotSupported", ErrorCategory.NotImplemented,
            $"GPU {d.Index} ({d.Name}) does not report a power limit (power management is not supported on it).", d.Index);
        var journal = PowerLimitJournal.Read(d.Uuid);
        return new GpuPowerLimit(d.Index, d.Uuid, d.Name, current / 1000.0, GetGpuOperation.Watts(d.DefaultPowerLimitMilliwatts()),
            GetGpuOperation.Watts(c?.Min), GetGpuOperation.Watts(c?.Max), GetGpuOperation.Watts(d.EnforcedPowerLimitMilliwatts()),
            journal is null ? null : journal.OriginalMilliwatts / 1000.0, d.PersistenceMode());
    }

    public static string Target(NvmlDevice d) => $"GPU {d.Index} ({d.Name}, {d.Uuid})";

    public static string W(double milliwatts) => $"{milliwatts / 1000.0:0.###} W";

    /// <summary>Journal the limit in force now (unless journaled already) before the first change.</summary>
    public static (PowerLimitJournalEntry Entry, bool Created) Journal(NvmlDevice d, uint current, string reason, bool replace = false) =>
        PowerLimitJournal.EnsureOriginal(new PowerLimitJournalEntry(d.Uuid, d.Index, d.Name, current, d.DefaultPowerLimitMilliwatts(),
            DateTimeOffset.UtcNow, Environment.ProcessId, Environment.MachineName, reason), replace);

    /// <summary>The constraints, or a clear error when the GPU has no power management.</summary>
    public static (uint Min, uint Max) Constraints(NvmlDevice d) =>
        d.PowerLimitConstraintsMilliwatts() ?? throw new GpuOpsException("NotSupported", ErrorCategory.NotImplemented,
            $"GPU {d.Index} ({d.Name}) does not support power limits.", d.Index);
}

/// <summary><c>Get-GpuPowerLimit</c> / <c>gpuops power get</c>.</summary>
public sealed class GetPowerLimitOperation : IOperation
{
    public int[]? Index { get; set; }
    public string[]? Uuid { get; set; }

    public void Execute(IOperationHost host)
    {
        var devices = NvmlDevice.Select(Index, Uuid, e => host.WriteError(OperationError.From(e)));
        NvmlDevice.WarnIfNone(host, devices, Index, Uuid);
        foreach (var d in devices)
        {
            try
            {
                host.WriteObject(PowerLimitReader.Read(d));
            }
            catch (GpuOpsException ex)   // (NVML errors and a GPU without power management: an error for that GPU, the others still listed)
            {
                host.WriteError(OperationError.From(ex));
            }
        }
    }
}

/// <summary>
/// <c>Set-GpuPowerLimit</c> / <c>gpuops power set</c>: -Watts N or -Percent N (of the default limit). Values outside
/// the GPU's constraints are refused with the allowed range. Before the first change the limit in force is journaled
/// (per GPU UUID) so Restore-GpuPowerLimit can put back the original, in this or a later process.
/// </summary>
public sealed class SetPowerLimitOperation : IOperation
{
    /// <summary>Highest value accepted at all, whatever a GPU reports (no GPU board draws 5 kW).</summary>
    public const double AbsurdWatts = 5000;

    public int[]? Index { get; set; }
    public string[]? Uuid { get; set; }
    public double? Watts { get; set; }
    public double? Percent { get; set; }

    /// <summary>Record the limit in force now as the original even when the journal already holds one (re-baseline).</summary>
    public bool ResetJournal { get; set; }

    public bool PassThru { get; set; }

    public void Execute(IOperationHost host)
    {
        Validate(Watts, Percent);
        var devices = NvmlDevice.Select(Index, Uuid);
        // Check every GPU before changing any.
        var plan = new List<(NvmlDevice Device, uint Current, uint Target)>();
        foreach (var d in devices)
        {
            var (min, max) = PowerLimitReader.Constraints(d);
            // (a limit that cannot be read cannot be journaled, so it could never be put back: refuse before changing anything)
            uint current = d.PowerLimitMilliwatts() ?? throw new GpuOpsException("NotSupported", ErrorCategory.NotImplemented,
                $"GPU {d.Index} ({d.Name}) does not report its current power limit, so GpuOps cannot journal it to put it back later: nothing was changed.",
                d.Index, null, "Set it with nvidia-smi -pl if you must; GpuOps changes only limits it can restore.");
            double targetMw;
            if (Watts is { } w)
            {
                targetMw = w * 1000.0;
            }
            else
            {
                var def = d.DefaultPowerLimitMilliwatts() ?? throw new GpuOpsException("NotSupported", ErrorCategory.NotImplemented,
                    $"GPU {d.Index} does not report its default power limit: use -Watts.", d.Index);
                targetMw = Percent!.Value / 100.0 * def;
            }

            uint target = (uint)Math.Round(targetMw);
            if (target < min || target > max)
            {
                throw new GpuOpsException("PowerLimitOutOfRange", ErrorCategory.InvalidArgument,
                    $"GPU {d.Index} ({d.Name}): {PowerLimitReader.W(targetMw)} is outside the allowed range {PowerLimitReader.W(min)} to {PowerLimitReader.W(max)}.",
                    d.Index, null, $"Choose a limit between {min / 1000.0:0.###} and {max / 1000.0:0.###} W.");
            }

            plan.Add((d, current, target));
        }

        foreach (var (d, current, target) in plan)
        {
            host.CancellationToken.ThrowIfCancellationRequested();
            if (!host.ShouldProcess(PowerLimitReader.Target(d), $"Set the power limit from {PowerLimitReader.W(current)} to {PowerLimitReader.W(target)}", ConfirmImpact.High))
            {
                continue;
            }

            var previous = PowerLimitJournal.Read(d.Uuid);
            var (entry, created) = PowerLimitReader.Journal(d, current, "Set-GpuPowerLimit", ResetJournal);
            host.WriteVerbose(created
                ? $"GPU {d.Index}: journaled the original limit {PowerLimitReader.W(entry.OriginalMilliwatts)} in {PowerLimitJournal.PathFor(d.Uuid)}."
                : $"GPU {d.Index}: the journal already holds the original limit {PowerLimitReader.W(entry.OriginalMilliwatts)}.");
            try
            {
                d.SetPowerLimitMilliwatts(target);
            }
            catch (GpuOpsException ex)
            {
                // The limit did not change: take back this call's journal entry, report this GPU, go on with the next.
                if (created)
                {
                    if (previous is null) PowerLimitJournal.Delete(d.Uuid);
                    else PowerLimitJournal.Write(previous);
                }

                host.WriteError(OperationError.From(ex));
                continue;
            }

            if (d.PersistenceMode() == false)
            {
                host.WriteWarning($"GPU {d.Index}: persistence mode is off, so the driver may reset the limit when no process uses the GPU (nvidia-smi -pm 1 keeps it).");
            }

            if (PassThru) host.WriteObject(PowerLimitReader.Read(d));
        }
    }

    internal static void Validate(double? watts, double? percent)
    {
        if (watts is null == percent is null)
            throw GpuOpsException.InvalidArgument("PowerLimitValueRequired", "Give exactly one of -Watts or -Percent (gpuops: --watts or --percent).");
        if (watts is { } w && (!double.IsFinite(w) || w <= 0 || w > AbsurdWatts))
            throw GpuOpsException.InvalidArgument("InvalidPowerLimit", $"{w} W is not a possible GPU power limit: give a positive number of watts up to {AbsurdWatts}.", w);
        if (percent is { } p && (!double.IsFinite(p) || p <= 0 || p > 200))
            throw GpuOpsException.InvalidArgument("InvalidPowerLimit", $"{p}% is not a possible power limit: give a percentage of the default limit between 1 and 200.", p);
    }
}

/// <summary>
/// <c>Restore-GpuPowerLimit</c> / <c>gpuops power restore</c>: puts back the original limit recorded in the journal
/// (then removes the entry), or the default limit with -Default. Without a GPU: every GPU with a journal entry
/// (with -Default: every GPU).
/// </summary>
public sealed class RestorePowerLimitOperation : IOperation
{
    public int[]? Index { get; set; }
    public string[]? Uuid { get; set; }
    public bool Default { get; set; }
    public bool PassThru { get; set; }

    public void Execute(IOperationHost host)
    {
        bool selected = Index is { Length: > 0 } || Uuid is { Length: > 0 };
        IReadOnlyList<NvmlDevice> devices;
        if (selected || Default)
        {
            devices = NvmlDevice.Select(Index, Uuid);
        }
        else
        {
            var entries = PowerLimitJournal.ReadAll();
            var all = NvmlDevice.All();
            devices = all.Where(d => entries.Any(e => string.Equals(e.Uuid, d.Uuid, StringComparison.OrdinalIgnoreCase))).ToList();
            foreach (var e in entries.Where(e => !all.Any(d => string.Equals(e.Uuid, d.Uuid, StringComparison.OrdinalIgnoreCase))))
            {
                host.WriteWarning($"The journal has an entry for GPU {e.Uuid} ({e.Name}), which is not present: left in {PowerLimitJournal.PathFor(e.Uuid)}.");
            }

            if (devices.Count == 0) host.WriteVerbose($"Nothing to restore: the journal in {PowerLimitJournal.Directory} is empty.");
        }

        foreach (var d in devices)
        {
            host.CancellationToken.ThrowIfCancellationRequested();
            var entry = PowerLimitJournal.Read(d.Uuid);
            uint target;
            string what;
            if (Default)
            {
                target = d.DefaultPowerLimitMilliwatts() ?? throw new GpuOpsException("NotSupported", ErrorCategory.NotImplemented,
                    $"GPU {d.Index} does not report its default power limit.", d.Index);
                what = "default";
            }
            else if (entry is null)
            {
                host.WriteWarning($"GPU {d.Index}: nothing to restore, the journal has no original limit for {d.Uuid} (use -Default to set the default limit).");
                continue;
            }
            else
            {
                target = entry.OriginalMilliwatts;
                what = "original";
            }

            uint current = d.PowerLimitMilliwatts() ?? 0;
            if (!host.ShouldProcess(PowerLimitReader.Target(d), $"Restore the {what} power limit {PowerLimitReader.W(target)} (now {PowerLimitReader.W(current)})", ConfirmImpact.High))
            {
                continue;
            }

            if (current != target) d.SetPowerLimitMilliwatts(target);
            PowerLimitJournal.Delete(d.Uuid);
            host.WriteVerbose($"GPU {d.Index}: power limit {PowerLimitReader.W(target)} ({what}); journal entry removed.");
            if (PassThru) host.WriteObject(PowerLimitReader.Read(d));
        }
    }
}
