using System.Management.Automation;
using GpuOps.Nvml;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Puts back the original power limit recorded in the journal before GpuOps first changed it (or the default limit with -Default).</para>
/// <para type="description">Works in a later session too (after a crash or a killed sweep). Without -Index/-Uuid or pipeline input: every GPU with a journal entry (with -Default: every GPU).</para>
/// </summary>
[Cmdlet(VerbsData.Restore, "GpuPowerLimit", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(GpuPowerLimit))]
public sealed class RestoreGpuPowerLimitCommand : GpuOpsCmdlet
{
    private bool _any;

    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("GpuIndex")]
    [ArgumentCompleter(typeof(GpuIndexCompleter))]
    [ValidateRange(0, 63)]
    public int[]? Index { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(GpuUuidCompleter))]
    public string[]? Uuid { get; set; }

    [Parameter]
    public SwitchParameter Default { get; set; }

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
        if (!_any) Run(new RestorePowerLimitOperation { Default = Default.IsPresent, PassThru = PassThru.IsPresent });
    }
}
