using System.Management.Automation;
using GpuOps.Core.Engine;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Loads a model (a Hugging Face directory or a .gguf file) onto a device and returns a live handle (GpuModelHandle).</para>
/// <para type="description">The handle holds the weights in memory until Remove-GpuModel frees it. Pass it to Invoke-GpuInference, Measure-GpuPerplexity and Measure-GpuInference.</para>
/// <para type="description">Models of the llama, mistral and qwen2 families load on the CPU engine (float32) or, with -Device cuda, onto an NVIDIA GPU (bfloat16); progress is shown while the weights load. An unsupported device or dtype (e.g. -Device cuda on a machine without a GPU, or without the CUDA engine) stops the command before any path is read; a path that cannot be loaded is an error for that path and the next piped path is loaded. Loading is a ShouldProcess operation (ConfirmImpact Low), so -WhatIf loads nothing.</para>
/// </summary>
/// <example><code>$m = Import-GpuModel ./tests/data/fortune-llama
/// $m | Invoke-GpuInference -Prompt 'A fortune:' -MaxTokens 32</code>Loads the fixture model on the CPU, keeps the handle in $m and generates text with it.</example>
/// <example><code>Import-GpuModel ./tests/data/fortune-llama-gguf/fortune-llama-q4_k_m.gguf -Device auto</code>Loads a quantized GGUF file on the first CUDA GPU where a GPU and the CUDA engine are present, otherwise on the CPU.</example>
[Cmdlet(VerbsData.Import, "GpuModel", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(GpuModelHandle))]
public sealed class ImportGpuModelCommand : GpuOpsCmdlet
{
    /// <summary><para type="description">The model to load: a Hugging Face model directory (config.json, *.safetensors, tokenizer.json) or a .gguf file. Paths are resolved against the current PowerShell location; wildcards load every match (a name that exists as given is taken literally); files from Get-ChildItem bind by property name.</para></summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName", "PSPath")]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = string.Empty;

    /// <summary><para type="description">Where to load the model: cpu (the default), cuda (GPU 0), cuda:N (CUDA device N) or auto (CUDA GPU 0 when a GPU and the CUDA engine are present, otherwise the CPU, with a warning when GPUs are present but the engine is not).</para></summary>
    [Parameter]
    [ValidatePattern(@"^(?i)(auto|cpu|cuda(:\d+)?)$")]
    [ArgumentCompleter(typeof(DeviceCompleter))]
    public string Device { get; set; } = "cpu";

    /// <summary><para type="description">Compute dtype of the weights on the device. auto (the default) picks the engine's type: float32 on the CPU, bfloat16 on CUDA. The CPU engine accepts only float32 and the CUDA engine only bfloat16; any other value stops the command with an error.</para></summary>
    [Parameter]
    [ValidateSet("auto", "float32", "bfloat16")]
    public string DType { get; set; } = "auto";

    /// <summary>An unsupported device or dtype stops the command (terminating), before any path is read.</summary>
    protected override void BeginProcessing() => Run(new CheckInferenceDeviceOperation { Device = Device, DType = DType });

    protected override void ProcessRecord()
    {
        foreach (var p in ResolvePathArgument(Path))
            RunForItem(new ImportGpuModelOperation { Path = p, Device = Device, DType = DType });
    }
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
