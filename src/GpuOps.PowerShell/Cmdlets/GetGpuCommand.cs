using System.Management.Automation;
using GpuOps.Nvml;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Lists the NVIDIA GPUs NVML sees: name, UUID, PCI bus id, driver and CUDA versions, compute capability, memory, power limits, clocks, temperature, persistence and MIG mode.</para>
/// <para type="description">Writes one GpuInfo per GPU, in index order. Without -Index or -Uuid: every GPU. Objects from other GpuOps cmdlets bind by their Index/GpuIndex and Uuid. Values a GPU or driver does not report are empty (null). Errors are non-terminating: an unknown index or UUID, or a machine without the NVIDIA driver (NVML not found), gives an error record and no output.</para>
/// </summary>
/// <example><code>Get-Gpu | Format-Table Index, Name, MemoryTotalBytes, PowerLimitWatts, TemperatureC</code>Lists every GPU with its memory, power limit and temperature.</example>
/// <example><code>Get-Gpu -Index 0 | Set-GpuPowerLimit -Percent 80 -WhatIf</code>Shows what capping GPU 0 at 80 % of its default power limit would do, without changing it.</example>
[Cmdlet(VerbsCommon.Get, "Gpu")]
[OutputType(typeof(GpuInfo))]
public sealed class GetGpuCommand : GpuSelectionCmdlet
{
    protected override void ProcessRecord() => RunForItem(new GetGpuOperation { Index = Index, Uuid = Uuid });
}
