using System.Management.Automation;
using GpuOps.Core.Engine;
using GpuOps.Core.Models;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Decodes token ids to text with a model's tokenizer (through its decoder chain, as Hugging Face does).</para>
/// </summary>
/// <example><code>ConvertFrom-GpuToken ./tests/data/fortune-llama -Id 0,479,447,309</code></example>
/// <example><code>ConvertTo-GpuToken ./model 'Hello' | ConvertFrom-GpuToken ./model</code></example>
[Cmdlet(VerbsData.ConvertFrom, "GpuToken")]
[OutputType(typeof(DetokenizationResult))]
public sealed class ConvertFromGpuTokenCommand : GpuOpsCmdlet
{
    /// <summary><para type="description">A model from Import-GpuModel (its tokenizer), or a model directory, tokenizer.json or .gguf file.</para></summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Path", "ModelPath")]
    [ValidateNotNull]
    public GpuModelHandle Model { get; set; } = null!;

    /// <summary><para type="description">Token ids (a TokenizationResult's Ids bind by property name).</para></summary>
    [Parameter(Mandatory = true, Position = 1, ValueFromPipelineByPropertyName = true)]
    [Alias("Ids")]
    public int[] Id { get; set; } = [];

    /// <summary><para type="description">Keep special tokens (BOS/EOS) in the text.</para></summary>
    [Parameter]
    public SwitchParameter KeepSpecialTokens { get; set; }

    protected override void ProcessRecord() => RunForItem(new ConvertFromTokenOperation
    {
        Model = Model.IsPathOnly ? GetUnresolvedProviderPathFromPSPath(Model.Path) : Model.Path,
        LoadedModel = Model.IsPathOnly ? null : Model,
        Ids = Id,
        SkipSpecialTokens = !KeepSpecialTokens.IsPresent,
    });
}
