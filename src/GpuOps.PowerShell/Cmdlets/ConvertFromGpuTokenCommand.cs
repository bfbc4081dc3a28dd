using System.Management.Automation;
using GpuOps.Core.Engine;
using GpuOps.Core.Models;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Decodes token ids to text with a model's tokenizer (through its decoder chain, as Hugging Face does).</para>
/// <para type="description">Reads tokenizer.json from a model directory (or the tokenizer stored in a .gguf file), or uses the tokenizer of a model loaded with Import-GpuModel, and writes one DetokenizationResult (Ids, Text) per input. Special tokens such as BOS and EOS are left out of the text unless -KeepSpecialTokens is given, as decode(ids, skip_special_tokens=True) does in transformers. An id outside the vocabulary is an error for that input; the command goes on with the next.</para>
/// </summary>
/// <example><code>ConvertFrom-GpuToken ./tests/data/fortune-llama -Id 0,479,447,309</code>Decodes four ids with the fixture model's tokenizer; the BOS id 0 is dropped, so the text is "You will be".</example>
/// <example><code>ConvertTo-GpuToken ./tests/data/fortune-llama 'A fortune:' | ConvertFrom-GpuToken ./tests/data/fortune-llama -KeepSpecialTokens</code>Encodes a text and decodes its ids again (they bind by the Ids property), keeping the BOS token in the text.</example>
[Cmdlet(VerbsData.ConvertFrom, "GpuToken")]
[OutputType(typeof(DetokenizationResult))]
public sealed class ConvertFromGpuTokenCommand : GpuOpsCmdlet
{
    /// <summary><para type="description">The tokenizer to use: a model handle from Import-GpuModel (its tokenizer), or the path of a model directory, a tokenizer.json file or a .gguf file (text, or a folder or file object from Get-Item or Get-ChildItem). Tokenizers read from disk are cached by path and modification time. Text that names no file or folder but the name of a model loaded in this session (Get-GpuModel) stands for that loaded model.</para></summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Path", "ModelPath")]
    [ValidateNotNull]
    [ModelTransformation]
    public GpuModelHandle Model { get; set; } = null!;

    /// <summary><para type="description">The token ids to decode, as one sequence. The Ids property of ConvertTo-GpuToken and Invoke-GpuInference results binds by property name.</para></summary>
    [Parameter(Mandatory = true, Position = 1, ValueFromPipelineByPropertyName = true)]
    [Alias("Ids")]
    public int[] Id { get; set; } = [];

    /// <summary><para type="description">Keep special tokens (such as BOS and EOS) in the text. By default they are left out.</para></summary>
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
