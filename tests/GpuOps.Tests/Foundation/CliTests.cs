using System.Text.Json;
using GpuOps.Cli;
using GpuOps.Tests.Support;
using Xunit;

namespace GpuOps.Tests.Foundation;

public class CliTests
{
    public static (int Code, string Out, string Err) Gpuops(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = GpuOpsCli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public void Info_json_prints_one_object_with_versions_libraries_and_gpus()
    {
        var (code, stdout, _) = Gpuops("info", "--json");
        Assert.Equal(0, code);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        using var doc = JsonDocument.Parse(lines[0]);
        var root = doc.RootElement;
        Assert.Equal("0.1.0", root.GetProperty("gpuOpsVersion").GetString());
        Assert.Equal(4, root.GetProperty("libraries").GetArrayLength());
        Assert.Equal(root.GetProperty("gpus").GetArrayLength(), root.GetProperty("gpuCount").GetInt32());
        Assert.Equal(Gpu.Present ? "cuda" : "cpu", root.GetProperty("backend").GetString());
        foreach (var lib in root.GetProperty("libraries").EnumerateArray())
        {
            Assert.True(lib.GetProperty("found").GetBoolean() || lib.GetProperty("error").GetString()!.Contains("not found"));
        }
    }

    [Fact]
    public void Info_human_output_is_a_list()
    {
        var (code, stdout, _) = Gpuops("info");
        Assert.Equal(0, code);
        Assert.Contains("GpuOpsVersion", stdout);
        Assert.Contains("Libraries", stdout);
    }

    [Fact]
    public void Unknown_verb_exits_non_zero()
    {
        var (code, _, err) = Gpuops("no-such-verb");
        Assert.NotEqual(0, code);
        Assert.Contains("no-such-verb", err);
    }

    [Theory]
    [InlineData(new[] { "power", "set", "--watts", "abc" }, "'abc' is not a valid value for --watts: it takes a number.", "gpuops power set --help")]
    [InlineData(new[] { "telemetry", "--interval", "00:00:00.1" }, "'00:00:00.1' is not a valid value for --interval: it takes a number.", "gpuops telemetry --help")]
    [InlineData(new[] { "generate", "x", "--max-tokens", "many" }, "'many' is not a valid value for --max-tokens: it takes a whole number.", "gpuops generate --help")]
    [InlineData(new[] { "telemetry", "export", "--format", "csv", "--path", "x" }, "'csv' is not a valid value for --format: it takes Prometheus or Sqlite.", "gpuops telemetry export --help")]
    [InlineData(new[] { "power", "optimize", "--objective", "Bogus" }, "'Bogus' is not a valid value for --objective: it takes Cost, MaxSlowdown, MinEnergy or MinEnergyDelay.", "gpuops power optimize --help")]
    public void A_malformed_value_is_one_line_without_type_names_or_the_whole_help(string[] args, string message, string where)
    {
        var (code, stdout, err) = Gpuops(args);
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        var line = Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(message, line);
        Assert.Contains(where, line);
        Assert.DoesNotContain("System.", line);
    }

    [Fact]
    public void Messages_name_the_command_line_options_not_the_powershell_parameters()
    {
        var (code, _, err) = Gpuops("power", "set", "--watts", "300", "--percent", "50", "--yes");
        Assert.Equal(1, code);
        Assert.Contains("--watts or --percent", err);
        Assert.DoesNotContain("-Watts", err);
        var (code2, _, err2) = Gpuops("generate", Repo.PathOf("tests", "data", "fortune-llama"), "-p", "y", "--max-context", "0", "--device", "cpu", "-q");
        Assert.Equal(1, code2);
        Assert.Contains("between 1 and", err2);
        var cmd = GpuOpsCli.BuildRoot(new CliContext(TextWriter.Null, TextWriter.Null)).Subcommands.Single(c => c.Name == "perplexity");
        Assert.Equal("use --max-windows, not -Unknown or -ScriptBlock-like words", CliContext.CliWords("use -MaxWindows, not -Unknown or -ScriptBlock-like words", cmd));
    }

    [Fact]
    public void Json_serialisation_survives_NaN_and_enums()
    {
        var s = JsonSerializer.Serialize(new { V = double.NaN, W = (double?)double.PositiveInfinity, X = 1.5, N = (double?)null, F = float.NaN, C = GpuOps.Core.Hosting.ErrorCategory.DeviceError }, ConsoleHost.JsonOptions);
        Assert.Equal("{\"v\":null,\"w\":null,\"x\":1.5,\"n\":null,\"f\":null,\"c\":\"DeviceError\"}", s);
    }
}
