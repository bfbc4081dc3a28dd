using System.Management.Automation;
using GpuOps.Core.Engine;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Lists the models loaded in this session (Import-GpuModel) and not yet removed.</para>
/// <para type="description">By name (wildcards) or by handle id; without either, every loaded model in load order. The handles are the live objects Import-GpuModel returned, so Get-GpuModel | Remove-GpuModel frees them all. A name without wildcards or an id that matches no loaded model is a non-terminating error; a wildcard pattern that matches nothing returns nothing.</para>
/// </summary>
/// <example><code>Get-GpuModel</code>Lists every model loaded in this session, with its id, device, dtype and size.</example>
/// <example><code>Get-GpuModel fortune* | Remove-GpuModel</code>Frees every loaded model whose name starts with "fortune".</example>
/// <example><code>Get-GpuModel -Id 1 | Invoke-GpuInference -Prompt 'A fortune:' -MaxTokens 32</code>Generates text with the model whose handle id is 1.</example>
[Cmdlet(VerbsCommon.Get, "GpuModel", DefaultParameterSetName = "Name")]
[OutputType(typeof(GpuModelHandle))]
public sealed class GetGpuModelCommand : GpuOpsCmdlet
{
    /// <summary><para type="description">Names of loaded models (the model's folder or file name, as in the Name column), compared case-insensitively; wildcards (* ? [ ]) are allowed. Without -Name and -Id every loaded model is listed.</para></summary>
    [Parameter(Position = 0, ParameterSetName = "Name")]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(LoadedModelNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[]? Name { get; set; }

    /// <summary><para type="description">Handle ids of loaded models (the Id column). Objects with an Id property bind by property name.</para></summary>
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
            .Where(n => n.StartsWith((wordToComplete ?? string.Empty).Trim('\'', '"'), StringComparison.OrdinalIgnoreCase))
            .Select(n => new CompletionResult(Quote(WildcardPattern.Escape(n)), n, CompletionResultType.ParameterValue, n));

    // (-Name takes wildcards: [ ] * ? escaped; quoted where the name has spaces or quotes)
    private static string Quote(string s) =>
        s.IndexOfAny([' ', '\'', '"', '`', '$', ';', '(', ')', '{', '}', '&', '|', '@', ',']) >= 0 ? "'" + s.Replace("'", "''") + "'" : s;
}
