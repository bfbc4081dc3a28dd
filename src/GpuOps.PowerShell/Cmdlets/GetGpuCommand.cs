using System.Management.Automation;
using GpuOps.Nvml;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Lists the NVIDIA GPUs NVML sees: name, UUID, PCI bus id, driver and CUDA versions, compute capability, memory, power limits, clocks, temperature, persistence and MIG mode.</para>
/// <para type="description">Without -Index or -Uuid: every GPU. Objects from other GpuOps cmdlets bind by their Index/GpuIndex and Uuid.</para>
/// </summary>
[Cmdlet(VerbsCommon.Get, "Gpu")]
[OutputType(typeof(GpuInfo))]
public sealed class GetGpuCommand : GpuOpsCmdlet
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

    protected override void ProcessRecord() => RunForItem(new GetGpuOperation { Index = Index, Uuid = Uuid });
}
