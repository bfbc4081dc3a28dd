using System.Management.Automation;
using GpuOps.Core.Engine;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Measures a model's perplexity on a text file: paragraphs (split on blank lines) encoded with BOS and followed by EOS, non-overlapping windows of -Context tokens.</para>
/// </summary>
[Cmdlet(VerbsDiagnostic.Measure, "GpuPerplexity")]
[OutputType(typeof(GpuPerplexityResult))]
public sealed class MeasureGpuPerplexityCommand : GpuOpsCmdlet
{
    /// <summary>A handle from Import-GpuModel, or a model path.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    [ValidateNotNull]
    public GpuModelHandle Model { get; set; } = null!;

    /// <summary>The text file.</summary>
    [Parameter(Mandatory = true, Position = 1, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = string.Empty;

    /// <summary>Window length in tokens.</summary>
    [Parameter]
    [ValidateRange(2, 1 << 20)]
    public int Context { get; set; } = 256;

    /// <summary>Score only the first N windows (a quick estimate).</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int? MaxWindows { get; set; }

    protected override void ProcessRecord() =>
        RunForItem(new MeasureGpuPerplexityOperation { Model = Model.IsPathOnly ? null : Model, ModelPath = Model.IsPathOnly ? GetUnresolvedProviderPathFromPSPath(Model.Path) : null, Path = GetUnresolvedProviderPathFromPSPath(Path), Context = Context, MaxWindows = MaxWindows });
}
