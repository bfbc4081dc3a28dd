using System.Management.Automation;
using GpuOps.Nvml;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Finds the energy-optimal power limit: sweeps limits from the maximum down to the minimum, runs a workload at each, and chooses by objective.</para>
/// <para type="description">At each limit: warm-up runs, then measured runs in an energy window. The workload's throughput is the number its last output is (e.g. tokens/s), or runs per second. Objectives: MinEnergy, MinEnergyDelay, Cost (Zeus: η·E + (1−η)·MaxPower·T, -Eta) and MaxSlowdown (-Factor). Returns every point plus the choice; -Apply sets it. The limit in force before the sweep is restored whatever happens (exception, Ctrl+C); it is journaled first, so Restore-GpuPowerLimit undoes a killed sweep.</para>
/// </summary>
[Cmdlet(VerbsCommon.Optimize, "GpuPowerLimit", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = "ScriptBlock")]
[OutputType(typeof(PowerOptimizationResult))]
public sealed class OptimizeGpuPowerLimitCommand : GpuOpsCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = "ScriptBlock")]
    public ScriptBlock ScriptBlock { get; set; } = null!;

    [Parameter(Mandatory = true, ParameterSetName = "Benchmark")]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(PowerSweepBenchmarkCompleter))]
    public string Benchmark { get; set; } = string.Empty;

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("GpuIndex")]
    [ArgumentCompleter(typeof(GpuIndexCompleter))]
    [ValidateRange(0, 63)]
    public int Index { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(GpuUuidCompleter))]
    public string? Uuid { get; set; }

    [Parameter]
    [ValidateRange(1.0, 5000.0)]
    public double StepWatts { get; set; } = 25;

    [Parameter]
    [ValidateRange(1.0, 5000.0)]
    public double? MinWatts { get; set; }

    [Parameter]
    [ValidateRange(1.0, 5000.0)]
    public double? MaxWatts { get; set; }

    [Parameter]
    [ValidateRange(0, 1000)]
    public int WarmupRuns { get; set; } = 1;

    [Parameter]
    [ValidateRange(1, 1000)]
    public int Runs { get; set; } = 3;

    [Parameter]
    public PowerObjective Objective { get; set; } = PowerObjective.MinEnergy;

    /// <summary>MaxSlowdown: the largest slowdown accepted (1.1 = 10 % slower than at the highest limit).</summary>
    [Parameter]
    [ValidateRange(1.0, 100.0)]
    public double Factor { get; set; } = 1.1;

    /// <summary>Cost: η, the weight of energy against time.</summary>
    [Parameter]
    [ValidateRange(0.0, 1.0)]
    public double Eta { get; set; } = 0.5;

    [Parameter]
    public SwitchParameter Apply { get; set; }

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
            op.Workload = PowerSweepWorkloads.Get(Benchmark);
        }
        else
        {
            op.WorkloadName = "the script block";
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

    private static IEnumerable<string> Names() => PowerSweepWorkloads.Names;
}
