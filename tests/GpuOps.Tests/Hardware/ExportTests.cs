using GpuOps.Core.Hosting;
using GpuOps.Nvml;
using Microsoft.Data.Sqlite;
using Xunit;

namespace GpuOps.Tests.Hardware;

public class PrometheusFormatTests
{
    [Fact]
    public void Exposition_has_units_in_names_labels_and_energy_as_a_counter()
    {
        var t = DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_123);
        var text = ExportTelemetryOperation.Prometheus(
        [
            new GpuTelemetrySample(t, 0, 0, "GPU-a\"b", 251, 250, 1234.5, 40, 97, 12, 1024, 1755, 2619, "SwPowerCap, HwSlowdown", 0xC),
            new GpuTelemetrySample(t, 0, 1, "GPU-c", null, 150, null, 41, null, null, null, null, null, "Unknown", null),
        ]);
        var lines = text.Split('\n');
        Assert.Contains("# TYPE gpuops_power_watts gauge", lines);
        Assert.Contains("gpuops_power_watts{gpu=\"0\",uuid=\"GPU-a\\\"b\"} 251", lines);
        Assert.DoesNotContain(lines, l => l.StartsWith("gpuops_power_watts{gpu=\"1\"", StringComparison.Ordinal));
        Assert.Contains("gpuops_power_average_watts{gpu=\"1\",uuid=\"GPU-c\"} 150", lines);
        Assert.Contains("# TYPE gpuops_energy_joules_total counter", lines);
        Assert.Contains("gpuops_energy_joules_total{gpu=\"0\",uuid=\"GPU-a\\\"b\"} 1234.5", lines);
        Assert.Contains("gpuops_gpu_utilization_ratio{gpu=\"0\",uuid=\"GPU-a\\\"b\"} 0.97", lines);
        Assert.Contains("gpuops_sm_clock_hertz{gpu=\"0\",uuid=\"GPU-a\\\"b\"} 1755000000", lines);
        Assert.Contains("gpuops_clock_event_reason_active{gpu=\"0\",uuid=\"GPU-a\\\"b\",reason=\"SwPowerCap\"} 1", lines);
        Assert.Contains("gpuops_clock_event_reason_active{gpu=\"0\",uuid=\"GPU-a\\\"b\",reason=\"GpuIdle\"} 0", lines);
        Assert.Contains("gpuops_sample_timestamp_seconds{gpu=\"1\",uuid=\"GPU-c\"} 1700000000.123", lines);
        Assert.EndsWith("\n", text);
        // Every sample line belongs to a family announced by HELP and TYPE before it.
        var declared = new HashSet<string>();
        foreach (var l in lines.Where(l => l.Length > 0))
        {
            if (l.StartsWith("# TYPE ", StringComparison.Ordinal)) declared.Add(l.Split(' ')[2]);
            else if (!l.StartsWith('#')) Assert.Contains(l[..l.IndexOf('{')], declared);
        }
    }
}

[Collection("NativeEnvironment")]
public class ExportTests
{
    [Fact]
    public void Prometheus_file_is_replaced_atomically_with_the_latest_sample_per_gpu()
    {
        using var fake = new FakeNvml("gpu0.power_base_mw=300000");
        var path = Path.Combine(fake.Root, "textfile", "gpuops.prom");
        var op = new ExportTelemetryOperation { Path = path, Format = TelemetryExportFormat.Prometheus, PassThru = true };
        var host = new RecordingHost();
        op.Execute(host); // no samples given: one sample of each GPU now
        var text = File.ReadAllText(path);
        Assert.Contains("gpuops_power_average_watts{gpu=\"0\",uuid=\"GPU-fa4e0000-0000-4000-8000-000000000000\"} 300", text);
        Assert.Contains("gpu=\"1\"", text);
        Assert.Equal(2, Assert.Single(host.ObjectsOf<TelemetryExportResult>()).SamplesWritten);

        // A later sample of GPU 0 replaces GPU 0's values and keeps GPU 1's.
        var s = new GpuTelemetrySample(DateTimeOffset.UtcNow, 1, 0, "GPU-fa4e0000-0000-4000-8000-000000000000", 333, 321, 5, 50, 1, 1, 1, 1, 1, "None", 0);
        op.Samples = [s];
        op.Execute(new RecordingHost());
        text = File.ReadAllText(path);
        Assert.Contains("gpuops_power_watts{gpu=\"0\",uuid=\"GPU-fa4e0000-0000-4000-8000-000000000000\"} 333", text);
        Assert.Contains("gpuops_power_watts{gpu=\"1\"", text);
        Assert.Equal(new[] { "gpuops.prom" }, Directory.GetFiles(Path.GetDirectoryName(path)!).Select(Path.GetFileName));
    }

