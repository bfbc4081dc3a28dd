using System.Globalization;
using System.Text;
using GpuOps.Core.Hosting;
using GpuOps.Nvml.Native;
using Microsoft.Data.Sqlite;

namespace GpuOps.Nvml;

public enum TelemetryExportFormat
{
    /// <summary>Prometheus text exposition, for node_exporter's textfile collector (file rewritten atomically).</summary>
    Prometheus,
    /// <summary>A SQLite database (WAL) with one row per sample, for long collections from scheduled tasks.</summary>
    Sqlite,
}

/// <summary>
/// <c>Export-GpuTelemetry</c> / <c>gpuops telemetry export</c>. Writes the given samples (none given: one sample of
/// every GPU now; with <see cref="Stream"/>: every sample of that stream as it comes). Prometheus: the latest sample
/// per GPU, the whole file replaced atomically each time; SQLite: rows appended in WAL mode. The operation keeps the
/// latest sample per GPU between calls, so a cmdlet can call it once per pipeline item.
/// </summary>
public sealed class ExportTelemetryOperation : IOperation
{
    private readonly SortedDictionary<int, GpuTelemetrySample> _latest = new();
    private string? _approvedFor;
    private bool _approved;

    public string Path { get; set; } = string.Empty;
    public TelemetryExportFormat Format { get; set; } = TelemetryExportFormat.Prometheus;
    public IReadOnlyList<GpuTelemetrySample>? Samples { get; set; }

    /// <summary>Sample with this stream and export every tick (CLI: telemetry export --interval ...).</summary>
    public GetTelemetryOperation? Stream { get; set; }

    /// <summary>Emit a <see cref="TelemetryExportResult"/> after writing.</summary>
    public bool PassThru { get; set; }

    public int SamplesWritten { get; private set; }

    /// <summary>Whether the write was allowed (ShouldProcess; -WhatIf: false); null before the first call.</summary>
    public bool? Approved => _approvedFor is null ? null : _approved;

    public void Execute(IOperationHost host)
    {
        if (string.IsNullOrWhiteSpace(Path)) throw GpuOpsException.InvalidArgument("PathRequired", "Give the file to write (-Path).");
        var full = System.IO.Path.GetFullPath(Path);
        // (once per operation: a cmdlet calls it once per piped sample, and should warn and ask once, not per sample)
        if (_approvedFor != full)
        {
            if (Format == TelemetryExportFormat.Prometheus && !full.EndsWith(".prom", StringComparison.Ordinal))
                host.WriteWarning($"{full}: node_exporter's textfile collector reads only files ending in .prom.");
            _approved = host.ShouldProcess(full, $"Write GPU telemetry ({Format})", ConfirmImpact.Low);
            _approvedFor = full;
        }

        if (!_approved) return;
        int before = SamplesWritten;
        if (Stream is not null)
        {
            using var sink = Format == TelemetryExportFormat.Sqlite ? OpenSqlite(full) : null;
            Stream.Statistics = false;
            Stream.Execute(new ForwardingHost(host, batch => Write(full, batch, sink)));
        }
        else
        {
            var samples = Samples;
            if (samples is null || samples.Count == 0)
            {
                var now = DateTimeOffset.UtcNow;
                samples = NvmlDevice.All().Select(d => TelemetryReader.Read(d, now, 0)).ToList();
            }

            using var sink = Format == TelemetryExportFormat.Sqlite ? OpenSqlite(full) : null;
            Write(full, samples, sink);
        }

        if (PassThru) host.WriteObject(new TelemetryExportResult(full, Format.ToString(), SamplesWritten - before));
    }

    private void Write(string path, IReadOnlyList<GpuTelemetrySample> samples, SqliteConnection? db)
    {
        if (samples.Count == 0) return;
        if (db is not null)
        {
            InsertRows(db, samples);
        }
        else
        {
            foreach (var s in samples) _latest[s.GpuIndex] = s;
            WriteAtomically(path, Prometheus(_latest.Values));
        }

        SamplesWritten += samples.Count;
    }

    // ---- Prometheus ----

