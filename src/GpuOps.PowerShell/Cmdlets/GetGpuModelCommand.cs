using System.Management.Automation;
using GpuOps.Core.Engine;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Lists the models loaded in this session (Import-GpuModel) and not yet removed.</para>
/// <para type="description">By name (wildcards) or by handle id; without either, every loaded model in load order. The handles are the live objects Import-GpuModel returned, so Get-GpuModel | Remove-GpuModel frees them all.</para>
/// </summary>
/// <example><code>Get-GpuModel</code></example>
/// <example><code>Get-GpuModel fortune* | Remove-GpuModel</code></example>
[Cmdlet(VerbsCommon.Get, "GpuModel", DefaultParameterSetName = "Name")]
[OutputType(typeof(GpuModelHandle))]
public sealed class GetGpuModelCommand : GpuOpsCmdlet
{
    /// <summary><para type="description">Model names (the folder or file name), wildcards allowed.</para></summary>
    [Parameter(Position = 0, ParameterSetName = "Name")]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(LoadedModelNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[]? Name { get; set; }

    /// <summary><para type="description">Handle ids (the Id column).</para></summary>
    [Parameter(Mandatory = true, ParameterSetName = "Id", ValueFromPipelineByPropertyName = true)]
    public int[]? Id { get; set; }

    protected override void ProcessRecord() => RunForItem(new GetGpuModelOperation { Name = Name, Id = Id });
}

/// <summary>Completes -Name with the names of the loaded models.</summary>
public sealed class LoadedModelNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        System.Management.Automation.Language.CommandAst commandAst, System.Collections.IDictionary fakeBoundParameters) =>
        GpuModelHandle.All.Select(m => m.Name).Distinct(StringComparer.OrdinalIgnoreCase)
            .Where(n => n.StartsWith(wordToComplete ?? string.Empty, StringComparison.OrdinalIgnoreCase))
            .Select(n => new CompletionResult(n.Contains(' ') ? $"'{n}'" : n, n, CompletionResultType.ParameterValue, n));
}