    [Fact]
    public void Sqlite_store_appends_every_sample_of_a_stream_in_wal_mode()
    {
        using var fake = new FakeNvml();
        var path = Path.Combine(fake.Root, "telemetry.db");
        var op = new ExportTelemetryOperation
        {
            Path = path,
            Format = TelemetryExportFormat.Sqlite,
            Stream = new GetTelemetryOperation { Interval = TimeSpan.FromMilliseconds(10), Count = 3 },
            PassThru = true,
        };
        var host = new RecordingHost();
        op.Execute(host);
        Assert.Equal(6, Assert.Single(host.ObjectsOf<TelemetryExportResult>()).SamplesWritten);
        op.Stream = null;
        op.Execute(new RecordingHost()); // one more sample of each GPU
        using var db = new SqliteConnection($"Data Source={path};Pooling=False");
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = "PRAGMA journal_mode";
        Assert.Equal("wal", (string)cmd.ExecuteScalar()!);
        cmd.CommandText = "SELECT COUNT(*), COUNT(DISTINCT uuid), MIN(power_average_watts), MAX(gpu_index) FROM gpu_telemetry";
        using var r = cmd.ExecuteReader();
        Assert.True(r.Read());
        Assert.Equal(8L, r.GetInt64(0));
        Assert.Equal(2L, r.GetInt64(1));
        Assert.Equal(100.0, r.GetDouble(2));
        Assert.Equal(1L, r.GetInt64(3));
    }

    [Fact]
    public void Samples_piped_one_by_one_ask_and_warn_once()
    {
        using var fake = new FakeNvml();
        var path = Path.Combine(fake.Root, "gpu.txt");   // (not .prom: one warning)
        var sample = new GpuTelemetrySample(DateTimeOffset.UtcNow, 1, 0, "GPU-fa4e0000-0000-4000-8000-000000000000", 333, 321, 5, 50, 1, 1, 1, 1, 1, "None", 0);
        var op = new ExportTelemetryOperation { Path = path };
        var host = new RecordingHost();
        for (int i = 0; i < 5; i++)
        {
            op.Samples = [sample with { Timestamp = sample.Timestamp.AddSeconds(i) }];
            op.Execute(host);   // (as Export-GpuTelemetry does for each piped sample)
        }

        Assert.Single(host.ShouldProcessCalls);
        Assert.Single(host.Warnings);
        Assert.Equal(5, op.SamplesWritten);

        // declined once: no sample is written, and nothing more is asked
        var declined = new RecordingHost { Confirm = false };
        var op2 = new ExportTelemetryOperation { Path = Path.Combine(fake.Root, "declined.prom") };
        for (int i = 0; i < 3; i++)
        {
            op2.Samples = [sample];
            op2.Execute(declined);
        }

        Assert.Single(declined.ShouldProcessCalls);
        Assert.False(op2.Approved);
        Assert.True(op.Approved);
        Assert.Equal(0, op2.SamplesWritten);
        Assert.False(File.Exists(Path.Combine(fake.Root, "declined.prom")));
    }

    [Fact]
    public void What_if_writes_nothing()
    {
        using var fake = new FakeNvml();
        var path = Path.Combine(fake.Root, "x.prom");
        new ExportTelemetryOperation { Path = path }.Execute(new RecordingHost { Confirm = false });
        Assert.False(File.Exists(path));
    }
}
