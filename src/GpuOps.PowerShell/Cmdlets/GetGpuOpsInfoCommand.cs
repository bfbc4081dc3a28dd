using System.Management.Automation;
using GpuOps.Core.Operations;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Shows GpuOps' version, the NVIDIA native libraries it found and the GPUs the CUDA driver sees.</para>
/// <para type="description">Writes one GpuOpsInfo: the GpuOps, .NET and operating system versions, the process architecture, the NVML and CUDA driver versions, each native library (CUDA driver, NVML, NVRTC, cuBLASLt) with its path or why it was not found, the GPUs the CUDA driver enumerates, and Backend: cuda when the CUDA driver sees a GPU, otherwise cpu. It works without a GPU or driver: the missing libraries are listed as such and Backend is cpu. -Verbose shows each library's path and version or the error.</para>
/// </summary>
/// <example><code>Get-GpuOpsInfo</code>Shows the versions, the NVIDIA libraries found and the GPUs present.</example>
/// <example><code>(Get-GpuOpsInfo).Libraries | Format-Table Library, Found, Version, Path, Error</code>Lists every native library GpuOps looks for, with its path and version or the reason it is missing.</example>
[Cmdlet(VerbsCommon.Get, "GpuOpsInfo")]
[OutputType(typeof(GpuOpsInfo))]
public sealed class GetGpuOpsInfoCommand : GpuOpsCmdlet
{
    protected override void EndProcessing() => Run(new GetInfoOperation());
}
