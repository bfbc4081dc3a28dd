using System.Management.Automation;
using GpuOps.Nvml;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Shows each GPU's power limits: current, default, minimum/maximum, enforced, and the original recorded in the journal.</para>
/// </summary>
[Cmdlet(VerbsCommon.Get, "GpuPowerLimit")]
[OutputType(typeof(GpuPowerLimit))]
public sealed class GetGpuPowerLimitCommand : GpuOpsCmdlet
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

    protected override void ProcessRecord() => RunForItem(new GetPowerLimitOperation { Index = Index, Uuid = Uuid });
}
