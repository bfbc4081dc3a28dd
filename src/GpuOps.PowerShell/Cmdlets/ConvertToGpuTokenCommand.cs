using System.Management.Automation;
using GpuOps.Core.Engine;
using GpuOps.Core.Models;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Encodes text to token ids with a model's tokenizer, exactly as Hugging Face tokenizers do.</para>
/// <para type="description">Reads tokenizer.json from a model directory (or the tokenizer stored in a .gguf file). With the default, the post-processor template applies (BOS first), as tokenizer(text) does in transformers.</para>
/// </summary>
/// <example><code>ConvertTo-GpuToken ./tests/data/fortune-llama 'You will be successful in your work.'</code></example>
/// <example><code>Get-Content prompts.txt | ConvertTo-GpuToken ./model -NoSpecialTokens | Measure-Object Count -Sum</code></example>
[Cmdlet(VerbsData.ConvertTo, "GpuToken")]
[OutputType(typeof(TokenizationResult))]
public sealed class ConvertToGpuTokenCommand : GpuOpsCmdlet
{
    /// <summary><para type="description">A model from Import-GpuModel (its tokenizer), or a model directory, tokenizer.json or .gguf file.</para></summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Path", "ModelPath")]
    [ValidateNotNull]
    public GpuModelHandle Model { get; set; } = null!;

    /// <summary><para type="description">The text(s) to encode.</para></summary>
    [Parameter(Mandatory = true, Position = 1, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [AllowEmptyString]
    public string[] Text { get; set; } = [];

    /// <summary><para type="description">Do not add the template's special tokens (BOS).</para></summary>
    [Parameter]
    public SwitchParameter NoSpecialTokens { get; set; }

    protected override void ProcessRecord() => RunForItem(new ConvertToTokenOperation
    {
        Model = Model.IsPathOnly ? GetUnresolvedProviderPathFromPSPath(Model.Path) : Model.Path,
        LoadedModel = Model.IsPathOnly ? null : Model,
        Text = Text,
        AddSpecialTokens = !NoSpecialTokens.IsPresent,
    });
}
