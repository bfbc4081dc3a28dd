using System.Management.Automation;
using GpuOps.Nvml;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Runs a script block and reports the energy each GPU used meanwhile (J), the elapsed time, average and peak power.</para>
/// <para type="description">Energy comes from the GPU's energy counter (resets handled) or, where it has none, from sampled power integrated over time (Method says which). The script block's output is discarded, as with Measure-Command.</para>
/// <para type="description">Writes one EnergyReading per GPU (GpuIndex, Uuid, Joules, Seconds, AveragePowerWatts, PeakPowerWatts, Method). GPUs piped in are collected first and the script block runs once, measured on all of them; without -Index, -Uuid or pipeline input every GPU is measured. When the script block fails, the readings up to the failure are written before its error. Without NVML (no NVIDIA driver) the command stops with an error before the script block runs.</para>
/// </summary>
/// <example><code>Measure-GpuEnergy -ScriptBlock { Invoke-GpuBenchmark -Suite Gemm -Quick } -Index 0</code>Runs a quick GEMM benchmark and reports the energy GPU 0 used meanwhile.</example>
/// <example><code>$m = Import-GpuModel ./tests/data/fortune-llama -Device cuda:1
/// Get-Gpu -Index 1 | Measure-GpuEnergy { $m | Invoke-GpuInference -Prompt 'A fortune:' -MaxTokens 512 -IgnoreEos } -SampleInterval 00:00:00.005</code>Measures the energy GPU 1 uses to generate 512 tokens, sampling its power every 5 ms for the peak.</example>
[Cmdlet(VerbsDiagnostic.Measure, "GpuEnergy")]
[OutputType(typeof(EnergyReading))]
public sealed class MeasureGpuEnergyCommand : GpuOpsCmdlet
{
    private readonly List<int> _indices = new();
    private readonly List<string> _uuids = new();

    /// <summary><para type="description">The work to measure. It runs once, in the current session; its output is discarded.</para></summary>
    [Parameter(Mandatory = true, Position = 0)]
    public ScriptBlock ScriptBlock { get; set; } = null!;

    /// <summary><para type="description">Indices of the GPUs to measure, as NVML numbers them (Get-Gpu's Index). Objects with an Index or GpuIndex property bind by property name. Without -Index and -Uuid every GPU is measured.</para></summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("GpuIndex")]
    [ArgumentCompleter(typeof(GpuIndexCompleter))]
    [ValidateRange(0, 63)]
    [ValidateCount(1, 64)]   // (an empty array would mean every GPU)
    public int[]? Index { get; set; }

    /// <summary><para type="description">UUIDs of the GPUs to measure (as Get-Gpu shows them). Given together with -Index, the GPUs of both lists are measured. Objects with a Uuid property bind by property name.</para></summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ValidateCount(1, 64)]
    [ArgumentCompleter(typeof(GpuUuidCompleter))]
    public string[]? Uuid { get; set; }

    /// <summary><para type="description">Period of the background power sampler (default 20 ms, at least 1 ms). The sampler gives PeakPowerWatts, and the energy of GPUs that have no energy counter.</para></summary>
    [Parameter]
    public TimeSpan? SampleInterval { get; set; }

    // GPUs piped in are collected: the script block runs once, measured on all of them.
    protected override void ProcessRecord()
    {
        if (Index is not null) _indices.AddRange(Index);
        if (Uuid is not null) _uuids.AddRange(Uuid);
    }

    protected override void EndProcessing()
    {
        var op = new MeasureEnergyOperation
        {
            Index = _indices.Count > 0 ? _indices.ToArray() : null,
            Uuid = _uuids.Count > 0 ? _uuids.ToArray() : null,
            Workload = _ => ScriptBlock.Invoke(),
        };
        if (SampleInterval is { } s) op.SampleInterval = s;
        Run(op);
    }
}
