using System.Management.Automation;
using GpuOps.Cuda.Bench;
using GpuOps.Nvml;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Finds the energy-optimal power limit: sweeps limits from the maximum down to the minimum, runs a workload at each, and chooses by objective.</para>
/// <para type="description">At each limit: warm-up runs, then measured runs in an energy window. The workload is a script block, whose throughput is the number its last output is (e.g. tokens/s), or else runs per second; or a built-in GPU workload (-Benchmark Memory or Gemm), whose throughput is GB/s or TFLOP/s. Each point says its ThroughputUnit. Objectives: MinEnergy, MinEnergyDelay, Cost (Zeus: η·E + (1−η)·MaxPower·T, -Eta) and MaxSlowdown (-Factor). Returns every point plus the choice; -Apply sets it. The limit in force before the sweep is restored whatever happens (exception, Ctrl+C); it is journaled first, so Restore-GpuPowerLimit undoes a killed sweep.</para>
/// <para type="description">Sweeps one GPU per call (-Uuid, else -Index, default GPU 0) and writes one PowerOptimizationResult (original and chosen limit, Applied, and Points with one PowerSweepPoint per limit). Changing limits needs root/Administrator (in containers: SYS_ADMIN). ConfirmImpact is High: PowerShell asks before the sweep and, with -Apply, again before setting the choice; -WhatIf shows the sweep without changing anything. Errors are terminating.</para>
/// </summary>
/// <example><code>$m = Import-GpuModel ./tests/data/fortune-llama -Device cuda
/// Optimize-GpuPowerLimit -Index 0 -ScriptBlock { ($m | Invoke-GpuInference -Prompt 'A fortune:' -MaxTokens 256 -IgnoreEos).DecodeTokensPerSecond } -WhatIf</code>Shows the sweep that would run on GPU 0, with decode tokens/s as the throughput, without changing any limit.</example>
/// <example><code>$m = Import-GpuModel ./tests/data/fortune-llama -Device cuda
/// $r = Optimize-GpuPowerLimit -Index 0 -ScriptBlock { ($m | Invoke-GpuInference -Prompt 'A fortune:' -MaxTokens 256 -IgnoreEos).DecodeTokensPerSecond } -Objective MaxSlowdown -Factor 1.05 -StepWatts 50 -Apply
/// $r.Points | Format-Table PowerLimitWatts, Throughput, EnergyPerWork, Chosen</code>After confirmation, sweeps GPU 0 in 50 W steps, sets the least-energy limit at most 5 % slower than the highest one (asking again), and shows every point.</example>
/// <example><code>Get-Gpu -Index 0 | Optimize-GpuPowerLimit -Benchmark Gemm -StepWatts 50 -WhatIf</code>Shows the sweep that would run bf16 matrix products (TFLOP/s) on GPU 0 at each limit from its maximum down in 50 W steps, without changing any limit. Without -WhatIf, the points show how much GEMM throughput each watt buys; -Benchmark Memory does the same for HBM-bound copies.</example>
[Cmdlet(VerbsCommon.Optimize, "GpuPowerLimit", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = "ScriptBlock")]
[OutputType(typeof(PowerOptimizationResult))]
public sealed class OptimizeGpuPowerLimitCommand : GpuOpsCmdlet
{
    /// <summary><para type="description">The workload, run in the current session for every warm-up and measured run at each limit. If its last output is a number (e.g. tokens/s), that is the run's throughput; otherwise runs per second are used.</para></summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = "ScriptBlock")]
    public ScriptBlock ScriptBlock { get; set; } = null!;

