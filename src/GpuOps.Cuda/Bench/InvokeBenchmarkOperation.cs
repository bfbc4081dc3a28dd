using System.Diagnostics;
using System.Runtime.InteropServices;
using GpuOps.Core.Compute;
using GpuOps.Core.Hosting;
using GpuOps.Core.Models;
using GpuOps.Core.Native;
using GpuOps.Cuda.Blas;
using GpuOps.Cuda.Compile;
using GpuOps.Cuda.Driver;
using static GpuOps.Cuda.Driver.CudaApi;

namespace GpuOps.Cuda.Bench;

/// <summary>
/// <c>Invoke-GpuBenchmark</c> / <c>gpuops bench</c>: memory, GEMM, launch and kernel-family benchmarks on one GPU,
/// timed as the device method says: warm-up first (module load, compilation and handle creation stay out), CUDA
/// events around each run, the median of many runs, sizes well past the L2 cache, inputs rotated between sets and
/// filled with random values (never zeros). Every failure is a terminating error.
/// </summary>
public sealed unsafe class InvokeBenchmarkOperation : IOperation
{
    public BenchmarkSuite[] Suite { get; set; } = [BenchmarkSuite.Memory, BenchmarkSuite.Gemm, BenchmarkSuite.Launch];

    public int Device { get; set; }

    /// <summary>
    /// The GPU by UUID (as NVML and Get-Gpu write it) instead of <see cref="Device"/>: its CUDA ordinal is looked up,
    /// which can differ from NVML's index (CUDA_VISIBLE_DEVICES, CUDA_DEVICE_ORDER).
    /// </summary>
    public string? Uuid { get; set; }


    /// <summary>Timed runs per measurement (the median is reported).</summary>
    public int Repeats { get; set; } = 50;

    public int Warmup { get; set; } = 5;

    /// <summary>Smaller sizes and fewer repeats (a smoke run).</summary>
    public bool Quick { get; set; }

    /// <summary>GEMM sizes (M = N = K); default 4096 and 8192.</summary>
    public int[]? GemmSizes { get; set; }

    /// <summary>GEMM dtypes; default bf16, f16, tf32, f32, f8e4m3 (Hopper/Ada), i8.</summary>
    public string[]? GemmTypes { get; set; }

    /// <summary>Time the heuristic's top algorithms and keep the fastest (as PyTorch's tunable ops would).</summary>
    public bool Autotune { get; set; } = true;

    private IOperationHost _host = null!;
    private CudaBackend _be = null!;
    private double? _copyPeak;
    private readonly List<BenchmarkResult> _results = new();
    private string? _cublasVersion, _nvrtcVersion;

    public IReadOnlyList<BenchmarkResult> Results => _results;

    /// <summary>The CUDA ordinal of the GPU with this UUID ("GPU-..." or its bare hex form, any case).</summary>
    public static int OrdinalOf(string uuid)
    {
        string want = uuid.Trim();
        if (!want.StartsWith("GPU-", StringComparison.OrdinalIgnoreCase)) want = "GPU-" + want;
        int n = CudaApi.DeviceCount();
        for (int i = 0; i < n; i++)
        {
            if (string.Equals(CudaApi.DeviceUuid(i), want, StringComparison.OrdinalIgnoreCase)) return i;
        }

        throw new GpuOpsException("GpuNotFound", ErrorCategory.ObjectNotFound,
            $"No CUDA device has UUID '{uuid}' ({n} visible).", uuid, null,
            "List the GPUs and their UUIDs with Get-Gpu (gpuops gpu list); CUDA_VISIBLE_DEVICES may hide the one you want.");
    }

