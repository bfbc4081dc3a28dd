using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using GpuOps.Core.Hosting;
using GpuOps.Nvml;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>Completes -Uuid with the UUIDs of the GPUs NVML sees (nothing when NVML is unavailable).</summary>
public sealed class GpuUuidCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var prefix = (wordToComplete ?? string.Empty).Trim('\'', '"');
        return Gpus()
            .Where(g => g.Uuid.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            .Select(g => new CompletionResult(g.Uuid, g.Uuid, CompletionResultType.ParameterValue, $"GPU {g.Index}: {g.Name}"))
            .ToList();
    }

    internal static IReadOnlyList<GpuInfo> Gpus()
    {
        try
        {
            var host = new RecordingHost();
            new GetGpuOperation().Execute(host);
            return host.ObjectsOf<GpuInfo>().ToList();
        }
        catch (Exception ex) when (ex is GpuOpsException or DllNotFoundException or EntryPointNotFoundException)
        {
            return [];
        }
    }
}

/// <summary>Completes -Index with the indices of the GPUs NVML sees.</summary>
public sealed class GpuIndexCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters) =>
        GpuUuidCompleter.Gpus()
            .Select(g => g.Index.ToString(System.Globalization.CultureInfo.InvariantCulture))
            .Where(i => i.StartsWith(wordToComplete ?? string.Empty, StringComparison.Ordinal))
            .Select(i => new CompletionResult(i))
            .ToList();
}
