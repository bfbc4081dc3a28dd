using System.Management.Automation;
using GpuOps.Nvml;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Sets a GPU's power limit in watts or as a percentage of its default limit.</para>
/// <para type="description">Values outside the GPU's constraints are refused with the allowed range. Before the first change the limit in force is written to a journal (one file per GPU UUID, written atomically; folder: GPUOPS_STATE_DIR or the user's local application data), so Restore-GpuPowerLimit puts back the original, also in a later session after a crash. Needs root/Administrator (in containers: SYS_ADMIN). -ResetJournal records the limit in force now as the original even when the journal already holds one. -Force changes the limit without asking for confirmation (-WhatIf is still honoured).</para>
/// <example><code>Get-Gpu | Set-GpuPowerLimit -Percent 70 -WhatIf</code></example>
/// </summary>
[Cmdlet(VerbsCommon.Set, "GpuPowerLimit", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = "Watts")]
[OutputType(typeof(GpuPowerLimit))]
public sealed class SetGpuPowerLimitCommand : GpuOpsCmdlet
{
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("GpuIndex")]
    [ArgumentCompleter(typeof(GpuIndexCompleter))]
    [ValidateRange(0, 63)]
    public int[]? Index { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(GpuUuidCompleter))]
    public string[]? Uuid { get; set; }

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = "Watts")]
    [ValidateRange(1.0, 5000.0)]
    public double Watts { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = "Percent")]
    [ValidateRange(1.0, 200.0)]
    public double Percent { get; set; }

    [Parameter]
    public SwitchParameter Force { get; set; }

    [Parameter]
    public SwitchParameter ResetJournal { get; set; }

    protected override bool SkipConfirmation => Force.IsPresent;

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord() => RunForItem(new SetPowerLimitOperation
    {
        Index = Index,
        Uuid = Uuid,
        Watts = ParameterSetName == "Watts" ? Watts : null,
        Percent = ParameterSetName == "Percent" ? Percent : null,
        ResetJournal = ResetJournal.IsPresent,
        PassThru = PassThru.IsPresent,
    });
}
