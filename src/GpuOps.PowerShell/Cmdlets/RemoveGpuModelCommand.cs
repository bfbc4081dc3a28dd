using System.Management.Automation;
using GpuOps.Core.Engine;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Frees a model loaded by Import-GpuModel.</para>
/// </summary>
[Cmdlet(VerbsCommon.Remove, "GpuModel", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(GpuModelHandle))]
public sealed class RemoveGpuModelCommand : GpuOpsCmdlet
{
    /// <summary>Handles from Import-GpuModel.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    [ValidateNotNull]
    public GpuModelHandle[] Model { get; set; } = Array.Empty<GpuModelHandle>();

    /// <summary>Write the (now freed) handle to the pipeline.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        foreach (var m in Model) RunForItem(new RemoveGpuModelOperation { Model = m, PassThru = PassThru });
    }
}
