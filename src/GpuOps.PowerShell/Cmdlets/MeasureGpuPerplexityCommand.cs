using System.Management.Automation;
using GpuOps.Core.Engine;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Measures a model's perplexity on a text file: paragraphs (split on blank lines) encoded with BOS and followed by EOS, non-overlapping windows of -Context tokens.</para>
/// <para type="description">Tokens after the last whole window are dropped and every token after the first of a window is scored; perplexity is exp(total negative log-likelihood / scored tokens), the procedure of tests/data/README.md. Writes one GpuPerplexityResult (Ppl, scored Tokens, Windows, StreamTokens, NegativeLogLikelihood, time and tokens/s; Subset when -MaxWindows cut it short). A model given as a path is loaded on the CPU for this command and freed afterwards. Errors (a missing file, a removed model) are non-terminating, per model piped in.</para>
/// </summary>
/// <example><code>Import-GpuModel ./tests/data/fortune-llama | Measure-GpuPerplexity -Path ./tests/data/fortune-corpus/test.txt -Context 256</code>Scores the fixture model on the test corpus in 256-token windows (perplexity about 80.07).</example>
/// <example><code>Measure-GpuPerplexity ./tests/data/fortune-llama-gguf/fortune-llama-q4_k_m.gguf ./tests/data/fortune-corpus/test.txt -MaxWindows 20</code>Estimates the perplexity of a quantized GGUF file quickly from the first 20 windows.</example>
[Cmdlet(VerbsDiagnostic.Measure, "GpuPerplexity")]
[OutputType(typeof(GpuPerplexityResult))]
public sealed class MeasureGpuPerplexityCommand : GpuOpsCmdlet
{
    /// <summary><para type="description">A model handle from Import-GpuModel (handles piped in bind here), or the path of a model directory or .gguf file (text, or a folder or file object from Get-Item or Get-ChildItem), which is loaded on the CPU for this command and freed after it. Text that names no file or folder but the name of a model loaded in this session (Get-GpuModel) stands for that loaded model.</para></summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    [ValidateNotNull]
    [ModelTransformation]
    public GpuModelHandle Model { get; set; } = null!;

    /// <summary><para type="description">The text file to score, read as UTF-8. Files from Get-Item bind by their FullName.</para></summary>
    [Parameter(Mandatory = true, Position = 1, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = string.Empty;

    /// <summary><para type="description">Window length in tokens (default 256, at least 2). Windows do not overlap; the tokens left over after the last whole window are not scored.</para></summary>
    [Parameter]
    [ValidateRange(2, 1 << 20)]
    public int Context { get; set; } = 256;

    /// <summary><para type="description">Score only the first N windows, for a quick estimate; the result's Subset is true when that leaves windows unscored. By default every window is scored.</para></summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int? MaxWindows { get; set; }

    private bool _pathGiven;

    protected override void BeginProcessing() => _pathGiven = MyInvocation.BoundParameters.ContainsKey(nameof(Path));

    protected override void ProcessRecord()
    {
        // A piped handle has a Path property too (the model's folder), which -Path would take by property name.
        if (!_pathGiven && string.Equals(Path, Model.Path, StringComparison.Ordinal))
        {
            ThrowTerminatingError(CmdletHost.ToErrorRecord(new GpuOps.Core.Hosting.OperationError("TextFileRequired",
                GpuOps.Core.Hosting.ErrorCategory.InvalidArgument,
                $"Give -Path, the text file to score: without it, -Path took the piped model's own path ({Model.Path}).", Model)));
        }

        RunForItem(new MeasureGpuPerplexityOperation { Model = Model.IsPathOnly ? null : Model, ModelPath = Model.IsPathOnly ? GetUnresolvedProviderPathFromPSPath(Model.Path) : null, Path = GetUnresolvedProviderPathFromPSPath(Path), Context = Context, MaxWindows = MaxWindows });
    }
}
