using System.Management.Automation;
using GpuOps.Nvml;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Sets a GPU's power limit in watts or as a percentage of its default limit.</para>
/// <para type="description">Values outside the GPU's constraints are refused with the allowed range. Before the first change the limit in force is written to a journal (one file per GPU UUID, written atomically; folder: GPUOPS_STATE_DIR or the user's local application data), so Restore-GpuPowerLimit puts back the original, also in a later session after a crash. Needs root/Administrator (in containers: SYS_ADMIN). -ResetJournal records the limit in force now as the original even when the journal already holds one. -Force changes the limit without asking for confirmation (-WhatIf is still honoured).</para>
/// <para type="description">Without -Index, -Uuid or pipeline input the limit is set on every GPU. Every selected GPU is checked before any is changed. ConfirmImpact is High, so PowerShell asks before each change unless -Force or -Confirm:$false is given. When persistence mode is off a warning says the driver may reset the limit. Errors are non-terminating, per input object.</para>
/// </summary>
/// <example><code>Get-Gpu | Set-GpuPowerLimit -Percent 70 -WhatIf</code>Shows the limit every GPU would get at 70 % of its default limit, without changing anything.</example>
/// <example><code>Set-GpuPowerLimit -Index 0 -Watts 450 -PassThru</code>After confirmation, sets GPU 0's power limit to 450 W, journaling the original first, and shows the limits now in force.</example>
[Cmdlet(VerbsCommon.Set, "GpuPowerLimit", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = "Watts")]
[OutputType(typeof(GpuPowerLimit))]
public sealed class SetGpuPowerLimitCommand : GpuOpsCmdlet
{
    /// <summary><para type="description">Indices of the GPUs to change, as NVML numbers them (Get-Gpu's Index). Objects with an Index or GpuIndex property, such as those of Get-Gpu and Get-GpuPowerLimit, bind by property name. Without -Index and -Uuid every GPU is changed.</para></summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("GpuIndex")]
    [ArgumentCompleter(typeof(GpuIndexCompleter))]
    [ValidateRange(0, 63)]
    [ValidateCount(1, 64)]   // (an empty array would mean every GPU)
    public int[]? Index { get; set; }

    /// <summary><para type="description">UUIDs of the GPUs to change (as Get-Gpu shows them). Given together with -Index, the GPUs of both lists are changed. Objects with a Uuid property bind by property name.</para></summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ValidateCount(1, 64)]
    [ArgumentCompleter(typeof(GpuUuidCompleter))]
    public string[]? Uuid { get; set; }

    /// <summary><para type="description">The new power limit in watts. It must lie within the GPU's minimum and maximum limit (Get-GpuPowerLimit shows them); otherwise the GPU is refused with the allowed range.</para></summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = "Watts")]
    [ValidateRange(1.0, 5000.0)]
    public double Watts { get; set; }

    /// <summary><para type="description">The new power limit as a percentage of each GPU's default limit (1 to 200; e.g. 70 for 70 %). The result must lie within the GPU's minimum and maximum limit.</para></summary>
    [Parameter(Mandatory = true, ParameterSetName = "Percent")]
    [ValidateRange(1.0, 200.0)]
    public double Percent { get; set; }

    /// <summary><para type="description">Change the limit without the confirmation prompt. -WhatIf, and -Confirm given explicitly, still apply.</para></summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <summary><para type="description">Record the limit in force now as the original in the journal, replacing an entry written earlier, so that Restore-GpuPowerLimit returns to this limit instead.</para></summary>
    [Parameter]
    public SwitchParameter ResetJournal { get; set; }

    protected override bool SkipConfirmation => Force.IsPresent;

    /// <summary><para type="description">Write a GpuPowerLimit for each GPU after its limit is set. By default the cmdlet writes nothing.</para></summary>
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
