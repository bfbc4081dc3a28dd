using System.Management.Automation;
using GpuOps.Core.Engine;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Benchmarks a model: prefill tokens/s at prompt lengths and decode tokens/s at batch sizes, each decode figure beside its memory-bandwidth bound.</para>
/// </summary>
[Cmdlet(VerbsDiagnostic.Measure, "GpuInference")]
[OutputType(typeof(GpuInferenceBenchmark))]
public sealed class MeasureGpuInferenceCommand : GpuOpsCmdlet
{
    /// <summary>A handle from Import-GpuModel, or a model path.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    [ValidateNotNull]
    public GpuModelHandle Model { get; set; } = null!;

    [Parameter]
    [ValidateRange(1, 1 << 20)]
    public int[] PromptLength { get; set; } = { 32, 128, 512 };

    [Parameter]
    [ValidateRange(1, 4096)]
    public int[] BatchSize { get; set; } = { 1, 2, 4, 8 };

    /// <summary>Decode steps timed per batch size.</summary>
    [Parameter]
    [ValidateRange(1, 100_000)]
    public int DecodeTokens { get; set; } = 32;

    /// <summary>MiB copied to measure memory bandwidth (0 = skip; the bound is then not given).</summary>
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
