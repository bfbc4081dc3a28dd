using System.Management.Automation;
using GpuOps.Nvml;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Writes GPU telemetry for Prometheus (node_exporter textfile collector) or into a SQLite database.</para>
/// <para type="description">Prometheus: the latest sample of each GPU, the file replaced atomically after every sample (metric names carry units; energy is a counter). Sqlite: one row per sample in table gpu_telemetry (WAL mode), for long collections from scheduled tasks. Without pipeline input: one sample of every GPU now. CSV and JSON: use Export-Csv and ConvertTo-Json.</para>
/// <example><code>Get-GpuTelemetry -Interval 00:00:01 -Duration 01:00:00 | Export-GpuTelemetry -Format Sqlite -Path gpu.db</code></example>
/// </summary>
[Cmdlet(VerbsData.Export, "GpuTelemetry", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(TelemetryExportResult))]
public sealed class ExportGpuTelemetryCommand : GpuOpsCmdlet
{
    private ExportTelemetryOperation? _op;
    private bool _any;

    [Parameter(ValueFromPipeline = true)]
    public GpuTelemetrySample? InputObject { get; set; }

    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = string.Empty;

    [Parameter]
    public TelemetryExportFormat Format { get; set; } = TelemetryExportFormat.Prometheus;

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void BeginProcessing() =>
        _op = new ExportTelemetryOperation { Path = GetUnresolvedProviderPathFromPSPath(Path), Format = Format };

    protected override void ProcessRecord()
    {
        if (InputObject is null) return;
        _any = true;
        _op!.Samples = [InputObject];
        Run(_op);
    }

    protected override void EndProcessing()
    {
        if (!_any)
        {
            _op!.Samples = null;
            Run(_op);
        }

        if (PassThru) WriteObject(new TelemetryExportResult(_op!.Path, Format.ToString(), _op.SamplesWritten));
    }
}
