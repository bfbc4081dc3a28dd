using System.Management.Automation;
using GpuOps.Nvml;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Puts back the original power limit recorded in the journal before GpuOps first changed it (or the default limit with -Default).</para>
/// <para type="description">Works in a later session too (after a crash or a killed sweep). Without -Index/-Uuid or pipeline input: every GPU with a journal entry (with -Default: every GPU).</para>
/// <para type="description">After a GPU's limit is put back its journal entry is removed. A selected GPU without a journal entry is skipped with a warning (use -Default). Needs root/Administrator (in containers: SYS_ADMIN). ConfirmImpact is High, so PowerShell asks before each change unless -Confirm:$false is given; -WhatIf changes nothing. Without a selection, journal entries of GPUs that are not present are left in place with a warning.</para>
/// </summary>
/// <example><code>Restore-GpuPowerLimit -WhatIf</code>Shows which GPUs have a journaled original limit and what would be restored, without changing anything.</example>
/// <example><code>Get-Gpu -Index 0 | Restore-GpuPowerLimit -Default -PassThru</code>After confirmation, sets GPU 0 back to its default power limit, removes any journal entry and shows the limits now in force.</example>
[Cmdlet(VerbsData.Restore, "GpuPowerLimit", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(GpuPowerLimit))]
public sealed class RestoreGpuPowerLimitCommand : GpuSelectionCmdlet
{
    private bool _any;

    /// <summary><para type="description">Set the GPU's default power limit (as the driver reports it) instead of the journaled original. Without -Index, -Uuid or pipeline input it applies to every GPU, journaled or not.</para></summary>
    [Parameter]
    public SwitchParameter Default { get; set; }

    /// <summary><para type="description">Write a GpuPowerLimit for each GPU after its limit is restored. By default the cmdlet writes nothing.</para></summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        if (Index is null && Uuid is null) return;
        _any = true;
        RunForItem(new RestorePowerLimitOperation { Index = Index, Uuid = Uuid, Default = Default.IsPresent, PassThru = PassThru.IsPresent });
    }

    protected override void EndProcessing()
    {
        // Nothing named and nothing piped: every GPU (journaled). Input piped but none of it arrived (e.g. a filter that
        // matched no GPU): nothing, never every GPU.
        if (!_any && !MyInvocation.ExpectingInput) Run(new RestorePowerLimitOperation { Default = Default.IsPresent, PassThru = PassThru.IsPresent });
    }
}
