using System.Management.Automation;
using GpuOps.Nvml;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Lists the NVIDIA GPUs NVML sees: name, UUID, PCI bus id, driver and CUDA versions, compute capability, memory, power limits, clocks, temperature, persistence and MIG mode.</para>
/// <para type="description">Without -Index or -Uuid: every GPU. Objects from other GpuOps cmdlets bind by their Index/GpuIndex and Uuid.</para>
/// </summary>
[Cmdlet(VerbsCommon.Get, "Gpu")]
[OutputType(typeof(GpuInfo))]
public sealed class GetGpuCommand : GpuSelectionCmdlet
{
    protected override void ProcessRecord() => RunForItem(new GetGpuOperation { Index = Index, Uuid = Uuid });
}
