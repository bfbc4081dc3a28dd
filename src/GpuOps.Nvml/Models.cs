namespace GpuOps.Nvml;

// Result objects of the hardware operations: plain data (records of simple properties) so they survive
// remoting, Export-Csv and ConvertTo-Json. Nullable values are what this GPU/driver does not report.

/// <summary>One GPU (Get-Gpu / gpuops gpu list).</summary>
public sealed record GpuInfo(
    int Index,
    string Name,
    string Uuid,
    string? PciBusId,
    string? DriverVersion,
    string? CudaDriverVersion,
    string? ComputeCapability,
    long? MemoryTotalBytes,
    long? MemoryUsedBytes,
    long? MemoryFreeBytes,
    double? PowerLimitWatts,
    double? DefaultPowerLimitWatts,
    double? MinPowerLimitWatts,
    double? MaxPowerLimitWatts,
    double? EnforcedPowerLimitWatts,
    int? SmClockMHz,
    int? MaxSmClockMHz,
    int? MemoryClockMHz,
    int? MaxMemoryClockMHz,
    int? TemperatureC,
    bool? PersistenceMode,
    bool? MigMode,
    bool? EccEnabled);

/// <summary>A process using a GPU (Get-GpuProcess / gpuops gpu processes).</summary>
public sealed record GpuProcessInfo(
    int GpuIndex,
    string Uuid,
    int ProcessId,
    string? ProcessName,
    long? UsedMemoryBytes,
    string Type,
    int? GpuInstanceId,
    int? ComputeInstanceId);

/// <summary>
/// One telemetry sample of one GPU. <see cref="PowerInstantWatts"/> is NVML_FI_DEV_POWER_INSTANT;
/// <see cref="PowerAverageWatts"/> is NVML_FI_DEV_POWER_AVERAGE (a ~1 s average), or nvmlDeviceGetPowerUsage where
/// field values are unsupported. <see cref="EnergyJoules"/> is the driver's cumulative counter (since driver load).
/// </summary>
public sealed record GpuTelemetrySample(
    DateTimeOffset Timestamp,
    double ElapsedSeconds,
    int GpuIndex,
    string Uuid,
    double? PowerInstantWatts,
    double? PowerAverageWatts,
    double? EnergyJoules,
    int? TemperatureC,
    int? GpuUtilizationPercent,
    int? MemoryUtilizationPercent,
    long? MemoryUsedBytes,
    int? SmClockMHz,
    int? MemoryClockMHz,
    string ClockEventReasons,
    long? ClockEventReasonsMask);

/// <summary>Cadence and cost of a telemetry stream (Get-GpuTelemetry -Statistics / gpuops telemetry --stats).</summary>
public sealed record TelemetryStreamStatistics(
    int GpuCount,
    double IntervalMilliseconds,
    double TargetHz,
    long Ticks,
    long Samples,
    long MissedTicks,
    double WallSeconds,
    double AchievedHz,
    double SampleCostMeanMs,
    double SampleCostP50Ms,
    double SampleCostP99Ms,
    double SampleCostMaxMs,
    double JitterMeanMs,
    double JitterP50Ms,
    double JitterP99Ms,
    double JitterMaxMs,
    double DriftMs,
    double CpuPercentOfOneCore,
    string NvmlLibrary);

/// <summary>Energy of one GPU over a window. Method: "counter" (energy counter deltas) or "sampled" (integrated power).</summary>
public sealed record EnergyReading(
    int GpuIndex,
    string Uuid,
    double Joules,
    double Seconds,
    double AveragePowerWatts,
    double PeakPowerWatts,
    string Method);

/// <summary>Power limits of one GPU (Get-GpuPowerLimit; Set/Restore-GpuPowerLimit -PassThru).</summary>
public sealed record GpuPowerLimit(
    int GpuIndex,
    string Uuid,
    string Name,
    double PowerLimitWatts,
    double? DefaultWatts,
    double? MinWatts,
    double? MaxWatts,
    double? EnforcedWatts,
    double? JournaledOriginalWatts,
    bool? PersistenceMode);

/// <summary>One power limit of a sweep (Optimize-GpuPowerLimit), per measured run and per unit of work.</summary>
public sealed record PowerSweepPoint(
    int GpuIndex,
    string Uuid,
    double PowerLimitWatts,
    int Runs,
    double SecondsPerRun,
    double Throughput,
    double EnergyJoulesPerRun,
    double AveragePowerWatts,
    double EnergyPerWork,
    double TimePerWork,
    double EnergyDelayProduct,
    double Cost,
    string EnergyMethod,
    bool Chosen)
{
    /// <summary>The unit of <see cref="Throughput"/>: the workload's (GB/s, TFLOP/s, "as returned" for a script's number) or runs/s.</summary>
    public string ThroughputUnit { get; init; } = "runs/s";
}

/// <summary>The outcome of a sweep: every point plus the choice.</summary>
public sealed record PowerOptimizationResult(
    int GpuIndex,
    string Uuid,
    string Objective,
    double? Factor,
    double? Eta,
    double OriginalWatts,
    double ChosenWatts,
    bool Applied,
    IReadOnlyList<PowerSweepPoint> Points)
{
    /// <summary>What ran at each limit: the registered benchmark's name, the script block or the command line.</summary>
    public string Workload { get; init; } = "";
}

/// <summary>What an export wrote.</summary>
public sealed record TelemetryExportResult(string Path, string Format, int SamplesWritten);