    /// <summary>The text exposition of the samples (units in metric names, energy as a counter).</summary>
    public static string Prometheus(IEnumerable<GpuTelemetrySample> samples)
    {
        var list = samples.ToList();
        var sb = new StringBuilder();
        void Family(string name, string type, string help, Func<GpuTelemetrySample, double?> value)
        {
            var rows = list.Select(s => (s, v: value(s))).Where(x => x.v is { } d && double.IsFinite(d)).ToList();
            if (rows.Count == 0) return;
            sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
            sb.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
            foreach (var (s, v) in rows) sb.Append(name).Append(Labels(s)).Append(' ').Append(Num(v!.Value)).Append('\n');
        }

        Family("gpuops_power_watts", "gauge", "Instant power draw (NVML_FI_DEV_POWER_INSTANT).", s => s.PowerInstantWatts);
        Family("gpuops_power_average_watts", "gauge", "Power draw averaged by the driver over about 1 s (NVML_FI_DEV_POWER_AVERAGE).", s => s.PowerAverageWatts);
        Family("gpuops_energy_joules_total", "counter", "Energy used since the driver was loaded.", s => s.EnergyJoules);
        Family("gpuops_temperature_celsius", "gauge", "GPU die temperature.", s => s.TemperatureC);
        Family("gpuops_gpu_utilization_ratio", "gauge", "Fraction of time a kernel was running.", s => s.GpuUtilizationPercent / 100.0);
        Family("gpuops_memory_utilization_ratio", "gauge", "Fraction of time device memory was read or written.", s => s.MemoryUtilizationPercent / 100.0);
        Family("gpuops_memory_used_bytes", "gauge", "Device memory in use.", s => s.MemoryUsedBytes);
        Family("gpuops_sm_clock_hertz", "gauge", "SM clock.", s => s.SmClockMHz * 1e6);
        Family("gpuops_memory_clock_hertz", "gauge", "Memory clock.", s => s.MemoryClockMHz * 1e6);
        Family("gpuops_clock_event_reasons_mask", "gauge", "Clock event (throttle) reasons bit mask (nvmlClocksEventReason*).", s => s.ClockEventReasonsMask);
        var reasons = new[] { "GpuIdle", "ApplicationsClocksSetting", "SwPowerCap", "HwSlowdown", "SyncBoost", "SwThermalSlowdown", "HwThermalSlowdown", "HwPowerBrakeSlowdown", "DisplayClockSetting" };
        var withMask = list.Where(s => s.ClockEventReasonsMask is not null).ToList();
        if (withMask.Count > 0)
        {
            sb.Append("# HELP gpuops_clock_event_reason_active Whether a clock event (throttle) reason is active (1) or not (0).\n");
            sb.Append("# TYPE gpuops_clock_event_reason_active gauge\n");
            foreach (var s in withMask)
            {
                var active = s.ClockEventReasons.Split(", ");
                foreach (var r in reasons)
                {
                    sb.Append("gpuops_clock_event_reason_active").Append(Labels(s, ("reason", r))).Append(' ').Append(active.Contains(r) ? "1" : "0").Append('\n');
                }
            }
        }

        Family("gpuops_sample_timestamp_seconds", "gauge", "When the sample was taken (Unix time).", s => s.Timestamp.ToUnixTimeMilliseconds() / 1000.0);
        return sb.ToString();
    }

    private static string Labels(GpuTelemetrySample s, params (string Key, string Value)[] extra)
    {
        var sb = new StringBuilder("{gpu=\"").Append(s.GpuIndex.ToString(CultureInfo.InvariantCulture)).Append("\",uuid=\"").Append(Escape(s.Uuid)).Append('"');
        foreach (var (k, v) in extra) sb.Append(',').Append(k).Append("=\"").Append(Escape(v)).Append('"');
        return sb.Append('}').ToString();
    }

    private static string Escape(string v) => v.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");