    public void Execute(IOperationHost host)
    {
        _host = host;
        if (Repeats < 3) throw GpuOpsException.InvalidArgument("InvalidRepeats", "Repeats must be at least 3 (the median of fewer runs says little).");
        var suites = Suite.Distinct().OrderBy(s => s).ToList();
        if (!string.IsNullOrWhiteSpace(Uuid)) Device = OrdinalOf(Uuid);
        using var be = new CudaBackend(Device);
        _be = be;
        try { _cublasVersion = CublasLtMatmul.Version(); } catch (GpuOpsException) { }
        try { _nvrtcVersion = Nvrtc.Version(); } catch (GpuOpsException) { }
        host.WriteVerbose($"GPU {Device}: {be.Context.Name} (sm_{be.Context.Major}{be.Context.Minor}, {be.Context.MultiprocessorCount} SMs, L2 {be.Context.L2CacheBytes >> 20} MiB), CUDA driver {be.Context.DriverVersionText}, cuBLASLt {_cublasVersion}, NVRTC {_nvrtcVersion}");
        var progress = new ProgressReporter(host, 41, "GPU benchmark");
        // Kernel families are stated against the copy bandwidth measured here, so Memory always runs first.
        if (!suites.Contains(BenchmarkSuite.Memory) && suites.Any(s => s is not (BenchmarkSuite.Gemm or BenchmarkSuite.Launch)))
            _copyPeak = MeasureCopyPeak();
        for (int i = 0; i < suites.Count; i++)
        {
            host.CancellationToken.ThrowIfCancellationRequested();
            progress.Report((double)i / suites.Count, $"{suites[i]} ({i + 1}/{suites.Count})", force: true);
            switch (suites[i])
            {
                case BenchmarkSuite.Memory: RunMemory(); break;
                case BenchmarkSuite.Gemm: RunGemm(); break;
                case BenchmarkSuite.Launch: RunLaunch(); break;
                case BenchmarkSuite.Elementwise: RunElementwise(); break;
                case BenchmarkSuite.Norm: RunNorm(); break;
                case BenchmarkSuite.Rope: RunRope(); break;
                case BenchmarkSuite.Attention: RunAttention(); break;
                case BenchmarkSuite.Sampling: RunSampling(); break;
                case BenchmarkSuite.Transpose: RunTranspose(); break;
                case BenchmarkSuite.Embedding: RunEmbedding(); break;
            }

            be.Pool.FreeAll();
        }

        progress.Complete();
    }

    // ------------------------------------------------------------------ timing

    /// <summary>Timing statistics; <see cref="Energy"/> was measured over <see cref="EnergyRuns"/> runs.</summary>
    private sealed record Stat(double Median, double Min, double Max, int N, EnergySample Energy, int EnergyRuns);

    /// <summary>Energy windows last at least this long (the counter's resolution), with extra runs when the timed ones are shorter.</summary>
    private static readonly TimeSpan EnergyWindowLength = TimeSpan.FromMilliseconds(300);

