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
    private readonly List<int> _indices = new();
    private readonly List<string> _uuids = new();

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

    // GPUs piped in are collected: the script block runs once, measured on all of them.
    protected override void ProcessRecord()
    {
        if (Index is not null) _indices.AddRange(Index);
        if (Uuid is not null) _uuids.AddRange(Uuid);
    }

    protected override void EndProcessing()
    {
        var op = new MeasureEnergyOperation
        {
            Index = _indices.Count > 0 ? _indices.ToArray() : null,
            Uuid = _uuids.Count > 0 ? _uuids.ToArray() : null,
            Workload = _ => ScriptBlock.Invoke(),
        };
        if (SampleInterval is { } s) op.SampleInterval = s;
        Run(op);
    }
}
