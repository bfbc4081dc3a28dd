using System.Management.Automation;
using GpuOps.Core.Operations;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Shows GpuOps' version, the NVIDIA native libraries it found and the GPUs the CUDA driver sees.</para>
/// </summary>
[Cmdlet(VerbsCommon.Get, "GpuOpsInfo")]
[OutputType(typeof(GpuOpsInfo))]
public sealed class GetGpuOpsInfoCommand : GpuOpsCmdlet
{
    protected override void EndProcessing() => Run(new GetInfoOperation());
}
