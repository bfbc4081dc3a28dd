using System.Management.Automation;
using GpuOps.Core.Engine;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Loads a model (a Hugging Face directory or a .gguf file) onto a device and returns a live handle (GpuModelHandle).</para>
/// <para type="description">The handle holds the weights in memory until Remove-GpuModel frees it. Pass it to Invoke-GpuInference, Measure-GpuPerplexity and Measure-GpuInference.</para>
/// </summary>
[Cmdlet(VerbsData.Import, "GpuModel", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(GpuModelHandle))]
public sealed class ImportGpuModelCommand : GpuOpsCmdlet
{
    /// <summary>A model directory (config.json, *.safetensors, tokenizer.json) or a .gguf file.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName", "PSPath")]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = string.Empty;

    /// <summary>cpu, cuda, cuda:N or auto (CUDA when a GPU and the CUDA engine are present, otherwise the CPU).</summary>
    [Parameter]
    [ValidatePattern(@"^(?i)(auto|cpu|cuda(:\d+)?)$")]
    [ArgumentCompleter(typeof(DeviceCompleter))]
    public string Device { get; set; } = "cpu";

    /// <summary>Compute dtype of the weights on the device (the CPU engine computes in float32).</summary>
    [Parameter]
    [ValidateSet("auto", "float32", "bfloat16", "float16")]
    public string DType { get; set; } = "auto";

    /// <summary>An unsupported device or dtype stops the command (terminating), before any path is read.</summary>
    protected override void BeginProcessing() => Run(new CheckInferenceDeviceOperation { Device = Device, DType = DType });

    protected override void ProcessRecord() =>
        RunForItem(new ImportGpuModelOperation { Path = GetUnresolvedProviderPathFromPSPath(Path), Device = Device, DType = DType });
}

/// <summary>Completes -Device with cpu, auto, cuda and cuda:N for each CUDA GPU present (the driver's count).</summary>
public sealed class DeviceCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        System.Management.Automation.Language.CommandAst commandAst, System.Collections.IDictionary fakeBoundParameters)
    {
        int gpus = GpuOps.Core.Native.NativeProbe.CudaDevices(out _).Count;
        var all = new[] { "cpu", "auto", "cuda" }.Concat(Enumerable.Range(0, gpus).Select(i => $"cuda:{i}"));
        return all.Where(d => d.StartsWith(wordToComplete ?? string.Empty, StringComparison.OrdinalIgnoreCase))
            .Select(d => new CompletionResult(d, d, CompletionResultType.ParameterValue, d));
    }
}
