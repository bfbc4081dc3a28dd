using System.Management.Automation;
using GpuOps.Cuda.Bench;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Benchmarks a GPU: memory bandwidth, cuBLASLt matrix products, launch overhead and GpuOps' kernel families.</para>
/// <para type="description">Each result states what ran, the size, the median/min/max time of many event-timed runs after
/// warm-up, the figure (GB/s or TFLOP/s), the peak it is compared with and where that peak comes from, the GPU's clocks,
/// temperature and power limit, and the driver and library versions. Failures are terminating errors.</para>
/// </summary>
[Cmdlet(VerbsLifecycle.Invoke, "GpuBenchmark")]
[OutputType(typeof(BenchmarkResult))]
public sealed class InvokeGpuBenchmarkCommand : GpuOpsCmdlet
{
    /// <summary>Suites to run (default Memory, Gemm, Launch).</summary>
    [Parameter(Position = 0)]
    [ValidateSet("Memory", "Gemm", "Launch", "Elementwise", "Norm", "Rope", "Attention", "Sampling", "Transpose", "Embedding", "All", IgnoreCase = true)]
    public string[] Suite { get; set; } = ["Memory", "Gemm", "Launch"];

    /// <summary>CUDA device ordinal (accepts Index from Get-Gpu objects).</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("Index")]
    [ValidateRange(0, 63)]
    public int Device { get; set; }

    /// <summary>Timed runs per measurement (the median is reported).</summary>
    [Parameter]
    [ValidateRange(3, 10000)]
    public int Repeats { get; set; } = 50;

    /// <summary>GEMM sizes (M = N = K).</summary>
    [Parameter]
    [ValidateRange(16, 65536)]
    public int[]? GemmSize { get; set; }

    /// <summary>GEMM dtypes: bf16, f16, tf32, f32, f8e4m3, i8.</summary>
    [Parameter]
    [ValidateSet("bf16", "f16", "tf32", "f32", "f8e4m3", "i8", IgnoreCase = true)]
    public string[]? GemmType { get; set; }

    /// <summary>Smaller sizes and fewer repeats.</summary>
    [Parameter]
    public SwitchParameter Quick { get; set; }

    /// <summary>Use the heuristic's first algorithm instead of timing its top candidates.</summary>
    [Parameter]
    public SwitchParameter NoAutotune { get; set; }

    protected override void ProcessRecord()
    {
        var suites = Suite.Any(s => s.Equals("All", StringComparison.OrdinalIgnoreCase))
            ? Enum.GetValues<BenchmarkSuite>()
            : Suite.Select(s => Enum.Parse<BenchmarkSuite>(s, true)).ToArray();
        Run(new InvokeBenchmarkOperation
        {
            Suite = suites,
            Device = Device,
            Repeats = Repeats,
            GemmSizes = GemmSize,
            GemmTypes = GemmType,
            Quick = Quick.IsPresent,
            Autotune = !NoAutotune.IsPresent,
        });
    }
}
