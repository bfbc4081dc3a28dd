using System.Management.Automation;
using GpuOps.Core.Models;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Describes a model directory (config.json + safetensors) or a .gguf file without loading its weights.</para>
/// <para type="description">Architecture, parameter count, dtypes, file size, bytes of weights, KV-cache bytes per 1,000 tokens and the tokenizer kind, read from headers and metadata only.</para>
/// </summary>
/// <example><code>Get-GpuModelInfo ./tests/data/fortune-llama</code></example>
/// <example><code>Get-ChildItem *.gguf | Get-GpuModelInfo | Sort-Object WeightBytes</code></example>
[Cmdlet(VerbsCommon.Get, "GpuModelInfo")]
[OutputType(typeof(ModelInfo))]
public sealed class GetGpuModelInfoCommand : GpuOpsCmdlet
{
    /// <summary><para type="description">Model directory or .gguf file.</para></summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName", "Model")]
    [ValidateNotNullOrEmpty]
    public string[] Path { get; set; } = [];

    /// <summary><para type="description">Bytes per KV-cache element (2 for fp16/bf16 caches, 1 for 8-bit).</para></summary>
    [Parameter]
    [ValidateRange(1, 4)]
    public int KvCacheElementSize { get; set; } = 2;

    protected override void ProcessRecord()
    {
        foreach (var p in Path)
        {
            RunForItem(new GetModelInfoOperation { Path = GetUnresolvedProviderPathFromPSPath(p), KvCacheElementSize = KvCacheElementSize });
        }
    }
}
