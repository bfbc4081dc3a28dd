using System.Management.Automation;
using GpuOps.Core.Engine;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Generates text from prompts with a loaded model (or a model path). Prompts piped in run together as one batch.</para>
/// <para type="description">Writes one GpuInferenceResult per prompt (text, new token ids, token counts, time to first token, prefill and decode tokens/s; on a CUDA GPU with NVML, EnergyJoules for the whole batch and JoulesPerToken over its new tokens, null for runs under about 0.1 s),
/// or with -Stream one GpuInferenceToken per new token as it is produced. Temperature 0 (the default unless the model's generation_config samples) is greedy.</para>
/// <para type="description">Prompts are collected until the input ends and then generated together, one batch per model. A sequence ends at an EOS token (unless -IgnoreEos), at a -Stop string, after -MaxTokens new tokens or when its context is full; FinishReason says which. A model given as a path is loaded on the CPU for this command and freed afterwards. Errors (a removed model, a prompt longer than -MaxContext) are terminating.</para>
/// </summary>
/// <example><code>Import-GpuModel ./tests/data/fortune-llama | Invoke-GpuInference -Prompt 'A fortune:' -MaxTokens 32</code>Loads the fixture model and generates up to 32 tokens greedily.</example>
/// <example><code>'Love is', 'You will' | Invoke-GpuInference -Model ./tests/data/fortune-llama -MaxTokens 48 -Temperature 0.8 -TopP 0.95 -Seed 7</code>Samples continuations of two prompts as one batch, reproducibly thanks to the seed.</example>
/// <example><code>$m = Import-GpuModel ./tests/data/fortune-llama
/// $m | Invoke-GpuInference -Prompt 'Love is' -Stop "`n" -Stream | ForEach-Object { Write-Host -NoNewline $_.Text }</code>Prints the text token by token as it is generated, stopping at the first line break.</example>
[Cmdlet(VerbsLifecycle.Invoke, "GpuInference")]
[OutputType(typeof(GpuInferenceResult))]
[OutputType(typeof(GpuInferenceToken))]
public sealed class InvokeGpuInferenceCommand : GpuOpsCmdlet
{
    private readonly List<(GpuModelHandle Model, string Prompt)> _work = new();

    /// <summary><para type="description">A model handle from Import-GpuModel (handles piped in bind here), or the path of a model directory or .gguf file (text, or a folder or file object from Get-Item or Get-ChildItem), which is loaded on the CPU for this command and freed after it. Text that names no file or folder but the name of a model loaded in this session (Get-GpuModel) stands for that loaded model.</para></summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    [ValidateNotNull]
    [ModelTransformation]
    public GpuModelHandle Model { get; set; } = null!;

    /// <summary><para type="description">Prompt text, encoded with the tokenizer's special tokens (BOS). Several prompts, or prompts piped in, run together as one batch with one result each.</para></summary>
    [Parameter(Mandatory = true, Position = 1, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Text")]   // (ConvertTo-GpuToken's results bind by their Text)
    [AllowEmptyString]
    public string[] Prompt { get; set; } = Array.Empty<string>();

    /// <summary><para type="description">The most new tokens to generate per prompt (default 128). 0 generates nothing.</para></summary>
    [Parameter]
    [ValidateRange(0, 1_000_000)]
    public int MaxTokens { get; set; } = 128;

    /// <summary><para type="description">Sampling temperature; 0 is greedy (the most likely token every step). By default the model's generation_config.json decides: when it sets do_sample, its temperature (1.0 if it gives none), otherwise 0.</para></summary>
    [Parameter]
    [ValidateRange(0.0, 100.0)]
    public double? Temperature { get; set; }

    /// <summary><para type="description">When sampling, keep only the K most likely tokens (0 = no limit). The default is the model's generation_config.json top_k when it samples, otherwise no limit. Greedy decoding ignores it.</para></summary>
    [Parameter]
    [ValidateRange(0, int.MaxValue)]
    public int? TopK { get; set; }

    /// <summary><para type="description">Nucleus sampling: keep the smallest set of most likely tokens whose probabilities add up to P (more than 0, at most 1; 1 = off). The default is the model's generation_config.json top_p when it samples, otherwise 1. Greedy decoding ignores it.</para></summary>
    [Parameter]
    [ValidateRange(0.0, 1.0)]
    public double? TopP { get; set; }

    /// <summary><para type="description">Hugging Face's repetition penalty for tokens already in the prompt or the output: 1 is none, values above 1 discourage repeats (must be more than 0). It applies to greedy decoding too. The default is the model's generation_config.json repetition_penalty, otherwise 1.</para></summary>
    [Parameter]
    [ValidateRange(0.0, 100.0)]
    public double? RepetitionPenalty { get; set; }

    /// <summary><para type="description">Seed for sampling, so that a run can be repeated exactly (each sequence of a batch draws its own stream). Without it every sampled run differs; greedy decoding does not use it.</para></summary>
    [Parameter]
    public int? Seed { get; set; }

    /// <summary><para type="description">Strings that end a sequence: the text is cut before the first occurrence and FinishReason is stop.</para></summary>
    [Parameter]
    public string[] Stop { get; set; } = Array.Empty<string>();

    /// <summary><para type="description">Go on generating past EOS tokens (they stay in the ids) until -MaxTokens, a -Stop string or a full context.</para></summary>
    [Parameter]
    public SwitchParameter IgnoreEos { get; set; }

    /// <summary><para type="description">Write a GpuInferenceToken (Sequence, Index, TokenId, Text, IsLast, FinishReason) for each new token as it is produced, instead of one GpuInferenceResult per prompt at the end. The Text pieces of a sequence add up to its final text.</para></summary>
    [Parameter]
    public SwitchParameter Stream { get; set; }

    /// <summary><para type="description">KV-cache positions per sequence, prompt included. The default is the longest prompt's tokens plus -MaxTokens, capped at the model's maximum context (max_position_embeddings) but never below the longest prompt plus one. A prompt longer than a given -MaxContext is an error; a sequence that fills the context ends with FinishReason length.</para></summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int? MaxContext { get; set; }

    protected override void ProcessRecord()
    {
        ThrowIfModelTookTheTextsPlace(Model, Prompt, nameof(Prompt));
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