    /// <summary>
    /// Warm up, then time each of <paramref name="reps"/> runs with a pair of events; <paramref name="run"/> gets the
    /// run index (rotate inputs with it). The energy window spans the timed runs only.
    /// </summary>
    private Stat Time(Action<int> run, int? reps = null, int? warmup = null)
    {
        int n = reps ?? (Quick ? Math.Min(Repeats, 10) : Repeats);
        int w = warmup ?? (Quick ? Math.Min(Warmup, 2) : Warmup);
        var ctx = _be.Context;
        for (int i = 0; i < w; i++) run(i);
        ctx.Synchronize();
        var starts = new CudaEvent[n];
        var stops = new CudaEvent[n];
        try
        {
            for (int i = 0; i < n; i++) { starts[i] = ctx.CreateEvent(); stops[i] = ctx.CreateEvent(); }
            var energy = BenchmarkEnergyWindow.Start(Device, _be.Context.Uuid);
            for (int i = 0; i < n; i++)
            {
                starts[i].Record(ctx.Stream);
                run(w + i);
                stops[i].Record(ctx.Stream);
            }

            ctx.Synchronize();
            var e = energy.Stop();
            var ms = new double[n];
            for (int i = 0; i < n; i++) ms[i] = CudaEvent.Elapsed(starts[i], stops[i]);
            Array.Sort(ms);
            double median = n % 2 == 1 ? ms[n / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2;
            if (!(median > 0)) throw new GpuOpsException("BenchmarkInvalid", ErrorCategory.InvalidResult, "A benchmark timed 0 ms: the work did not run.");
            int energyRuns = n;
            if (e.Joules is null && energy.IsMeasuring && e.Method is not null && !e.Method.StartsWith("energy window failed", StringComparison.Ordinal))
            {
                // the timed runs were too short for the energy counter: a separate window of back-to-back runs
                energyRuns = (int)Math.Clamp(Math.Ceiling(EnergyWindowLength.TotalMilliseconds / median), 1, 20000);
                var again = BenchmarkEnergyWindow.Start(Device, _be.Context.Uuid);
                for (int i = 0; i < energyRuns; i++) run(w + n + i);
                ctx.Synchronize();
                e = again.Stop();
            }

            return new Stat(median, ms[0], ms[^1], n, e, energyRuns);
        }
        finally
        {
            foreach (var ev in starts) ev?.Dispose();
            foreach (var ev in stops) ev?.Dispose();
        }
    }

    private BenchmarkResult Emit(string suite, string name, string operation, string dtype, string size, Stat s,
        long bytes = 0, double flops = 0, string? unit = null, double? value = null, double? peak = null, string peakBasis = "", string notes = "")
    {
        unit ??= flops > 0 ? "TFLOP/s" : "GB/s";
        value ??= unit == "TFLOP/s" ? flops / (s.Median * 1e-3) / 1e12 : bytes / (s.Median * 1e-3) / 1e9;
        var state = GpuState.Read(_be.Context.Uuid);
        double? perRun = s.Energy.Joules is { } j ? j / s.EnergyRuns : null;
        var r = new BenchmarkResult
        {
            Suite = suite, Name = name, Operation = operation, DType = dtype, Size = size, Bytes = bytes, Flops = flops,
            Repeats = s.N, MedianMs = s.Median, MinMs = s.Min, MaxMs = s.Max, Unit = unit, Value = value.Value,
            PercentOfPeak = peak is > 0 ? 100.0 * value.Value / peak : null, PeakValue = peak, PeakBasis = peakBasis,
            EnergyJoulesPerRun = perRun,
            JoulesPerGB = perRun is { } pj && bytes > 0 ? pj / (bytes / 1e9) : null,
            JoulesPerTFLOP = perRun is { } pf && flops > 0 ? pf / (flops / 1e12) : null,
            AveragePowerWatts = s.Energy.AveragePowerWatts, EnergyMethod = s.Energy.Method,
            GpuIndex = Device, GpuName = _be.Context.Name, GpuUuid = _be.Context.Uuid, ComputeCapability = _be.Context.ComputeCapability,
            SmClockMHz = state.SmClockMHz, MemoryClockMHz = state.MemoryClockMHz, TemperatureC = state.TemperatureC,
            PowerLimitWatts = state.PowerLimitWatts, DriverVersion = state.DriverVersion, CudaDriverVersion = _be.Context.DriverVersionText,
            CublasLtVersion = _cublasVersion, NvrtcVersion = _nvrtcVersion, TimestampUtc = DateTime.UtcNow, Notes = notes,
        };
        _results.Add(r);
        _host.WriteVerbose($"{suite}/{name}: {r.Value:0.##} {unit} (median {s.Median:0.####} ms, min {s.Min:0.####}, max {s.Max:0.####})");
        _host.WriteObject(r);
        return r;
    }

    private (double? Value, string Basis) CopyBasis() =>
        _copyPeak is { } p ? (p, $"device copy measured in this run: {p:0} GB/s (bytes read + written)") : (null, "no copy peak measured");

    // ------------------------------------------------------------------ datasheet rates (dense, SXM unless named)

    private sealed record Datasheet(string Part, double HbmGBs, double Bf16, double Tf32, double Fp32, double Fp8, double Int8);

    private Datasheet? Sheet()
    {
        var n = _be.Context.Name;
        if (n.Contains("H200", StringComparison.OrdinalIgnoreCase)) return new("H200 SXM", 4800, 989.4, 494.7, 66.9, 1978.9, 1978.9);
        if (n.Contains("H100", StringComparison.OrdinalIgnoreCase) && n.Contains("PCIe", StringComparison.OrdinalIgnoreCase)) return new("H100 PCIe", 2000, 756.5, 378, 51.2, 1513, 1513);
        if (n.Contains("H100", StringComparison.OrdinalIgnoreCase) && n.Contains("NVL", StringComparison.OrdinalIgnoreCase)) return new("H100 NVL", 3900, 835.5, 417.5, 60, 1670.5, 1670.5);
        if (n.Contains("H100", StringComparison.OrdinalIgnoreCase)) return new("H100 SXM", 3350, 989.4, 494.7, 66.9, 1978.9, 1978.9);
        if (n.Contains("A100", StringComparison.OrdinalIgnoreCase)) return new("A100 SXM 80GB", 2039, 312, 156, 19.5, 0, 624);
        return null;
    }

    // ------------------------------------------------------------------ Memory

    private long CopyBytes => Quick ? 256L << 20 : 1L << 30;

    private double MeasureCopyPeak()
    {
        long bytes = CopyBytes;
        var bufs = Enumerable.Range(0, 4).Select(i => _be.Allocate(DType.U8, [(int)bytes], "copy" + i)).ToArray();
        foreach (var b in bufs) _be.FillUniform(b, 7, 0, 255);
        var s = Time(i => Check(cuMemcpyDtoDAsync(CudaBackend.Ptr(bufs[2 * (i % 2) + 1]), CudaBackend.Ptr(bufs[2 * (i % 2)]), (nuint)bytes, _be.Stream), "cuMemcpyDtoDAsync_v2"));
        foreach (var b in bufs) b.Dispose();
        return 2.0 * bytes / (s.Median * 1e-3) / 1e9;
    }

    private void RunMemory()
    {
        long bytes = CopyBytes;
        var sheet = Sheet();
        var bufs = Enumerable.Range(0, 4).Select(i => _be.Allocate(DType.U8, [(int)bytes], "copy" + i)).ToArray();
        foreach (var b in bufs) _be.FillUniform(b, 11, 0, 255);
        string size = CudaContext.Format(bytes);
        var s = Time(i => Check(cuMemcpyDtoDAsync(CudaBackend.Ptr(bufs[2 * (i % 2) + 1]), CudaBackend.Ptr(bufs[2 * (i % 2)]), (nuint)bytes, _be.Stream), "cuMemcpyDtoDAsync_v2"));
        var copy = Emit("Memory", "device copy", "cuMemcpyDtoDAsync", "u8", size, s, 2 * bytes,
            peak: sheet?.HbmGBs, peakBasis: sheet is null ? "no datasheet rate known for this GPU" : $"datasheet HBM bandwidth {sheet.HbmGBs} GB/s ({sheet.Part})",
            notes: "bytes read + bytes written; 2 buffer pairs rotated");
        _copyPeak = copy.Value;
        var (pv, pb) = CopyBasis();
        long n16 = bytes / 16;
        var s2 = Time(i => _be.Launch("elementwise.cu", "copy_vec16", (_be.Context.MultiprocessorCount * 8, 1, 1), 512, 0,
            CudaBackend.Ptr(bufs[2 * (i % 2)]), CudaBackend.Ptr(bufs[2 * (i % 2) + 1]), n16));
        Emit("Memory", "device copy (kernel)", "copy_vec16 (16-byte loads, 4 in flight)", "u8", size, s2, 2 * bytes, peak: pv, peakBasis: pb);
        foreach (var b in bufs) b.Dispose();

        long hbytes = Quick ? 64L << 20 : 256L << 20;
        string hsize = CudaContext.Format(hbytes);
        var dev = _be.Allocate(DType.U8, [(int)hbytes], "h2d");
        using (var pinned = new PinnedBuffer(_be.Context, hbytes))
        {
            Random.Shared.NextBytes(pinned.AsSpan());
            var sh = Time(_ => Check(cuMemcpyHtoDAsync(CudaBackend.Ptr(dev), (void*)pinned.Pointer, (nuint)hbytes, _be.Stream), "cuMemcpyHtoDAsync_v2"), reps: Quick ? 5 : 20);
            Emit("Memory", "host to device (pinned)", "cuMemcpyHtoDAsync", "u8", hsize, sh, hbytes, notes: "bytes moved once; page-locked host memory");
            var sd = Time(_ => Check(cuMemcpyDtoHAsync((void*)pinned.Pointer, CudaBackend.Ptr(dev), (nuint)hbytes, _be.Stream), "cuMemcpyDtoHAsync_v2"), reps: Quick ? 5 : 20);
            Emit("Memory", "device to host (pinned)", "cuMemcpyDtoHAsync", "u8", hsize, sd, hbytes, notes: "bytes moved once; page-locked host memory");
        }

        void* pageable = NativeMemory.AlignedAlloc((nuint)hbytes, 4096);
        try
        {
            Random.Shared.NextBytes(new Span<byte>(pageable, (int)hbytes));
            var sh = Time(_ => Check(cuMemcpyHtoDAsync(CudaBackend.Ptr(dev), pageable, (nuint)hbytes, _be.Stream), "cuMemcpyHtoDAsync_v2"), reps: Quick ? 5 : 20);
            Emit("Memory", "host to device (pageable)", "cuMemcpyHtoDAsync", "u8", hsize, sh, hbytes, notes: "bytes moved once; ordinary host memory (staged by the driver)");
            var sd = Time(_ => Check(cuMemcpyDtoHAsync(pageable, CudaBackend.Ptr(dev), (nuint)hbytes, _be.Stream), "cuMemcpyDtoHAsync_v2"), reps: Quick ? 5 : 20);
            Emit("Memory", "device to host (pageable)", "cuMemcpyDtoHAsync", "u8", hsize, sd, hbytes, notes: "bytes moved once; ordinary host memory (staged by the driver)");
        }
        finally
        {
            NativeMemory.AlignedFree(pageable);
        }

        dev.Dispose();
    }

    // ------------------------------------------------------------------ GEMM

    private void RunGemm()
    {
        var sheet = Sheet();
        var sizes = GemmSizes ?? (Quick ? [2048, 4096] : [4096, 8192]);
        var types = (GemmTypes ?? ["bf16", "f16", "tf32", "f32", "f8e4m3", "i8"]).Select(t => t.ToLowerInvariant()).ToList();
        bool fp8Ok = _be.Context.Major >= 9 || (_be.Context.Major == 8 && _be.Context.Minor >= 9);
        foreach (var type in types)
        {
            foreach (var size in sizes)
            {
                _host.CancellationToken.ThrowIfCancellationRequested();
                if (type == "f8e4m3" && !fp8Ok) { _host.WriteWarning($"fp8 products need compute capability 8.9+; {_be.Context.Name} is {_be.Context.ComputeCapability}: skipped."); continue; }
                if (type == "f32" && size > 4096 && !Quick && sizes.Length > 1) continue; // plain fp32 at 8192³ adds minutes, not information
                var (dt, tf32) = type switch
                {
                    "tf32" => (DType.F32, true),
                    _ => (DTypes.Parse(type), false),
                };
                bool tb = dt is DType.F8E4M3 or DType.I8; // these need B stored [N, K]
                var opt = new MatMulOptions { TransposeB = tb, AllowTf32 = tf32 };
                int m = size, n = size, k = size;
                const int sets = 2;
                var a = new Tensor[sets]; var b = new Tensor[sets];
                for (int i = 0; i < sets; i++)
                {
                    a[i] = _be.Allocate(dt, [m, k], "A" + i);
                    b[i] = _be.Allocate(dt, tb ? [n, k] : [k, n], "B" + i);
                    float range = dt == DType.I8 ? 100f : 1f;
                    _be.FillUniform(a[i], (ulong)(100 + i), -range, range);
                    _be.FillUniform(b[i], (ulong)(200 + i), -range, range);
                }

                var d = _be.Allocate(ComputeChecks.MatMulOutput(dt), [m, n], "D");
                string notes = $"random inputs in 2 rotated sets; 1 s idle before the warm-up (GEMMs reach the power limit; the peer does the same); workspace {CublasLtMatmul.DefaultWorkspaceBytes >> 20} MiB; layout {(tb ? "TN" : "NN")} (column-major view)";
                if (Autotune)
                {
                    var (tried, chosen) = _be.Blas.Autotune(dt, CudaBackend.Ptr(a[0]), CudaBackend.Ptr(b[0]), CudaBackend.Ptr(d), m, n, k, opt, 0);
                    notes += $"; fastest of the heuristic's top {tried} algorithms (#{chosen})";
                }
                else notes += "; the heuristic's first algorithm";

                Idle();
                var s = Time(i => _be.MatMul(a[i % sets], b[i % sets], d, opt), reps: Quick ? 10 : Math.Min(Repeats, size >= 8192 ? 30 : 50));
                double flops = 2.0 * m * n * k;
                double? peak = sheet is null ? null : type switch
                {
                    "bf16" or "f16" => sheet.Bf16,
                    "tf32" => sheet.Tf32,
                    "f32" => sheet.Fp32,
                    "f8e4m3" => sheet.Fp8,
                    "i8" => sheet.Int8,
                    _ => null,
                };
                string unit = dt == DType.I8 ? "TOP/s" : "TFLOP/s";
                Emit("Gemm", $"{type} gemm {m}x{n}x{k}", $"cublasLtMatmul {type}{(tb ? " TN" : " NN")}", type, $"{m}x{n}x{k}", s, flops: flops, unit: unit,
                    value: flops / (s.Median * 1e-3) / 1e12, peak: peak,
                    peakBasis: peak is null ? "no datasheet rate known" : $"dense datasheet {type} rate {peak} {unit} ({sheet!.Part})", notes: notes);
                if (type == "bf16" && size == sizes.Max())
                {
                    // the layout of a Linear layer's weight ([N, K]), as prefill uses it
                    var bt = new Tensor[sets];
                    for (int i = 0; i < sets; i++)
                    {
                        bt[i] = _be.Allocate(dt, [n, k], "Bt" + i);
                        _be.FillUniform(bt[i], (ulong)(300 + i), -1, 1);
                    }

                    var optT = new MatMulOptions { TransposeB = true };
                    string notesT = notes.Replace("layout NN", "layout TN");
                    if (Autotune)
                    {
                        var (tried, chosen) = _be.Blas.Autotune(dt, CudaBackend.Ptr(a[0]), CudaBackend.Ptr(bt[0]), CudaBackend.Ptr(d), m, n, k, optT, 0);
                        notesT = $"random inputs in 2 rotated sets; 1 s idle before the warm-up; layout TN; fastest of the heuristic's top {tried} algorithms (#{chosen})";
                    }

                    Idle();
                    var st = Time(i => _be.MatMul(a[i % sets], bt[i % sets], d, optT), reps: Quick ? 10 : Math.Min(Repeats, size >= 8192 ? 30 : 50));
                    Emit("Gemm", $"{type} gemm {m}x{n}x{k} (B as [N,K])", $"cublasLtMatmul {type} TN", type, $"{m}x{n}x{k}", st, flops: flops, unit: unit,
                        value: flops / (st.Median * 1e-3) / 1e12, peak: peak,
                        peakBasis: peak is null ? "no datasheet rate known" : $"dense datasheet {type} rate {peak} {unit} ({sheet!.Part})", notes: notesT);
                }

                _be.Pool.FreeAll();
            }
        }
    }

    /// <summary>Let the GPU leave the power limit before a GEMM measurement (autotuning just ran it hot).</summary>
    private void Idle()
    {
        _be.Synchronize();
        Thread.Sleep(Quick ? 200 : 1000);
    }

    // ------------------------------------------------------------------ Launch

    private void RunLaunch()
    {
        var f = _be.Function("elementwise.cu", "empty_kernel");
        int batch = 1000;
        void LaunchMany()
        {
            for (int i = 0; i < batch; i++) Launcher.Launch(f, "empty_kernel", _be.Stream, (1, 1, 1), 32, 0);
        }

        var sw = Stopwatch.StartNew();
        LaunchMany();
        _be.Synchronize();
        var s = Time(_ => LaunchMany(), reps: Quick ? 5 : 20, warmup: 2);
        Emit("Launch", "kernel launch (stream)", $"cuLaunchKernel × {batch}, empty kernel", "-", $"{batch} launches", s, unit: "µs",
            value: s.Median * 1000 / batch, notes: "device time per launch, back-to-back launches timed with events");
        sw.Restart();
        for (int r = 0; r < 5; r++) LaunchMany();
        double hostUs = sw.Elapsed.TotalMilliseconds * 1000 / (5.0 * batch);
        _be.Synchronize();
        _host.WriteVerbose($"host-side cuLaunchKernel cost: {hostUs:0.00} µs per launch");

        using var graph = _be.Context.Capture(LaunchMany);
        var g = Time(_ => graph.Launch(), reps: Quick ? 5 : 20, warmup: 2);
        Emit("Launch", "graph replay (per kernel)", $"cuGraphLaunch of {batch} empty kernels", "-", $"{batch} nodes", g, unit: "µs",
            value: g.Median * 1000 / batch, notes: $"device time per kernel node; host launch cost without graphs {hostUs:0.00} µs");
    }

    // ------------------------------------------------------------------ kernel families (memory-bound: GB/s vs the measured copy)

    private Tensor Rand(DType dt, int[] shape, ulong seed, float lo = -1, float hi = 1)
    {
        var t = _be.Allocate(dt, shape);
        _be.FillUniform(t, seed, lo, hi);
        return t;
    }

    private void Family(string suite, string name, string op, string dtype, string size, long bytes, Action<int> run, string notes = "")
    {
        _host.CancellationToken.ThrowIfCancellationRequested();
        var s = Time(run);
        var (pv, pb) = CopyBasis();
        Emit(suite, name, op, dtype, size, s, bytes, peak: pv, peakBasis: pb, notes: notes);
    }

    private int Rows(int full) => Quick ? full / 4 : full;

    private void RunElementwise()
    {
        int n = Rows(64 << 20);
        var x = new[] { Rand(DType.F32, [n], 1), Rand(DType.F32, [n], 2) };
        var y = _be.Allocate(DType.BF16, [n]);
        Family("Elementwise", "cast f32->bf16", "cast_any", "f32->bf16", $"{n} elements", n * 6L, i => _be.Cast(x[i % 2], y), "2 input sets rotated");
        var g = new[] { Rand(DType.BF16, [n], 3), Rand(DType.BF16, [n], 4) };
        var u = Rand(DType.BF16, [n], 5);
        var o = _be.Allocate(DType.BF16, [n]);
        Family("Elementwise", "silu·mul", "silu_mul_bf16", "bf16", $"{n} elements", n * 6L, i => _be.SiluMul(g[i % 2], u, o));
        Family("Elementwise", "add", "binary_any add", "bf16", $"{n} elements", n * 6L, i => _be.Binary(BinaryOp.Add, g[i % 2], u, o));
    }

    private void RunNorm()
    {
        int rows = Rows(16384), h = 4096;
        var x = new[] { Rand(DType.BF16, [rows, h], 1), Rand(DType.BF16, [rows, h], 2) };
        var w = Rand(DType.BF16, [h], 3);
        var o = _be.Allocate(DType.BF16, [rows, h]);
        Family("Norm", "rmsnorm", "rmsnorm_bf16", "bf16", $"{rows}x{h}", 2L * rows * h * 2, i => _be.RmsNorm(x[i % 2], w, o, 1e-5f));
        int srows = Rows(2048), v = 32000;
        var l = new[] { Rand(DType.BF16, [srows, v], 4, -8, 8), Rand(DType.BF16, [srows, v], 5, -8, 8) };
        var so = _be.Allocate(DType.BF16, [srows, v]);
        Family("Norm", "softmax", "softmax_bf16", "bf16", $"{srows}x{v}", 2L * srows * v * 2, i => _be.Softmax(l[i % 2], so));
        var r = _be.Allocate(DType.F32, [rows]);
        Family("Norm", "row sum", "reduce_bf16 sum", "bf16", $"{rows}x{h}", 2L * rows * h, i => _be.Reduce(ReduceOp.Sum, x[i % 2], r));
    }

    private void RunRope()
    {
        int tokens = Rows(8192), heads = 32, d = 128;
        var x = new[] { Rand(DType.BF16, [tokens, heads, d], 1), Rand(DType.BF16, [tokens, heads, d], 2) };
        var pos = _be.Allocate(DType.I32, [tokens]);
        pos.CopyFrom<int>(Enumerable.Range(0, tokens).ToArray());
        var inv = _be.Allocate(DType.F32, [d / 2]);
        inv.CopyFromFloats(Enumerable.Range(0, d / 2).Select(i => (float)Math.Pow(500000, -2.0 * i / d)).ToArray());
        var o = _be.Allocate(DType.BF16, [tokens, heads, d]);
        long bytes = 2L * tokens * heads * d * 2;
        Family("Rope", "rope rotate-half", "rope_bf16 layout 0", "bf16", $"{tokens}x{heads}x{d}", bytes, i => _be.Rope(x[i % 2], pos, inv, o, RopeLayout.RotateHalf));
        Family("Rope", "rope interleaved", "rope_bf16 layout 1", "bf16", $"{tokens}x{heads}x{d}", bytes, i => _be.Rope(x[i % 2], pos, inv, o, RopeLayout.Interleaved));
    }

    private void RunAttention()
    {
        int b = Quick ? 4 : 16, maxT = 4096, hq = 32, hkv = 8, d = 128;
        var q = Rand(DType.BF16, [b, hq, d], 1);
        var k = Rand(DType.BF16, [b, maxT, hkv, d], 2);
        var v = Rand(DType.BF16, [b, maxT, hkv, d], 3);
        var len = _be.Allocate(DType.I32, [b]);
        len.CopyFrom<int>(Enumerable.Repeat(maxT, b).ToArray());
        var o = _be.Allocate(DType.BF16, [b, hq, d]);
        long bytes = 2L * b * maxT * hkv * d * 2;
        Family("Attention", "decode attention (GQA 32/8)", "attn_decode_split_bf16_r4 + combine", "bf16", $"B{b} T{maxT} Hq{hq} Hkv{hkv} D{d}", bytes,
            _ => _be.AttentionDecode(q, k, v, len, o, 1 / MathF.Sqrt(d)), "KV cache bytes read once per step counted (split-K over the keys, one pass per kv head)");
        // batch 1, as a decode step of one sequence runs it (several layers' caches rotated past the L2)
        const int layers = 4;
        var k1 = Enumerable.Range(0, layers).Select(i => Rand(DType.BF16, [1, maxT, hkv, d], (ulong)(10 + i))).ToArray();
        var v1 = Enumerable.Range(0, layers).Select(i => Rand(DType.BF16, [1, maxT, hkv, d], (ulong)(20 + i))).ToArray();
        var q1 = Rand(DType.BF16, [1, hq, d], 30);
        var len1 = _be.Allocate(DType.I32, [1]);
        len1.CopyFrom<int>([maxT]);
        var o1 = _be.Allocate(DType.BF16, [1, hq, d]);
        Family("Attention", "decode attention, batch 1 (GQA 32/8)", "attn_decode_split_bf16_r4 + combine", "bf16", $"B1 T{maxT} Hq{hq} Hkv{hkv} D{d}",
            2L * maxT * hkv * d * 2, i => _be.AttentionDecode(q1, k1[i % layers], v1[i % layers], len1, o1, 1 / MathF.Sqrt(d)),
            $"{layers} caches rotated (as {layers} layers); 16 MiB per step: launch and latency weigh");
        int t = Quick ? 512 : 2048;
        var qp = Rand(DType.BF16, [1, t, hq, d], 4);
        var kp = Rand(DType.BF16, [1, t, hkv, d], 5);
        var vp = Rand(DType.BF16, [1, t, hkv, d], 6);
        var op = _be.Allocate(DType.BF16, [1, t, hq, d]);
        double flops = 4.0 * hq * d * t * (t + 1) / 2;
        var s = Time(_ => _be.AttentionPrefill(qp, kp, vp, op, 1 / MathF.Sqrt(d)), reps: Quick ? 5 : 10);
        Emit("Attention", "causal prefill attention (GQA 32/8)", "attention_bf16 prefill", "bf16", $"T{t} Hq{hq} Hkv{hkv} D{d}", s, flops: flops,
            notes: "causal FLOPs (4·Hq·D·T(T+1)/2); reference-speed kernel, not tensor-core");
    }

    private void RunSampling()
    {
        int b = 64, vocab = 128256;
        var l = new[] { Rand(DType.F32, [b, vocab], 1, -10, 10), Rand(DType.F32, [b, vocab], 2, -10, 10) };
        var ids = _be.Allocate(DType.I32, [b]);
        Family("Sampling", "argmax", "argmax_f32", "f32", $"{b}x{vocab}", 4L * b * vocab, i => _be.Argmax(l[i % 2], ids));
        var u = _be.Allocate(DType.F32, [b]);
        u.CopyFromFloats(Enumerable.Range(0, b).Select(i => (float)Random.Shared.NextDouble()).ToArray());
        var s = Time(i => _be.SampleTopKTopP(l[i % 2], u, ids, 0.8f, 50, 0.95f), reps: Quick ? 5 : 20);
        var (pv, pb) = CopyBasis();
        Emit("Sampling", "top-k 50 / top-p 0.95 sampling", "sample_f32", "f32", $"{b}x{vocab}", s, 4L * b * vocab, peak: pv, peakBasis: pb,
            notes: "bytes = logits read once; the kernel makes ~65 passes (threshold searches) over L2-resident rows");
    }

    private void RunTranspose()
    {
        int n = Quick ? 4096 : 8192;
        var x = new[] { Rand(DType.BF16, [n, n], 1), Rand(DType.BF16, [n, n], 2) };
        var o = _be.Allocate(DType.BF16, [n, n]);
        Family("Transpose", "transpose 2-D", "copy_strided", "bf16", $"{n}x{n}", 2L * n * n * 2, i => _be.Copy(x[i % 2].Transpose(0, 1), o));
        Family("Transpose", "contiguous copy", "cuMemcpyDtoDAsync", "bf16", $"{n}x{n}", 2L * n * n * 2, i => _be.Copy(x[i % 2], o));
    }

    private void RunEmbedding()
    {
        int vocab = 128256, h = 4096, n = Quick ? 2048 : 8192;
        var table = Rand(DType.BF16, [vocab, h], 1);
        var ids = new[] { _be.Allocate(DType.I32, [n]), _be.Allocate(DType.I32, [n]) };
        foreach (var t in ids) t.CopyFrom<int>(Enumerable.Range(0, n).Select(_ => Random.Shared.Next(vocab)).ToArray());
        var o = _be.Allocate(DType.BF16, [n, h]);
        Family("Embedding", "embedding gather", "embedding_gather", "bf16", $"{n} ids x {h}", 2L * n * h * 2, i => _be.Embedding(table, ids[i % 2], o));
    }
}
