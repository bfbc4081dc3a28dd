namespace GpuOps.Cuda.Bench;

/// <summary>
/// One benchmark measurement (plain data: survives remoting and Export-Csv). Times are device-event times per run:
/// median, min and max over <see cref="Repeats"/> timed runs after warm-up. <see cref="Value"/> is in
/// <see cref="Unit"/> (GB/s counting every byte read and written once, TFLOP/s counting 2·M·N·K, or µs);
/// <see cref="PercentOfPeak"/> is Value over <see cref="PeakValue"/>, whose basis <see cref="PeakBasis"/> says
/// (the device copy measured in this run, or a dense datasheet rate). Energy fields stay empty without an NVML window.
/// </summary>
public sealed record BenchmarkResult
{
    public string Suite { get; init; } = "";
    public string Name { get; init; } = "";
    /// <summary>What ran: the call or kernel, e.g. "cuMemcpyDtoDAsync" or "cublasLtMatmul bf16 NN".</summary>
    public string Operation { get; init; } = "";
    public string DType { get; init; } = "";
    /// <summary>Shape or size, e.g. "8192x8192x8192" or "1.00 GiB".</summary>
    public string Size { get; init; } = "";
    public long Bytes { get; init; }
    public double Flops { get; init; }
    public int Repeats { get; init; }
    public double MedianMs { get; init; }
    public double MinMs { get; init; }
    public double MaxMs { get; init; }
    public string Unit { get; init; } = "";
    public double Value { get; init; }
    public double? PercentOfPeak { get; init; }
    public double? PeakValue { get; init; }
    public string PeakBasis { get; init; } = "";
    public double? EnergyJoulesPerRun { get; init; }
    public double? JoulesPerGB { get; init; }
    public double? JoulesPerTFLOP { get; init; }
    public double? AveragePowerWatts { get; init; }
    public string? EnergyMethod { get; init; }
    public int GpuIndex { get; init; }
    public string GpuName { get; init; } = "";
    public string? GpuUuid { get; init; }
    public string ComputeCapability { get; init; } = "";
    public int? SmClockMHz { get; init; }
    public int? MemoryClockMHz { get; init; }
    public int? TemperatureC { get; init; }
    public double? PowerLimitWatts { get; init; }
    public string? DriverVersion { get; init; }
    public string CudaDriverVersion { get; init; } = "";
    public string? CublasLtVersion { get; init; }
    public string? NvrtcVersion { get; init; }
    public DateTime TimestampUtc { get; init; }
    public string Notes { get; init; } = "";
}

/// <summary>The suites of <c>Invoke-GpuBenchmark</c> / <c>gpuops bench</c>.</summary>
public enum BenchmarkSuite
{
    Memory, Gemm, Launch, Elementwise, Norm, Rope, Attention, Sampling, Transpose, Embedding,
}
