using System.Management.Automation;
using GpuOps.Core.Models;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Describes a model directory (config.json + safetensors) or a .gguf file without loading its weights.</para>
/// <para type="description">Architecture, parameter count, dtypes, file size, bytes of weights, KV-cache bytes per 1,000 tokens and the tokenizer kind, read from headers and metadata only. Writes one ModelInfo per path; a path that is not a model is a non-terminating error and the next path is read. Needs no GPU.</para>
/// </summary>
/// <example><code>Get-GpuModelInfo ./tests/data/fortune-llama</code>Describes the fixture model directory: architecture, shape, parameters and sizes.</example>
/// <example><code>Get-ChildItem ./tests/data/fortune-llama-gguf/*.gguf | Get-GpuModelInfo | Sort-Object WeightBytes | Format-Table Path, DTypes, WeightBytes</code>Compares the quantized GGUF files of the fixture model by the bytes their weights take.</example>
[Cmdlet(VerbsCommon.Get, "GpuModelInfo")]
[OutputType(typeof(ModelInfo))]
public sealed class GetGpuModelInfoCommand : GpuOpsCmdlet
{
    /// <summary><para type="description">Model directories (config.json and *.safetensors, sharded or not) or .gguf files; a .safetensors file stands for its folder. Wildcards expand to the matching files and folders (./models/*.gguf); a name that exists as given is taken literally. Files from Get-ChildItem bind by their FullName.</para></summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName", "Model")]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[] Path { get; set; } = [];

    /// <summary><para type="description">Bytes per KV-cache element used to compute KvCacheBytesPer1kTokens: 2 (the default) for fp16/bf16 caches, 1 for 8-bit, 4 for float32.</para></summary>
    [Parameter]
    [ValidateRange(1, 4)]
    public int KvCacheElementSize { get; set; } = 2;

    protected override void ProcessRecord()
    {
        foreach (var p in Path.SelectMany(ResolvePathArgument))
        {
            RunForItem(new GetModelInfoOperation { Path = p, KvCacheElementSize = KvCacheElementSize });
        }
    }
}
