using System.Management.Automation;
using GpuOps.Core.Engine;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Benchmarks a model: prefill tokens/s at prompt lengths and decode tokens/s at batch sizes, each decode figure beside its memory-bandwidth bound.</para>
/// <para type="description">Writes GpuInferenceBenchmark rows: one prefill row per -PromptLength (random tokens, batch 1, the second run of that shape timed), then one decode row per -BatchSize (-DecodeTokens greedy steps after a 16-token prompt per sequence). Decode rows carry BoundTokensPerSecond = batch x measured copy bandwidth / weight bytes read per step, and FractionOfBound; on the CUDA engine they also carry JoulesPerToken where NVML's energy counter can be read. A model given as a path is loaded on the CPU for this command and freed afterwards. An error stops the measurement of that model only (non-terminating).</para>
/// </summary>
/// <example><code>Import-GpuModel ./tests/data/fortune-llama -Device cuda | Measure-GpuInference</code>Measures the fixture model on GPU 0 at the default prompt lengths and batch sizes.</example>
/// <example><code>Measure-GpuInference ./tests/data/fortune-llama-gguf/fortune-llama-q4_k_m.gguf -PromptLength 32,256 -BatchSize 1,4 -DecodeTokens 64 | Format-Table</code>Loads a GGUF file on the CPU for this command and measures prefill at 32 and 256 tokens and decode at batch sizes 1 and 4.</example>
[Cmdlet(VerbsDiagnostic.Measure, "GpuInference")]
[OutputType(typeof(GpuInferenceBenchmark))]
public sealed class MeasureGpuInferenceCommand : GpuOpsCmdlet
{
    /// <summary><para type="description">A model handle from Import-GpuModel (handles piped in bind here), or the path of a model directory or .gguf file (text, or a folder or file object from Get-Item or Get-ChildItem), which is loaded on the CPU for this command and freed after it. Text that names no file or folder but the name of a model loaded in this session (Get-GpuModel) stands for that loaded model.</para></summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    [ValidateNotNull]
    [ModelTransformation]
    public GpuModelHandle Model { get; set; } = null!;

    /// <summary><para type="description">Prompt lengths in tokens at which prefill throughput is measured, one row each (default 32, 128 and 512).</para></summary>
    [Parameter]
    [ValidateRange(1, 1 << 20)]
    public int[] PromptLength { get; set; } = { 32, 128, 512 };

    /// <summary><para type="description">Numbers of sequences decoded together at which decode throughput is measured, one row each (default 1, 2, 4 and 8).</para></summary>
    [Parameter]
    [ValidateRange(1, 4096)]
    public int[] BatchSize { get; set; } = { 1, 2, 4, 8 };

    /// <summary><para type="description">Decode steps timed per batch size (default 32); each step produces one token per sequence.</para></summary>
    [Parameter]
    [ValidateRange(1, 100_000)]
    public int DecodeTokens { get; set; } = 32;

    /// <summary><para type="description">Size in MiB of the buffer copied to measure memory bandwidth, on the device the model runs on (default 256). 0 skips the measurement; decode rows then have no bound.</para></summary>
    [Parameter]
    [ValidateRange(0, 1 << 16)]
    public int CopyMiB { get; set; } = 256;

    protected override void ProcessRecord() =>
        RunForItem(new MeasureGpuInferenceOperation
        {
            Model = Model.IsPathOnly ? null : Model,
            ModelPath = Model.IsPathOnly ? GetUnresolvedProviderPathFromPSPath(Model.Path) : null,
            PromptLengths = PromptLength,
            BatchSizes = BatchSize,
            DecodeTokens = DecodeTokens,
            CopyBytes = (long)CopyMiB << 20,
        });
}
