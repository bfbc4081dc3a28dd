using System.Management.Automation;
using GpuOps.Nvml;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Writes GPU telemetry for Prometheus (node_exporter textfile collector) or into a SQLite database.</para>
/// <para type="description">Prometheus: the latest sample of each GPU, the file replaced atomically after every sample (metric names carry units; energy is a counter). Sqlite: one row per sample in table gpu_telemetry (WAL mode), for long collections from scheduled tasks. Without pipeline input: one sample of every GPU now. CSV and JSON: use Export-Csv and ConvertTo-Json.</para>
/// <para type="description">Every write is a ShouldProcess operation, so -WhatIf writes nothing. Errors (NVML missing, a file or database that cannot be written) are terminating. With -PassThru a TelemetryExportResult (Path, Format, SamplesWritten) follows at the end.</para>
/// </summary>
/// <example><code>Get-GpuTelemetry -Interval 00:00:01 -Duration 01:00:00 | Export-GpuTelemetry -Format Sqlite -Path gpu.db</code>Samples every GPU once a second for an hour and appends each sample as a row of the table gpu_telemetry in gpu.db.</example>
/// <example><code>Get-GpuTelemetry -Interval 00:00:15 | Export-GpuTelemetry -Path /var/lib/node_exporter/textfile_collector/gpu.prom</code>Rewrites the Prometheus file with the latest sample of every GPU every 15 seconds, until Ctrl+C.</example>
/// <example><code>Export-GpuTelemetry -Path ./gpu.prom -PassThru</code>Writes one sample of every GPU taken now and reports the file and the number of samples written.</example>
[Cmdlet(VerbsData.Export, "GpuTelemetry", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(TelemetryExportResult))]
public sealed class ExportGpuTelemetryCommand : GpuOpsCmdlet
{
    private ExportTelemetryOperation? _op;
    private bool _any;

    /// <summary><para type="description">Telemetry samples to write, usually piped from Get-GpuTelemetry. Without pipeline input the cmdlet takes one sample of every GPU now and writes it.</para></summary>
    [Parameter(ValueFromPipeline = true)]
    public GpuTelemetrySample? InputObject { get; set; }

    /// <summary><para type="description">The file to write; a missing folder is created. Prometheus: node_exporter's textfile collector reads only files ending in .prom (other names get a warning). Sqlite: the database file, created with its table when missing.</para></summary>
    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = string.Empty;

    /// <summary><para type="description">Prometheus (the default) writes the text exposition format with the latest sample of each GPU, replacing the whole file atomically on every write. Sqlite appends one row per sample to the table gpu_telemetry.</para></summary>
    [Parameter]
    public TelemetryExportFormat Format { get; set; } = TelemetryExportFormat.Prometheus;

    /// <summary><para type="description">After the last write, output a TelemetryExportResult with the full path, the format and the number of samples written. By default the cmdlet writes nothing to the pipeline.</para></summary>
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
        if (!_any && !MyInvocation.ExpectingInput)   // (input piped but none arrived: write nothing, not a fresh sample)
        {
            _op!.Samples = null;
            Run(_op);
        }

        if (PassThru && _op!.Approved == true) WriteObject(new TelemetryExportResult(_op!.Path, Format.ToString(), _op.SamplesWritten));
    }
}
