using System.Management.Automation;
using GpuOps.Nvml;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Lists the processes using each GPU (compute and graphics) and the GPU memory they hold.</para>
/// </summary>
[Cmdlet(VerbsCommon.Get, "GpuProcess")]
[OutputType(typeof(GpuProcessInfo))]
public sealed class GetGpuProcessCommand : GpuSelectionCmdlet
{
    protected override void ProcessRecord() => RunForItem(new GetGpuProcessOperation { Index = Index, Uuid = Uuid });
}
