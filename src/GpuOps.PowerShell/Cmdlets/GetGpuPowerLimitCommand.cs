using System.Management.Automation;
using GpuOps.Nvml;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Shows each GPU's power limits: current, default, minimum/maximum, enforced, and the original recorded in the journal.</para>
/// <para type="description">Writes one GpuPowerLimit per GPU, in watts: PowerLimitWatts (in force now), DefaultWatts, MinWatts and MaxWatts (the range Set-GpuPowerLimit accepts), EnforcedWatts, JournaledOriginalWatts (the limit Restore-GpuPowerLimit would put back; empty when GpuOps has not changed the GPU) and PersistenceMode. Without -Index or -Uuid: every GPU. Reading needs no special rights. Errors (NVML not found, an unknown GPU, a GPU without power management) are non-terminating.</para>
/// </summary>
/// <example><code>Get-GpuPowerLimit</code>Shows the power limits of every GPU and any original recorded in the journal.</example>
/// <example><code>Get-GpuPowerLimit -Index 0 | Set-GpuPowerLimit -Watts 500 -WhatIf</code>Shows what setting GPU 0 to 500 W would do; the GpuIndex of the result binds to -Index.</example>
[Cmdlet(VerbsCommon.Get, "GpuPowerLimit")]
[OutputType(typeof(GpuPowerLimit))]
public sealed class GetGpuPowerLimitCommand : GpuSelectionCmdlet
{
    protected override void ProcessRecord() => RunForItem(new GetPowerLimitOperation { Index = Index, Uuid = Uuid });
}
