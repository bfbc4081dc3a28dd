using System.Management.Automation;
using GpuOps.Nvml;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Shows each GPU's power limits: current, default, minimum/maximum, enforced, and the original recorded in the journal.</para>
/// </summary>
[Cmdlet(VerbsCommon.Get, "GpuPowerLimit")]
[OutputType(typeof(GpuPowerLimit))]
public sealed class GetGpuPowerLimitCommand : GpuSelectionCmdlet
{
    protected override void ProcessRecord() => RunForItem(new GetPowerLimitOperation { Index = Index, Uuid = Uuid });
}