    /// <summary><para type="description">A built-in GPU workload to run instead of a script block: Memory (device-to-device copies of 1 GiB buffers, bandwidth-bound; throughput in GB/s) or Gemm (bf16 8192x8192x8192 matrix products with cuBLASLt, compute-bound; TFLOP/s). It is set up once on the GPU swept (found by its UUID, whatever CUDA_VISIBLE_DEVICES does) before the first limit is set, sized so one run lasts about 0.5 s, and freed afterwards. Tab completes the names; an unknown name is an error (BenchmarkNotFound). Needs CUDA.</para></summary>
    [Parameter(Mandatory = true, ParameterSetName = "Benchmark")]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(PowerSweepBenchmarkCompleter))]
    public string Benchmark { get; set; } = string.Empty;

    /// <summary><para type="description">Index of the GPU to sweep, as NVML numbers it (Get-Gpu's Index; default 0). Ignored when -Uuid is given. Objects with an Index or GpuIndex property bind by property name, one sweep per object.</para></summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("GpuIndex")]
    [ArgumentCompleter(typeof(GpuIndexCompleter))]
    [ValidateRange(0, 63)]
    public int Index { get; set; }

    /// <summary><para type="description">UUID of the GPU to sweep (as Get-Gpu shows it); it takes precedence over -Index. Objects with a Uuid property bind by property name.</para></summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(GpuUuidCompleter))]
    public string? Uuid { get; set; }

    /// <summary><para type="description">Watts between the limits tried (default 25). The sweep goes from -MaxWatts down to -MinWatts in these steps and always ends at -MinWatts.</para></summary>
    [Parameter]
    [ValidateRange(1.0, 5000.0)]
    public double StepWatts { get; set; } = 25;

    /// <summary><para type="description">The lowest limit tried, in watts (default: the GPU's minimum limit). It must lie within the GPU's allowed range.</para></summary>
    [Parameter]
    [ValidateRange(1.0, 5000.0)]
    public double? MinWatts { get; set; }

    /// <summary><para type="description">The highest limit tried, in watts, where the sweep starts (default: the GPU's maximum limit). It must lie within the GPU's allowed range and not below -MinWatts.</para></summary>
    [Parameter]
    [ValidateRange(1.0, 5000.0)]
    public double? MaxWatts { get; set; }

    /// <summary><para type="description">Unmeasured runs of the workload after each limit is set, before the measured runs (default 1).</para></summary>
    [Parameter]
    [ValidateRange(0, 1000)]
    public int WarmupRuns { get; set; } = 1;

    /// <summary><para type="description">Measured runs at each limit (default 3), inside one energy window; each point reports time and energy per run and the mean throughput.</para></summary>
    [Parameter]
    [ValidateRange(1, 1000)]
    public int Runs { get; set; } = 3;

    /// <summary><para type="description">How the limit is chosen: MinEnergy (the default; least energy per unit of work), MinEnergyDelay (least energy x time per unit of work), Cost (least η·E + (1−η)·MaxPower·T, weighted by -Eta) or MaxSlowdown (least energy among the limits at most -Factor times slower than the highest limit swept). Ties go to the higher limit.</para></summary>
    [Parameter]
    public PowerObjective Objective { get; set; } = PowerObjective.MinEnergy;

    /// <summary><para type="description">For -Objective MaxSlowdown: the largest slowdown accepted, as a factor of the time per unit of work at the highest limit swept (default 1.1, i.e. 10 % slower). Other objectives ignore it.</para></summary>
    [Parameter]
    [ValidateRange(1.0, 100.0)]
    public double Factor { get; set; } = 1.1;

    /// <summary><para type="description">For -Objective Cost: η, the weight of energy against time, from 0 (time only) to 1 (energy only); default 0.5. Other objectives ignore it.</para></summary>
    [Parameter]
    [ValidateRange(0.0, 1.0)]
    public double Eta { get; set; } = 0.5;

    /// <summary><para type="description">Set the chosen limit after the sweep (a second confirmation) and keep the journal entry, so Restore-GpuPowerLimit can return to the original. Without it the limit in force before the sweep is in force afterwards.</para></summary>
    [Parameter]
    public SwitchParameter Apply { get; set; }

    protected override void BeginProcessing()
    {
        PowerSweepBenchmarks.Register();
        base.BeginProcessing();
    }

    protected override void ProcessRecord()
    {
        var op = new OptimizePowerLimitOperation
        {
            Index = Index,
            Uuid = Uuid,
            StepWatts = StepWatts,
            MinWatts = MinWatts,
            MaxWatts = MaxWatts,
            WarmupRuns = WarmupRuns,
            Runs = Runs,
            Objective = Objective,
            Factor = Factor,
            Eta = Eta,
            Apply = Apply.IsPresent,
        };
        if (ParameterSetName == "Benchmark")
        {
            op.WorkloadName = Benchmark;
            op.WorkloadLookup = Benchmark;   // (looked up when the operation runs: an unknown name is a proper terminating error)
        }
        else
        {
            op.WorkloadName = "the script block";
            op.ThroughputUnit = "as returned";
            op.Workload = _ => Throughput(ScriptBlock.Invoke());
        }

        Run(op);
    }

    /// <summary>The script block's last output as a number (its throughput), or null.</summary>
    private static double? Throughput(System.Collections.ObjectModel.Collection<PSObject> output)
    {
        if (output.Count == 0 || output[output.Count - 1]?.BaseObject is not { } last) return null;
        return last switch
        {
            double d => d,
            float f => f,
            int i => i,
            long l => l,
            decimal m => (double)m,
            string s when double.TryParse(s, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var v) => v,
            _ => null,
        };
    }
}

/// <summary>Completes -Benchmark with the registered power-sweep workloads.</summary>
public sealed class PowerSweepBenchmarkCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        System.Management.Automation.Language.CommandAst commandAst, System.Collections.IDictionary fakeBoundParameters) =>
        Names().Where(n => n.StartsWith(wordToComplete ?? string.Empty, StringComparison.OrdinalIgnoreCase)).Select(n => new CompletionResult(n));

    private static IEnumerable<string> Names()
    {
        PowerSweepBenchmarks.Register();
        return PowerSweepWorkloads.Names;
    }
}
