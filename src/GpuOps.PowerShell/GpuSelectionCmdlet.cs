using System.Management.Automation;
using GpuOps.PowerShell.Cmdlets;

namespace GpuOps.PowerShell;

/// <summary>
/// Base of the cmdlets that act on some or all GPUs: -Index and -Uuid, both bound by property name from
/// Get-Gpu (and every GpuOps object that carries Index/GpuIndex and Uuid), with completers. Neither: every GPU.
/// </summary>
public abstract class GpuSelectionCmdlet : GpuOpsCmdlet
{
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("GpuIndex")]
    [ArgumentCompleter(typeof(GpuIndexCompleter))]
    [ValidateRange(0, 63)]
    public int[]? Index { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(GpuUuidCompleter))]
    public string[]? Uuid { get; set; }
}
