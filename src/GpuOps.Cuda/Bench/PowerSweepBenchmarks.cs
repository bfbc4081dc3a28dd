using System.Diagnostics;
using GpuOps.Core.Compute;
using GpuOps.Core.Hosting;
using GpuOps.Core.Models;
using GpuOps.Cuda.Blas;
using GpuOps.Cuda.Driver;
using GpuOps.Nvml;
using static GpuOps.Cuda.Driver.CudaApi;

namespace GpuOps.Cuda.Bench;

/// <summary>
/// The GPU workloads of <c>Optimize-GpuPowerLimit -Benchmark</c> (<c>gpuops power optimize --benchmark</c>), the two
/// ends of what a power limit does to work: <b>Memory</b> (device copies, bandwidth-bound: HBM sets the pace, a lower
/// limit costs little) and <b>Gemm</b> (bf16 matrix products, compute-bound: they run at the power limit, so every
/// watt taken away shows). Each is made on the GPU swept (its NVML UUID gives the CUDA ordinal, whatever
/// CUDA_VISIBLE_DEVICES does), sized and tuned once before the first limit is set, and sized again so one run lasts
/// about <see cref="RunSeconds"/> at the limit in force then.
/// </summary>
public static class PowerSweepBenchmarks
{
    /// <summary>How long one run lasts at the limit in force when the workload is made (runs at lower limits take longer).</summary>
    public static double RunSeconds { get; set; } = 0.5;

    public const string MemoryDescription = "device-to-device copies of 1 GiB buffers (HBM-bound), about 0.5 s per run; throughput in GB/s (bytes read + written)";
    public const string GemmDescription = "bf16 8192x8192x8192 matrix products with B as [N,K] (cuBLASLt, the fastest of its top algorithms), about 0.5 s per run; throughput in TFLOP/s";

    private static int _registered;

    /// <summary>Registers Memory and Gemm (once; later calls do nothing).</summary>
    public static void Register()
    {
        if (Interlocked.Exchange(ref _registered, 1) == 1) return;
        PowerSweepWorkloads.Register("Memory", MemoryDescription, t => new CopyWorkload(t));
        PowerSweepWorkloads.Register("Gemm", GemmDescription, t => new GemmWorkload(t));
    }

    /// <summary>The CUDA backend for the GPU an NVML UUID names.</summary>
    private static CudaBackend Open(PowerSweepTarget target)
    {
        int ordinal = InvokeBenchmarkOperation.OrdinalOf(target.Uuid);
        var be = new CudaBackend(ordinal);
        target.Host.WriteVerbose($"GPU {target.Index} ({target.Uuid}) is CUDA device {ordinal}: {be.Context.Name}.");
        return be;
    }

