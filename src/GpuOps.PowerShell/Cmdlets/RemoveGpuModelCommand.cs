using System.Management.Automation;
using GpuOps.Core.Engine;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Frees a model loaded by Import-GpuModel.</para>
/// <para type="description">Releases the model's weights (host or GPU memory) and removes it from Get-GpuModel's list; the handle stays but can no longer be used. Freeing is a ShouldProcess operation (ConfirmImpact Low), so -WhatIf frees nothing. A model that was already removed, or a path instead of a loaded model, is a non-terminating error for that item. Writes nothing unless -PassThru is given.</para>
/// </summary>
/// <example><code>Get-GpuModel | Remove-GpuModel</code>Frees every model loaded in this session.</example>
/// <example><code>$m = Import-GpuModel ./tests/data/fortune-llama
/// Remove-GpuModel $m -PassThru</code>Frees one model and outputs its handle, whose IsLoaded is now false.</example>
[Cmdlet(VerbsCommon.Remove, "GpuModel", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(GpuModelHandle))]
public sealed class RemoveGpuModelCommand : GpuOpsCmdlet
{
    /// <summary><para type="description">Model handles from Import-GpuModel or Get-GpuModel; handles piped in bind here. Text that names no file or folder but the name of a model loaded in this session (Get-GpuModel) stands for that loaded model.</para></summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    [ValidateNotNull]
    [ModelTransformation]
    public GpuModelHandle[] Model { get; set; } = Array.Empty<GpuModelHandle>();

    /// <summary><para type="description">Write each freed handle to the pipeline (its IsLoaded is then false). By default the cmdlet writes nothing.</para></summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        foreach (var m in Model) RunForItem(new RemoveGpuModelOperation { Model = m, PassThru = PassThru });
    }
}
