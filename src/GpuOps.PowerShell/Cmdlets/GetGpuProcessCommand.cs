using System.Management.Automation;
using GpuOps.Nvml;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Lists the processes using each GPU (compute and graphics) and the GPU memory they hold.</para>
/// </summary>
[Cmdlet(VerbsCommon.Get, "GpuProcess")]
[OutputType(typeof(GpuProcessInfo))]
public sealed class GetGpuProcessCommand : GpuOpsCmdlet
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

    protected override void ProcessRecord() => RunForItem(new GetGpuProcessOperation { Index = Index, Uuid = Uuid });
}
