using System.Collections;
using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using GpuOps.Core.Hosting;

namespace GpuOps.Cli;

/// <summary>
/// The CLI's operation host: results on stdout (tables, or JSON lines with --json), progress, verbose
/// messages, warnings and errors on stderr; --what-if / --yes for state changes.
/// </summary>
public sealed class ConsoleHost : IOperationHost
{
    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        // (a value that is not a number, NaN or infinite, is written as null: JSON readers expect a number or null)
        Converters = { new JsonStringEnumConverter(), new FiniteDoubleConverter(), new FiniteSingleConverter() },
        WriteIndented = false,
    };

    private readonly TextWriter _out;
    private readonly TextWriter _err;
    private Type? _tableType;
    private List<(string Name, Func<object, object?> Get, int Width)>? _columns;
    private bool _progressLineOpen;

    public ConsoleHost(TextWriter stdout, TextWriter stderr, CancellationToken token)
    {
        _out = stdout;
        _err = stderr;
        CancellationToken = token;
    }

    public bool Json { get; init; }
    public bool WhatIf { get; init; }
    public bool AssumeYes { get; init; }
    public bool ShowVerbose { get; init; }
    public bool ShowProgress { get; init; } = true;

    /// <summary>Rewrites a message for the command line (PowerShell parameter names to this command's options).</summary>
    public Func<string, string> Words { get; init; } = s => s;
    public int ErrorCount { get; private set; }
    public CancellationToken CancellationToken { get; }

    /// <summary>Standard output was closed by its reader (a broken pipe): nothing more can be written.</summary>
    public bool OutputClosed { get; private set; }

    public void WriteObject(object item)
    {
        ClearProgress();
        try
        {
            Write(item);
        }
        catch (IOException ex)
        {
            // the reader went away (`gpuops telemetry --interval 1 | head -1`): stop, as a program killed by SIGPIPE
            OutputClosed = true;
            throw new OperationCanceledException("standard output was closed", ex, CancellationToken.None);
        }
    }

    private void Write(object item)
    {
        if (Json)
        {
            _out.WriteLine(JsonSerializer.Serialize(item, item.GetType(), JsonOptions));
            _out.Flush();
            return;
        }

        if (item is string s)
        {
            _out.WriteLine(s);
            return;
        }

        var props = ScalarProperties(item.GetType());
        var nested = item.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.GetIndexParameters().Length == 0 && !IsScalar(p.PropertyType) && typeof(IEnumerable).IsAssignableFrom(p.PropertyType))
            .ToList();
        if (nested.Count > 0 || props.Count > 8)
        {
            WriteList(item, props, nested);
            return;
        }

        WriteRow(item, props);
        _out.Flush();
    }

    public void WriteProgress(ProgressInfo p)
    {
        if (!ShowProgress || Json && !Console.IsErrorRedirected is false) return;
        if (p.Completed)
        {
            ClearProgress();
            return;
        }

        var pct = p.PercentComplete >= 0 ? $" {p.PercentComplete,3}%" : string.Empty;
        var line = $"{p.Activity}:{pct} {p.StatusDescription}";
        if (Console.IsErrorRedirected || !ReferenceEquals(_err, Console.Error))
        {
            _err.WriteLine(line);
        }
        else
        {
            _err.Write("\r" + line.PadRight(Math.Max(1, Math.Min(Console.WindowWidth - 1, 120)))[..Math.Min(line.Length + 10, 119)]);
            _progressLineOpen = true;
        }
    }

    public void WriteVerbose(string message)
    {
        if (!ShowVerbose) return;
        ClearProgress();
        _err.WriteLine($"VERBOSE: {message}");
    }

    public void WriteWarning(string message)
    {
        ClearProgress();
        _err.WriteLine($"WARNING: {Words(message)}");
    }

    public bool ShouldProcess(string target, string action, ConfirmImpact impact = ConfirmImpact.Medium)
    {
        ClearProgress();
        if (WhatIf)
        {
            _err.WriteLine($"What if: Performing the operation \"{action}\" on target \"{target}\".");
            return false;
        }

        if (impact < ConfirmImpact.High || AssumeYes) return true;
        if (Console.IsInputRedirected || !ReferenceEquals(_err, Console.Error))
        {
            throw new GpuOpsException("ConfirmationRequired", ErrorCategory.PermissionDenied,
                $"\"{action}\" on \"{target}\" needs confirmation: pass --yes to confirm, or --what-if to see what would change.", target);
        }

        _err.Write($"Confirm: {action} on {target}? [y/N] ");
        var answer = Console.ReadLine();
        bool yes = answer is not null && answer.Trim().StartsWith("y", StringComparison.OrdinalIgnoreCase);
        if (!yes) _err.WriteLine($"Skipped: {action} on {target}.");
        return yes;
    }

    public void WriteError(OperationError error)
    {
        ClearProgress();
        ErrorCount++;
        _err.WriteLine(Words($"gpuops: {error.Message}" + (error.RecommendedAction is { Length: > 0 } a ? $" {a}" : string.Empty)));
    }

    public void Flush()
    {
        ClearProgress();
        try
        {
            _out.Flush();
        }
        catch (IOException)
        {
            OutputClosed = true;
        }

        try
        {
            _err.Flush();
        }
        catch (IOException)
        {
        }
    }

    private void ClearProgress()
    {
        if (!_progressLineOpen) return;
        _err.Write("\r" + new string(' ', 119) + "\r");
        _progressLineOpen = false;
    }

    private void WriteRow(object item, List<PropertyInfo> props)
    {
        if (_tableType != item.GetType())
        {
            _tableType = item.GetType();
            _columns = props.Select(p => (p.Name, (Func<object, object?>)p.GetValue,
                Math.Min(40, Math.Max(Math.Max(p.Name.Length, IsNumber(p.PropertyType) ? 8 : 0), Format(p.GetValue(item)).Length)))).ToList();
            if (_columns.Count == 0) return;
            _out.WriteLine();
            _out.WriteLine(string.Join("  ", _columns.Select(c => c.Name.PadRight(c.Width))).TrimEnd());
            _out.WriteLine(string.Join("  ", _columns.Select(c => new string('-', c.Width))));
        }

        var cells = _columns!.Select(c =>
        {
            var raw = c.Get(item);
            var v = Format(raw);
            // (a number is never cut: a longer one pushes the rest of its row right; text is cut with an ellipsis)
            if (v.Length > c.Width && raw is not null && IsNumber(raw.GetType())) return v;
            return v.Length > c.Width ? v[..(c.Width - 1)] + "…" : v.PadRight(c.Width);
        });
        _out.WriteLine(string.Join("  ", cells).TrimEnd());
    }

    private void WriteList(object item, List<PropertyInfo> props, List<PropertyInfo> nested)
    {
        _tableType = null;
        int w = props.Concat(nested).Select(p => p.Name.Length).DefaultIfEmpty(0).Max();
        _out.WriteLine();
        foreach (var p in props)
        {
            _out.WriteLine($"{p.Name.PadRight(w)} : {Format(p.GetValue(item))}");
        }

        foreach (var p in nested)
        {
            if (p.GetValue(item) is not IEnumerable list) continue;
            var items = list.Cast<object?>().Where(x => x is not null).ToList();
            if (items.Count > 0 && IsScalar(items[0]!.GetType()))
            {
                _out.WriteLine($"{p.Name.PadRight(w)} : {string.Join(", ", items.Select(Format))}");
                continue;
            }

            _out.WriteLine($"{p.Name.PadRight(w)} :{(items.Count == 0 ? " (none)" : string.Empty)}");
            foreach (var child in items)
            {
                var cp = ScalarProperties(child!.GetType());
                _out.WriteLine("    " + string.Join("  ", cp.Select(x => $"{x.Name}={Format(x.GetValue(child))}")));
            }
        }

        _out.Flush();
    }

    private static List<PropertyInfo> ScalarProperties(Type t) =>
        t.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.GetIndexParameters().Length == 0 && IsScalar(p.PropertyType))
            .ToList();

    private static bool IsNumber(Type t)
    {
        t = Nullable.GetUnderlyingType(t) ?? t;
        return t.IsPrimitive && t != typeof(bool) && t != typeof(char) || t == typeof(decimal);
    }

    private static bool IsScalar(Type t)
    {
        t = Nullable.GetUnderlyingType(t) ?? t;
        return t.IsPrimitive || t.IsEnum || t == typeof(string) || t == typeof(decimal) || t == typeof(DateTime) ||
               t == typeof(DateTimeOffset) || t == typeof(TimeSpan) || t == typeof(Guid);
    }

    private sealed class FiniteDoubleConverter : JsonConverter<double>
    {
        public override bool HandleNull => false;

        public override double Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.TokenType == JsonTokenType.Null ? double.NaN : reader.GetDouble();

        public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options)
        {
            if (double.IsFinite(value)) writer.WriteNumberValue(value);
            else writer.WriteNullValue();
        }
    }

    private sealed class FiniteSingleConverter : JsonConverter<float>
    {
        public override float Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.TokenType == JsonTokenType.Null ? float.NaN : reader.GetSingle();

        public override void Write(Utf8JsonWriter writer, float value, JsonSerializerOptions options)
        {
            if (float.IsFinite(value)) writer.WriteNumberValue(value);
            else writer.WriteNullValue();
        }
    }

    internal static string Format(object? v) => v switch
    {
        null => string.Empty,
        double d => d.ToString(Math.Abs(d) >= 1000 || d == Math.Floor(d) ? "0.##" : "0.####", CultureInfo.InvariantCulture),
        float f => ((double)f).ToString("0.####", CultureInfo.InvariantCulture),
        DateTimeOffset dto => dto.ToString("yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture),
        DateTime dt => dt.ToString("yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => v.ToString() ?? string.Empty,
    };
}
