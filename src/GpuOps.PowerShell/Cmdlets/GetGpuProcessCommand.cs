using System.Management.Automation;
using GpuOps.Nvml;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Lists the processes using each GPU (compute and graphics) and the GPU memory they hold.</para>
/// <para type="description">Writes one GpuProcessInfo per process and GPU: GpuIndex, Uuid, ProcessId, ProcessName, UsedMemoryBytes, Type (Compute or Graphics) and, on MIG GPUs, the GPU and compute instance ids. NVML reports host process ids, so ProcessName is empty for a process that has exited or lives in another PID namespace (a container). Without -Index or -Uuid: every GPU. Errors (NVML not found, an unknown GPU) are non-terminating.</para>
/// </summary>
/// <example><code>Get-GpuProcess | Sort-Object UsedMemoryBytes -Descending | Format-Table GpuIndex, ProcessId, ProcessName, UsedMemoryBytes</code>Lists the processes on every GPU, largest memory use first.</example>
/// <example><code>Get-Gpu -Index 1 | Get-GpuProcess</code>Lists the processes using GPU 1.</example>
[Cmdlet(VerbsCommon.Get, "GpuProcess")]
[OutputType(typeof(GpuProcessInfo))]
public sealed class GetGpuProcessCommand : GpuSelectionCmdlet
{
    protected override void ProcessRecord() => RunForItem(new GetGpuProcessOperation { Index = Index, Uuid = Uuid });
}