    /// <summary>Repeats of one step (measured once warm, after <paramref name="warm"/> untimed steps) that fill <see cref="RunSeconds"/>.</summary>
    private static int Calibrate(CudaBackend be, Action<int> step, int warm = 2)
    {
        for (int i = 0; i < warm; i++) step(i);
        be.Synchronize();
        const int probe = 3;
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < probe; i++) step(i);
        be.Synchronize();
        double each = sw.Elapsed.TotalSeconds / probe;
        if (!(each > 0)) throw new GpuOpsException("BenchmarkInvalid", ErrorCategory.InvalidResult, "A power-sweep step timed 0 s: the work did not run.");
        return (int)Math.Clamp(Math.Ceiling(RunSeconds / each), 1, 1_000_000);
    }

    /// <summary>Shared shape: enqueue the steps of one run, wait for the GPU, return work per second.</summary>
    private abstract class Workload : IPowerSweepWorkload
    {
        protected CudaBackend Be = null!;
        protected int Repeats;
        private bool _disposed;

        public abstract string ThroughputUnit { get; }

        /// <summary>Work done by one step in <see cref="ThroughputUnit"/>·seconds (bytes/1e9, flops/1e12).</summary>
        protected abstract double WorkPerStep { get; }

        protected abstract void Step(int i);

        public double? Run(CancellationToken token)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            Be.Context.Bind();
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < Repeats; i++)
            {
                if ((i & 63) == 0) token.ThrowIfCancellationRequested();
                Step(i);
            }

            Be.Synchronize();
            return Repeats * WorkPerStep / sw.Elapsed.TotalSeconds;
        }

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            if (Be is null) return;
            try
            {
                Be.Synchronize();
            }
            finally
            {
                Be.Pool.FreeAll();
                Be.Dispose();
            }
        }

        /// <summary>Runs the set-up; on failure frees what it made and rethrows.</summary>
        protected void Build(PowerSweepTarget target, Action setUp)
        {
            try
            {
                Be = Open(target);
                setUp();
                Repeats = Calibrate(Be, Step);
            }
            catch
            {
                Dispose();
                throw;
            }
        }
    }

    private sealed class CopyWorkload : Workload
    {
        private Tensor _a = null!, _b = null!;
        private long _bytes;

        public CopyWorkload(PowerSweepTarget target) => Build(target, () =>
        {
            // 1 GiB a buffer (far past any L2), less where the GPU has under 8 GiB free
            var (free, _) = Be.Context.MemoryInfo();
            _bytes = Math.Min(1L << 30, Math.Max(64L << 20, free / 8)) & ~0xFFFFL;
            _a = Be.Allocate(DType.U8, [(int)_bytes], "sweep copy A");
            _b = Be.Allocate(DType.U8, [(int)_bytes], "sweep copy B");
            Be.FillUniform(_a, 11, 0, 255);
            Be.FillUniform(_b, 12, 0, 255);
            target.Host.WriteVerbose($"Memory: copies of {CudaContext.Format(_bytes)} back and forth.");
        });

        public override string ThroughputUnit => "GB/s";

        protected override double WorkPerStep => 2.0 * _bytes / 1e9;

        protected override void Step(int i)
        {
            var (src, dst) = i % 2 == 0 ? (_a, _b) : (_b, _a);
            Check(cuMemcpyDtoDAsync(CudaBackend.Ptr(dst), CudaBackend.Ptr(src), (nuint)_bytes, Be.Stream), "cuMemcpyDtoDAsync_v2");
        }
    }

    private sealed class GemmWorkload : Workload
    {
        private const int Sets = 2;
        private readonly Tensor[] _a = new Tensor[Sets], _b = new Tensor[Sets];
        private Tensor _d = null!;
        private int _size;
        private readonly MatMulOptions _options = new() { TransposeB = true };

        public GemmWorkload(PowerSweepTarget target) => Build(target, () =>
        {
            // 8192³ (five 128 MiB matrices); 4096³ where the GPU has under 2 GiB free
            var (free, _) = Be.Context.MemoryInfo();
            _size = free >= 2L << 30 ? 8192 : 4096;
            for (int i = 0; i < Sets; i++)
            {
                _a[i] = Be.Allocate(DType.BF16, [_size, _size], "sweep A" + i);
                _b[i] = Be.Allocate(DType.BF16, [_size, _size], "sweep B" + i);
                Be.FillUniform(_a[i], (ulong)(100 + i));
                Be.FillUniform(_b[i], (ulong)(200 + i));
            }

            _d = Be.Allocate(ComputeChecks.MatMulOutput(DType.BF16), [_size, _size], "sweep D");
            var (tried, chosen) = Be.Blas.Autotune(DType.BF16, CudaBackend.Ptr(_a[0]), CudaBackend.Ptr(_b[0]), CudaBackend.Ptr(_d), _size, _size, _size, _options, 0);
            target.Host.WriteVerbose($"Gemm: bf16 {_size}x{_size}x{_size}, B as [N,K]; algorithm #{chosen}, the fastest of the heuristic's top {tried}.");
        });

        public override string ThroughputUnit => "TFLOP/s";

        protected override double WorkPerStep => 2.0 * _size * (double)_size * _size / 1e12;

        protected override void Step(int i) => Be.MatMul(_a[i % Sets], _b[i % Sets], _d, _options);
    }
}
