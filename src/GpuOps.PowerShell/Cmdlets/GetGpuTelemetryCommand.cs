using System.Management.Automation;
using GpuOps.Nvml;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Samples GPU telemetry: power (instant and averaged), energy counter, temperature, utilization, memory, clocks and decoded clock event (throttle) reasons.</para>
/// <para type="description">Without -Interval/-Count/-Duration: one sample per GPU. With them: a stream on a steady schedule (no drift; up to 1000 Hz) until the count or duration is reached, or Ctrl+C. -Statistics prints one summary of the stream's cost, CPU use and jitter instead.</para>
/// <para type="description">Writes GpuTelemetrySample objects (one per GPU per tick; values a GPU does not report are empty), or one TelemetryStreamStatistics with -Statistics. GPUs piped in are collected first and stream together on one schedule. A tick more than one interval late is skipped and counted as missed rather than bunched. In a stream the energy counter is refreshed once a second. Errors (NVML not found, no GPU, an unknown GPU) are terminating; a GPU lost during a stream is reported and the others go on.</para>
/// </summary>
/// <example><code>Get-GpuTelemetry -Interval 00:00:00.1 -Count 100 | Export-Csv telemetry.csv</code>Samples every GPU ten times a second for 100 ticks and saves the samples as CSV.</example>
/// <example><code>Get-GpuTelemetry -Index 0 -Interval 00:00:00.01 -Duration 00:00:10 -Statistics</code>Streams GPU 0 at 100 Hz for ten seconds and reports the achieved rate, sample cost, jitter and CPU use instead of the samples.</example>
[Cmdlet(VerbsCommon.Get, "GpuTelemetry")]
[OutputType(typeof(GpuTelemetrySample), typeof(TelemetryStreamStatistics))]
public sealed class GetGpuTelemetryCommand : GpuSelectionCmdlet
{
    private readonly List<int> _indices = new();
    private readonly List<string> _uuids = new();

    /// <summary><para type="description">Time between samples, at least 1 ms (e.g. 00:00:00.01 for 100 Hz); setting it starts a stream. When only -Count or -Duration is given the interval is 1 second (with -Statistics: 10 ms).</para></summary>
    [Parameter]
    public TimeSpan? Interval { get; set; }

    /// <summary><para type="description">Number of ticks to sample (one sample per GPU each); the stream stops after them. Without -Count and -Duration a stream runs until Ctrl+C (with -Statistics alone: 100 ticks).</para></summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int? Count { get; set; }

    /// <summary><para type="description">How long to stream (e.g. 00:05:00); ticks are taken from the start until this time has passed. Combined with -Count, whichever is reached first ends the stream.</para></summary>
    [Parameter]
    public TimeSpan? Duration { get; set; }

    /// <summary><para type="description">Instead of the samples, output one TelemetryStreamStatistics: ticks, samples and missed ticks, target and achieved rate, the cost of a sample and the jitter (mean, median, 99th percentile, maximum), drift and CPU use. Alone it measures 100 ticks at 100 Hz.</para></summary>
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
