using System.Management.Automation;
using GpuOps.PowerShell.Cmdlets;

namespace GpuOps.PowerShell;

/// <summary>
/// Base of the cmdlets that act on some or all GPUs: -Index and -Uuid, both bound by property name from
/// Get-Gpu (and every GpuOps object that carries Index/GpuIndex and Uuid), with completers. Neither: every GPU.
/// </summary>
public abstract class GpuSelectionCmdlet : GpuOpsCmdlet
{
    /// <summary><para type="description">Indices of the GPUs to act on, as NVML numbers them (the Index that Get-Gpu shows; 0 to 63). Objects with an Index or GpuIndex property, such as those of Get-Gpu and Get-GpuPowerLimit, bind by property name. Without -Index and -Uuid the cmdlet acts on every GPU (Restore-GpuPowerLimit: on every GPU that has a journal entry).</para></summary>
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("GpuIndex")]
    [ArgumentCompleter(typeof(GpuIndexCompleter))]
    [ValidateRange(0, 63)]
    [ValidateCount(1, 64)]   // (an empty array would mean every GPU)
    public int[]? Index { get; set; }

    /// <summary><para type="description">UUIDs of the GPUs to act on (GPU-xxxxxxxx-..., as Get-Gpu shows them; compared case-insensitively). Given together with -Index, the cmdlet acts on the GPUs of both lists, each once. Objects with a Uuid property bind by property name.</para></summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ValidateCount(1, 64)]
    [ArgumentCompleter(typeof(GpuUuidCompleter))]
    public string[]? Uuid { get; set; }
}
