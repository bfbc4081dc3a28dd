using System.Management.Automation;
using GpuOps.Core.Engine;
using GpuOps.Core.Models;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Encodes text to token ids with a model's tokenizer, exactly as Hugging Face tokenizers do.</para>
/// <para type="description">Reads tokenizer.json from a model directory (or the tokenizer stored in a .gguf file), or uses the tokenizer of a model loaded with Import-GpuModel, and writes one TokenizationResult per text: the text, its Ids, the token strings (Tokens) and the Count. With the default, the post-processor template applies (BOS first), as tokenizer(text) does in transformers; -NoSpecialTokens leaves it out. Texts piped in are encoded one by one; an error (such as a missing tokenizer) is reported for that input and the command goes on.</para>
/// </summary>
/// <example><code>ConvertTo-GpuToken ./tests/data/fortune-llama 'You will be successful in your work.'</code>Encodes one sentence with the fixture model's tokenizer; the ids start with the BOS id 0.</example>
/// <example><code>Get-Content ./tests/data/fortune-corpus/test.txt | ConvertTo-GpuToken ./tests/data/fortune-llama -NoSpecialTokens | Measure-Object Count -Sum</code>Counts the tokens of every line of a text file, without special tokens.</example>
[Cmdlet(VerbsData.ConvertTo, "GpuToken")]
[OutputType(typeof(TokenizationResult))]
public sealed class ConvertToGpuTokenCommand : GpuOpsCmdlet
{
    /// <summary><para type="description">The tokenizer to use: a model handle from Import-GpuModel (its tokenizer), or the path of a model directory, a tokenizer.json file or a .gguf file (text, or a folder or file object from Get-Item or Get-ChildItem). Tokenizers read from disk are cached by path and modification time, so a pipeline of texts opens the file once. Text that names no file or folder but the name of a model loaded in this session (Get-GpuModel) stands for that loaded model.</para></summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Path", "ModelPath")]
    [ValidateNotNull]
    [ModelTransformation]
    public GpuModelHandle Model { get; set; } = null!;

    /// <summary><para type="description">The texts to encode, each into its own result. Empty strings are allowed. Strings piped in bind here.</para></summary>
    [Parameter(Mandatory = true, Position = 1, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [AllowEmptyString]
    public string[] Text { get; set; } = [];

    /// <summary><para type="description">Do not add the special tokens of the tokenizer's post-processor template (such as BOS), as tokenizer(text, add_special_tokens=False) does in transformers.</para></summary>
    [Parameter]
    public SwitchParameter NoSpecialTokens { get; set; }

    protected override void ProcessRecord()
    {
        ThrowIfModelTookTheTextsPlace(Model, Text, nameof(Text));
        RunForItem(new ConvertToTokenOperation
        {
            Model = Model.IsPathOnly ? GetUnresolvedProviderPathFromPSPath(Model.Path) : Model.Path,
            LoadedModel = Model.IsPathOnly ? null : Model,
            Text = Text,
            AddSpecialTokens = !NoSpecialTokens.IsPresent,
        });
    }
}