    private static string Num(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>Write a file so readers see the old or the new content, never a part (temp file + rename).</summary>
    public static void WriteAtomically(string path, string content)
    {
        var dir = System.IO.Path.GetDirectoryName(path)!;
        try
        {
            Directory.CreateDirectory(dir);
            var tmp = System.IO.Path.Combine(dir, $".{System.IO.Path.GetFileName(path)}.{Environment.ProcessId}.tmp");
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                fs.Write(Encoding.UTF8.GetBytes(content));
                fs.Flush(flushToDisk: false);
            }

            File.Move(tmp, path, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new GpuOpsException("ExportWriteFailed", ErrorCategory.WriteError, $"Cannot write {path}: {ex.Message}", path, ex);
        }
    }

    // ---- SQLite ----

    internal static SqliteConnection OpenSqlite(string path)
    {
        try
        {
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
            var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
            db.Open();
            using var cmd = db.CreateCommand();
            cmd.CommandText = """
                PRAGMA journal_mode=WAL;
                PRAGMA synchronous=NORMAL;
                PRAGMA busy_timeout=5000;
                CREATE TABLE IF NOT EXISTS gpu_telemetry (
                    timestamp TEXT NOT NULL,
                    unix_ms INTEGER NOT NULL,
                    gpu_index INTEGER NOT NULL,
                    uuid TEXT NOT NULL,
                    power_instant_watts REAL,
                    power_average_watts REAL,
                    energy_joules REAL,
                    temperature_c INTEGER,
                    gpu_utilization_percent INTEGER,
                    memory_utilization_percent INTEGER,
                    memory_used_bytes INTEGER,
                    sm_clock_mhz INTEGER,
                    memory_clock_mhz INTEGER,
                    clock_event_reasons TEXT,
                    clock_event_reasons_mask INTEGER);
                CREATE INDEX IF NOT EXISTS ix_gpu_telemetry_uuid_time ON gpu_telemetry(uuid, unix_ms);
                """;
            cmd.ExecuteNonQuery();
            return db;
        }
        catch (SqliteException ex)
        {
            throw new GpuOpsException("ExportWriteFailed", ErrorCategory.WriteError, $"Cannot open the SQLite database {path}: {ex.Message}", path, ex);
        }
    }

    private static void InsertRows(SqliteConnection db, IReadOnlyList<GpuTelemetrySample> samples)
    {
        using var tx = db.BeginTransaction();
        using var cmd = db.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = """
            INSERT INTO gpu_telemetry VALUES ($ts, $ms, $gpu, $uuid, $pi, $pa, $e, $t, $ug, $um, $mem, $sm, $mc, $r, $rm)
            """;
        var names = new[] { "$ts", "$ms", "$gpu", "$uuid", "$pi", "$pa", "$e", "$t", "$ug", "$um", "$mem", "$sm", "$mc", "$r", "$rm" };
        var ps = names.Select(n => cmd.Parameters.Add(new SqliteParameter { ParameterName = n })).ToArray();
        foreach (var s in samples)
        {
            object?[] values =
            [
                s.Timestamp.ToString("O", CultureInfo.InvariantCulture), s.Timestamp.ToUnixTimeMilliseconds(), s.GpuIndex, s.Uuid,
                s.PowerInstantWatts, s.PowerAverageWatts, s.EnergyJoules, s.TemperatureC, s.GpuUtilizationPercent, s.MemoryUtilizationPercent,
                s.MemoryUsedBytes, s.SmClockMHz, s.MemoryClockMHz, s.ClockEventReasons, s.ClockEventReasonsMask,
            ];
            for (int i = 0; i < ps.Length; i++) ps[i].Value = values[i] ?? DBNull.Value;
            cmd.ExecuteNonQuery();
        }

        tx.Commit();
    }

    /// <summary>Passes everything through, but hands telemetry samples to the exporter (one batch per tick).</summary>
    private sealed class ForwardingHost(IOperationHost inner, Action<IReadOnlyList<GpuTelemetrySample>> sink) : IOperationHost
    {
        public CancellationToken CancellationToken => inner.CancellationToken;

        public void WriteObject(object item)
        {
            if (item is GpuTelemetrySample s) sink([s]);
            else inner.WriteObject(item);
        }

        public void WriteProgress(ProgressInfo progress) => inner.WriteProgress(progress);
        public void WriteVerbose(string message) => inner.WriteVerbose(message);
        public void WriteWarning(string message) => inner.WriteWarning(message);
        public bool ShouldProcess(string target, string action, ConfirmImpact impact = ConfirmImpact.Medium) => inner.ShouldProcess(target, action, impact);
        public void WriteError(OperationError error) => inner.WriteError(error);
    }
}
