using System.Management.Automation;
using GpuOps.Core.Engine;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Generates text from prompts with a loaded model (or a model path). Prompts piped in run together as one batch.</para>
/// <para type="description">Writes one GpuInferenceResult per prompt (text, new token ids, token counts, time to first token, prefill and decode tokens/s),
/// or with -Stream one GpuInferenceToken per new token as it is produced. Temperature 0 (the default unless the model's generation_config samples) is greedy.</para>
/// </summary>
[Cmdlet(VerbsLifecycle.Invoke, "GpuInference")]
[OutputType(typeof(GpuInferenceResult))]
[OutputType(typeof(GpuInferenceToken))]
public sealed class InvokeGpuInferenceCommand : GpuOpsCmdlet
{
    private readonly List<(GpuModelHandle Model, string Prompt)> _work = new();

    /// <summary>A handle from Import-GpuModel, or a model path (loaded on the CPU for this command and freed after it).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    [ValidateNotNull]
    public GpuModelHandle Model { get; set; } = null!;

    /// <summary>Prompt text; several prompts (or prompts piped in) run together as one batch.</summary>
    [Parameter(Mandatory = true, Position = 1, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [AllowEmptyString]
    public string[] Prompt { get; set; } = Array.Empty<string>();

    [Parameter]
    [ValidateRange(0, 1_000_000)]
    public int MaxTokens { get; set; } = 128;

    /// <summary>0 = greedy.</summary>
    [Parameter]
    [ValidateRange(0.0, 100.0)]
    public double? Temperature { get; set; }

    [Parameter]
    [ValidateRange(0, int.MaxValue)]
    public int? TopK { get; set; }

    [Parameter]
    [ValidateRange(0.0, 1.0)]
    public double? TopP { get; set; }

    [Parameter]
    [ValidateRange(0.0, 100.0)]
    public double? RepetitionPenalty { get; set; }

    [Parameter]
    public int? Seed { get; set; }

    /// <summary>Strings that end a sequence (the text is cut before them).</summary>
    [Parameter]
    public string[] Stop { get; set; } = Array.Empty<string>();

    /// <summary>Go on past EOS tokens.</summary>
    [Parameter]
    public SwitchParameter IgnoreEos { get; set; }

    /// <summary>Write each new token as it is produced.</summary>
    [Parameter]
    public SwitchParameter Stream { get; set; }

    /// <summary>KV cache positions per sequence (default: longest prompt + MaxTokens).</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int? MaxContext { get; set; }

    protected override void ProcessRecord()
    {
        foreach (var p in Prompt) _work.Add((Model, p));
    }

    protected override void EndProcessing()
    {
        foreach (var group in _work.GroupBy(w => w.Model))
        {
            Run(new InvokeGpuInferenceOperation
            {
                Model = group.Key.IsPathOnly ? null : group.Key,
                ModelPath = group.Key.IsPathOnly ? GetUnresolvedProviderPathFromPSPath(group.Key.Path) : null,
                Prompts = group.Select(g => g.Prompt).ToList(),
                MaxTokens = MaxTokens,
                Temperature = Temperature,
                TopK = TopK,
                TopP = TopP,
                RepetitionPenalty = RepetitionPenalty,
                Seed = Seed,
                Stop = Stop,
                IgnoreEos = IgnoreEos,
                Stream = Stream,
                MaxContext = MaxContext,
            });
        }
    }
}
