using System.Management.Automation;
using GpuOps.Nvml;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Runs a script block and reports the energy each GPU used meanwhile (J), the elapsed time, average and peak power.</para>
/// <para type="description">Energy comes from the GPU's energy counter (resets handled) or, where it has none, from sampled power integrated over time (Method says which). The script block's output is discarded, as with Measure-Command.</para>
/// </summary>
[Cmdlet(VerbsDiagnostic.Measure, "GpuEnergy")]
[OutputType(typeof(EnergyReading))]
public sealed class MeasureGpuEnergyCommand : GpuOpsCmdlet
{
    [Parameter(Mandatory = true, Position = 0)]
    public ScriptBlock ScriptBlock { get; set; } = null!;

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("GpuIndex")]
    [ArgumentCompleter(typeof(GpuIndexCompleter))]
    [ValidateRange(0, 63)]
    public int[]? Index { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(GpuUuidCompleter))]
    public string[]? Uuid { get; set; }

    /// <summary>Power sampling period (default 20 ms).</summary>
    [Parameter]
    public TimeSpan? SampleInterval { get; set; }

    protected override void ProcessRecord()
    {
        var op = new MeasureEnergyOperation { Index = Index, Uuid = Uuid, Workload = _ => ScriptBlock.Invoke() };
        if (SampleInterval is { } s) op.SampleInterval = s;
        Run(op);
    }
}
