using System.Management.Automation;
using GpuOps.Nvml;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Samples GPU telemetry: power (instant and averaged), energy counter, temperature, utilization, memory, clocks and decoded clock event (throttle) reasons.</para>
/// <para type="description">Without -Interval/-Count/-Duration: one sample per GPU. With them: a stream on a steady schedule (no drift; up to 1000 Hz) until the count or duration is reached, or Ctrl+C. -Statistics prints one summary of the stream's cost, CPU use and jitter instead.</para>
/// </summary>
[Cmdlet(VerbsCommon.Get, "GpuTelemetry")]
[OutputType(typeof(GpuTelemetrySample), typeof(TelemetryStreamStatistics))]
public sealed class GetGpuTelemetryCommand : GpuOpsCmdlet
{
    private readonly List<int> _indices = new();
    private readonly List<string> _uuids = new();

    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("GpuIndex")]
    [ArgumentCompleter(typeof(GpuIndexCompleter))]
    [ValidateRange(0, 63)]
    public int[]? Index { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(GpuUuidCompleter))]
    public string[]? Uuid { get; set; }

    /// <summary>Time between samples (e.g. 00:00:00.01 for 100 Hz).</summary>
    [Parameter]
    public TimeSpan? Interval { get; set; }

    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int? Count { get; set; }

    [Parameter]
    public TimeSpan? Duration { get; set; }

    [Parameter]
    public SwitchParameter Statistics { get; set; }

    // Pipeline input is collected so that several GPUs stream on one schedule.
    protected override void ProcessRecord()
    {
        if (Index is not null) _indices.AddRange(Index);
        if (Uuid is not null) _uuids.AddRange(Uuid);
    }

    protected override void EndProcessing() => Run(new GetTelemetryOperation
    {
        Index = _indices.Count > 0 ? _indices.ToArray() : null,
        Uuid = _uuids.Count > 0 ? _uuids.ToArray() : null,
        Interval = Interval,
        Count = Count,
        Duration = Duration,
        Statistics = Statistics.IsPresent,
    });
}
