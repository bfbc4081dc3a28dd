using System.Management.Automation;
using GpuOps.Cuda.Bench;

namespace GpuOps.PowerShell.Cmdlets;

/// <summary>
/// <para type="synopsis">Benchmarks a GPU: memory bandwidth, cuBLASLt matrix products, launch overhead and GpuOps' kernel families.</para>
/// <para type="description">Each result states what ran, the size, the median/min/max time of many event-timed runs after
/// warm-up, the figure (GB/s or TFLOP/s), the peak it is compared with and where that peak comes from, the GPU's clocks,
/// temperature and power limit, and the driver and library versions. Failures are terminating errors.</para>
/// <para type="description">Writes one BenchmarkResult per measurement as it completes; where NVML is available each also carries the energy per run and the average power. The suites run in a fixed order (Memory first) whatever order they are given in. Needs an NVIDIA GPU, its driver and the CUDA libraries the suites use (NVRTC for GpuOps' kernels, cuBLASLt for Gemm); without them the command stops with an error that names what is missing.</para>
/// </summary>
/// <example><code>Invoke-GpuBenchmark -Suite Memory,Gemm,Launch | Format-Table Suite, Name, DType, Size, Value, Unit, PercentOfPeak</code>Runs the default suites on GPU 0 and shows each figure beside its peak.</example>
/// <example><code>Invoke-GpuBenchmark -Suite All -Quick -Device 1 | Export-Csv bench.csv</code>Runs every suite, with smaller sizes and fewer runs, on CUDA device 1 and saves the results as CSV.</example>
/// <example><code>Invoke-GpuBenchmark -Suite Gemm -GemmSize 8192 -GemmType bf16,f8e4m3</code>Times bf16 and fp8 matrix products of 8192 x 8192 x 8192.</example>
[Cmdlet(VerbsLifecycle.Invoke, "GpuBenchmark")]
[OutputType(typeof(BenchmarkResult))]
public sealed class InvokeGpuBenchmarkCommand : GpuOpsCmdlet
{
    /// <summary><para type="description">The suites to run: Memory (device and host copies), Gemm (cuBLASLt matrix products), Launch (launch and graph-replay overhead), the kernel families Elementwise, Norm, Rope, Attention, Sampling, Transpose and Embedding, or All. The default is Memory, Gemm, Launch.</para></summary>
    [Parameter(Position = 0)]
    [ValidateSet("Memory", "Gemm", "Launch", "Elementwise", "Norm", "Rope", "Attention", "Sampling", "Transpose", "Embedding", "All", IgnoreCase = true)]
    public string[] Suite { get; set; } = ["Memory", "Gemm", "Launch"];

    /// <summary><para type="description">The CUDA device ordinal of the GPU to benchmark (default 0). Objects from Get-Gpu bind by their Index, which is NVML's numbering; it can differ from CUDA's when CUDA_VISIBLE_DEVICES is set or CUDA_DEVICE_ORDER is not PCI_BUS_ID, which is why such objects also bind -Uuid, which then decides.</para></summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("Index", "GpuIndex")]
    [ValidateRange(0, 63)]
    public int Device { get; set; }

    /// <summary><para type="description">The GPU by UUID, as Get-Gpu shows it: its CUDA ordinal is looked up, so objects piped from Get-Gpu, Get-GpuPowerLimit or Get-GpuTelemetry run on that GPU even where CUDA numbers the GPUs differently from NVML (CUDA_VISIBLE_DEVICES, CUDA_DEVICE_ORDER). Takes precedence over -Device.</para></summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(GpuUuidCompleter))]
    public string? Uuid { get; set; }

    /// <summary><para type="description">Timed runs per measurement (default 50, at least 3); the median is reported with the minimum and maximum. With -Quick at most 10 are used; GEMMs use at most 50 (30 at sizes of 8192 and above), and host copies, launch overhead, attention and sampling use their own fixed counts.</para></summary>
    [Parameter]
    [ValidateRange(3, 10000)]
    public int Repeats { get; set; } = 50;

    /// <summary><para type="description">Matrix sizes for the Gemm suite (M = N = K, 16 to 65536). The default is 4096 and 8192 (with -Quick: 2048 and 4096); when several sizes are given without -Quick, f32 is timed only at sizes up to 4096.</para></summary>
    [Parameter]
    [ValidateRange(16, 65536)]
    public int[]? GemmSize { get; set; }

    /// <summary><para type="description">Data types for the Gemm suite: bf16, f16, tf32 (f32 data on tensor cores), f32, f8e4m3 (fp8, compute capability 8.9 or later; skipped with a warning on older GPUs) and i8. The default is all six.</para></summary>
    [Parameter]
    [ValidateSet("bf16", "f16", "tf32", "f32", "f8e4m3", "i8", IgnoreCase = true)]
    public string[]? GemmType { get; set; }

    /// <summary><para type="description">A quick run: smaller sizes (e.g. a 256 MiB instead of 1 GiB copy, GEMMs at 2048 and 4096), at most 10 timed runs and 2 warm-up runs per measurement.</para></summary>
    [Parameter]
    public SwitchParameter Quick { get; set; }

    /// <summary><para type="description">For GEMMs, use the cuBLASLt heuristic's first algorithm instead of timing its top candidates and keeping the fastest (the default).</para></summary>
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
            Uuid = Uuid,
            Repeats = Repeats,
            GemmSizes = GemmSize,
            GemmTypes = GemmType,
            Quick = Quick.IsPresent,
            Autotune = !NoAutotune.IsPresent,
        });
    }
}
