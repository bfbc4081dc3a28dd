using System.Runtime.InteropServices;
using GpuOps.Core.Compute;
using GpuOps.Core.Hosting;
using GpuOps.Core.Native;
using GpuOps.Cuda.Driver;

namespace GpuOps.Cuda.Blas;

/// <summary>cuBLASLt bindings.</summary>
public static unsafe partial class CublasLtApi
{
    public const int CUDA_R_32F = 0, CUDA_R_16F = 2, CUDA_R_8I = 3, CUDA_R_32I = 10, CUDA_R_16BF = 14, CUDA_R_8F_E4M3 = 28, CUDA_R_8F_E5M2 = 29;
    public const int CUBLAS_COMPUTE_32F = 68, CUBLAS_COMPUTE_32F_FAST_TF32 = 77, CUBLAS_COMPUTE_32I = 72;
    public const int DESC_TRANSA = 3, DESC_TRANSB = 4, DESC_EPILOGUE = 7, DESC_BIAS_POINTER = 8, DESC_BIAS_DATA_TYPE = 26;
    public const int PREF_MAX_WORKSPACE_BYTES = 1;
    public const int EPILOGUE_DEFAULT = 1, EPILOGUE_RELU = 2, EPILOGUE_BIAS = 4, EPILOGUE_RELU_BIAS = 6, EPILOGUE_GELU = 32, EPILOGUE_GELU_BIAS = 36;

    [StructLayout(LayoutKind.Sequential)]
    public struct HeuristicResult
    {
        public fixed ulong Algo[8];
        public nuint WorkspaceSize;
        public int State;
        public float WavesCount;
        public fixed int Reserved[4];
    }

    [LibraryImport(NativeLibraries.CublasLtName)] public static partial int cublasLtCreate(IntPtr* handle);
    [LibraryImport(NativeLibraries.CublasLtName)] public static partial int cublasLtDestroy(IntPtr handle);
    [LibraryImport(NativeLibraries.CublasLtName)] public static partial nuint cublasLtGetVersion();
    [LibraryImport(NativeLibraries.CublasLtName)] public static partial IntPtr cublasLtGetStatusName(int status);
    [LibraryImport(NativeLibraries.CublasLtName)] public static partial IntPtr cublasLtGetStatusString(int status);
    [LibraryImport(NativeLibraries.CublasLtName)] public static partial int cublasLtMatmulDescCreate(IntPtr* desc, int computeType, int scaleType);
    [LibraryImport(NativeLibraries.CublasLtName)] public static partial int cublasLtMatmulDescDestroy(IntPtr desc);
    [LibraryImport(NativeLibraries.CublasLtName)] public static partial int cublasLtMatmulDescSetAttribute(IntPtr desc, int attr, void* buf, nuint size);
    [LibraryImport(NativeLibraries.CublasLtName)] public static partial int cublasLtMatrixLayoutCreate(IntPtr* layout, int type, ulong rows, ulong cols, long ld);
    [LibraryImport(NativeLibraries.CublasLtName)] public static partial int cublasLtMatrixLayoutDestroy(IntPtr layout);
    [LibraryImport(NativeLibraries.CublasLtName)] public static partial int cublasLtMatmulPreferenceCreate(IntPtr* pref);
    [LibraryImport(NativeLibraries.CublasLtName)] public static partial int cublasLtMatmulPreferenceDestroy(IntPtr pref);
    [LibraryImport(NativeLibraries.CublasLtName)] public static partial int cublasLtMatmulPreferenceSetAttribute(IntPtr pref, int attr, void* buf, nuint size);
    [LibraryImport(NativeLibraries.CublasLtName)]
    public static partial int cublasLtMatmulAlgoGetHeuristic(IntPtr handle, IntPtr desc, IntPtr a, IntPtr b, IntPtr c, IntPtr d, IntPtr pref,
        int requested, HeuristicResult* results, int* returned);
    [LibraryImport(NativeLibraries.CublasLtName)]
    public static partial int cublasLtMatmul(IntPtr handle, IntPtr desc, void* alpha, ulong a, IntPtr aDesc, ulong b, IntPtr bDesc, void* beta,
        ulong c, IntPtr cDesc, ulong d, IntPtr dDesc, void* algo, ulong workspace, nuint workspaceSize, IntPtr stream);

    public static void Check(int rc, string operation)
    {
        if (rc == 0) return;
        string name = Marshal.PtrToStringUTF8(cublasLtGetStatusName(rc)) ?? $"CUBLAS status {rc}";
        string text = Marshal.PtrToStringUTF8(cublasLtGetStatusString(rc)) ?? string.Empty;
        throw new GpuOpsException("CublasError", ErrorCategory.DeviceError, $"{operation} failed: {name} ({text}).", operation);
    }
}

/// <summary>
/// Row-major matrix products through cuBLASLt: D[M,N] = alpha·A[M,K]·B + beta·D (B [K,N], or [N,K] with
/// TransposeB), with bias/ReLU/GELU epilogues, a 32 MiB workspace and the heuristic's algorithm (optionally
/// the fastest of its top candidates, timed: <see cref="Autotune"/>). Plans are cached per shape and type.
/// </summary>
public sealed unsafe class CublasLtMatmul : IDisposable
{
    public const long DefaultWorkspaceBytes = 32L << 20;
    private readonly CudaContext _ctx;
    private readonly Dictionary<string, Plan> _plans = new();
    private IntPtr _handle;
    private ulong _workspace;

    public CublasLtMatmul(CudaContext context, long workspaceBytes = DefaultWorkspaceBytes)
    {
        NativeLibraries.Require(NativeLibraryKind.CublasLt);
        _ctx = context;
        _ctx.Bind();
        IntPtr h;
        CublasLtApi.Check(CublasLtApi.cublasLtCreate(&h), "cublasLtCreate");
        _handle = h;
        WorkspaceBytes = workspaceBytes;
        _workspace = _ctx.Allocate(workspaceBytes, "the cuBLASLt workspace");
    }

    public long WorkspaceBytes { get; }

    public static string Version()
    {
        ulong v = CublasLtApi.cublasLtGetVersion();
        return $"{v / 10000}.{v / 100 % 100}.{v % 100}";
    }

    private sealed class Plan : IDisposable
    {
        public IntPtr Desc, A, B, C;
        public CublasLtApi.HeuristicResult[] Candidates = [];
        public int Chosen;
        public DType InType;

        public void Dispose()
        {
            CublasLtApi.cublasLtMatrixLayoutDestroy(A);
            CublasLtApi.cublasLtMatrixLayoutDestroy(B);
            CublasLtApi.cublasLtMatrixLayoutDestroy(C);
            CublasLtApi.cublasLtMatmulDescDestroy(Desc);
        }
    }

    private static (int Data, int Out, int Compute, int Scale) Types(DType t, bool tf32) => t switch
    {
        DType.F32 => (CublasLtApi.CUDA_R_32F, CublasLtApi.CUDA_R_32F, tf32 ? CublasLtApi.CUBLAS_COMPUTE_32F_FAST_TF32 : CublasLtApi.CUBLAS_COMPUTE_32F, CublasLtApi.CUDA_R_32F),
        DType.F16 => (CublasLtApi.CUDA_R_16F, CublasLtApi.CUDA_R_16F, CublasLtApi.CUBLAS_COMPUTE_32F, CublasLtApi.CUDA_R_32F),
        DType.BF16 => (CublasLtApi.CUDA_R_16BF, CublasLtApi.CUDA_R_16BF, CublasLtApi.CUBLAS_COMPUTE_32F, CublasLtApi.CUDA_R_32F),
        DType.F8E4M3 => (CublasLtApi.CUDA_R_8F_E4M3, CublasLtApi.CUDA_R_16BF, CublasLtApi.CUBLAS_COMPUTE_32F, CublasLtApi.CUDA_R_32F),
        DType.I8 => (CublasLtApi.CUDA_R_8I, CublasLtApi.CUDA_R_32I, CublasLtApi.CUBLAS_COMPUTE_32I, CublasLtApi.CUDA_R_32I),
        _ => throw GpuOpsException.InvalidArgument("UnsupportedDType", $"cuBLASLt: {DTypes.Name(t)} products are not supported."),
    };

    private Plan GetPlan(DType t, int m, int n, int k, MatMulOptions o, int candidates)
    {
        var key = $"{t}|{m}|{n}|{k}|{o.TransposeB}|{o.Epilogue}|{o.AllowTf32}";
        if (_plans.TryGetValue(key, out var plan)) return plan;
        var (data, outType, compute, scale) = Types(t, o.AllowTf32);
        plan = new Plan { InType = t };
        try
        {
            IntPtr desc, la, lb, lc;
            CublasLtApi.Check(CublasLtApi.cublasLtMatmulDescCreate(&desc, compute, scale), "cublasLtMatmulDescCreate");
            plan.Desc = desc;
            int opA = o.TransposeB ? 1 : 0, opB = 0;
            CublasLtApi.Check(CublasLtApi.cublasLtMatmulDescSetAttribute(desc, CublasLtApi.DESC_TRANSA, &opA, 4), "cublasLtMatmulDescSetAttribute(TRANSA)");
            CublasLtApi.Check(CublasLtApi.cublasLtMatmulDescSetAttribute(desc, CublasLtApi.DESC_TRANSB, &opB, 4), "cublasLtMatmulDescSetAttribute(TRANSB)");
            int epi = o.Epilogue switch
            {
                MatMulEpilogue.Bias => CublasLtApi.EPILOGUE_BIAS,
                MatMulEpilogue.Relu => CublasLtApi.EPILOGUE_RELU,
                MatMulEpilogue.ReluBias => CublasLtApi.EPILOGUE_RELU_BIAS,
                MatMulEpilogue.Gelu => CublasLtApi.EPILOGUE_GELU,
                MatMulEpilogue.GeluBias => CublasLtApi.EPILOGUE_GELU_BIAS,
                _ => CublasLtApi.EPILOGUE_DEFAULT,
            };
            CublasLtApi.Check(CublasLtApi.cublasLtMatmulDescSetAttribute(desc, CublasLtApi.DESC_EPILOGUE, &epi, 4), "cublasLtMatmulDescSetAttribute(EPILOGUE)");
            // Column-major view of the row-major product: D^T[N,M] = op(B^T)[N,K] · A^T[K,M].
            if (o.TransposeB) CublasLtApi.Check(CublasLtApi.cublasLtMatrixLayoutCreate(&la, data, (ulong)k, (ulong)n, k), "cublasLtMatrixLayoutCreate(B)");
            else CublasLtApi.Check(CublasLtApi.cublasLtMatrixLayoutCreate(&la, data, (ulong)n, (ulong)k, n), "cublasLtMatrixLayoutCreate(B)");
            plan.A = la;
            CublasLtApi.Check(CublasLtApi.cublasLtMatrixLayoutCreate(&lb, data, (ulong)k, (ulong)m, k), "cublasLtMatrixLayoutCreate(A)");
            plan.B = lb;
            CublasLtApi.Check(CublasLtApi.cublasLtMatrixLayoutCreate(&lc, outType, (ulong)n, (ulong)m, n), "cublasLtMatrixLayoutCreate(D)");
            plan.C = lc;
            IntPtr pref;
            CublasLtApi.Check(CublasLtApi.cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
            try
            {
                ulong ws = (ulong)WorkspaceBytes;
                CublasLtApi.Check(CublasLtApi.cublasLtMatmulPreferenceSetAttribute(pref, CublasLtApi.PREF_MAX_WORKSPACE_BYTES, &ws, 8), "cublasLtMatmulPreferenceSetAttribute");
                var results = new CublasLtApi.HeuristicResult[Math.Max(1, candidates)];
                int returned = 0;
                fixed (CublasLtApi.HeuristicResult* r = results)
                {
                    CublasLtApi.Check(CublasLtApi.cublasLtMatmulAlgoGetHeuristic(_handle, desc, la, lb, lc, lc, pref, results.Length, r, &returned),
                        $"cublasLtMatmulAlgoGetHeuristic({DTypes.Name(t)} {m}x{n}x{k})");
                }

                if (returned == 0)
                    throw new GpuOpsException("CublasNoAlgorithm", ErrorCategory.NotImplemented,
                        $"cuBLASLt has no algorithm for a {DTypes.Name(t)} product {m}x{n}x{k} (TransposeB={o.TransposeB}, {o.Epilogue}) on this GPU.");
                plan.Candidates = results[..returned];
            }
            finally
            {
                CublasLtApi.cublasLtMatmulPreferenceDestroy(pref);
            }
        }
        catch
        {
            plan.Dispose();
            throw;
        }

        _plans[key] = plan;
        return plan;
    }

    /// <summary>Run one product on <paramref name="stream"/> (device pointers; dims as in <see cref="IComputeBackend.MatMul"/>).</summary>
    public void Run(DType t, ulong a, ulong b, ulong d, int m, int n, int k, MatMulOptions o, ulong bias, IntPtr stream) =>
        Run(GetPlan(t, m, n, k, o, 8), -1, a, b, d, o, bias, stream, m, n, k);

    private void Run(Plan plan, int candidate, ulong a, ulong b, ulong d, MatMulOptions o, ulong bias, IntPtr stream, int m, int n, int k)
    {
        _ctx.Bind();
        if (bias != 0)
        {
            ulong bp = bias;
            CublasLtApi.Check(CublasLtApi.cublasLtMatmulDescSetAttribute(plan.Desc, CublasLtApi.DESC_BIAS_POINTER, &bp, 8), "cublasLtMatmulDescSetAttribute(BIAS_POINTER)");
        }

        var algo = plan.Candidates[candidate < 0 ? plan.Chosen : candidate];
        int ai = (int)o.Alpha, bi = (int)o.Beta;
        float af = o.Alpha, bf = o.Beta;
        void* alpha = plan.InType == DType.I8 ? &ai : &af;
        void* beta = plan.InType == DType.I8 ? &bi : &bf;
        CublasLtApi.Check(CublasLtApi.cublasLtMatmul(_handle, plan.Desc, alpha, b, plan.A, a, plan.B, beta, d, plan.C, d, plan.C,
            algo.Algo, _workspace, (nuint)WorkspaceBytes, stream), $"cublasLtMatmul({DTypes.Name(plan.InType)} {m}x{n}x{k})");
    }

    /// <summary>
    /// Time the heuristic's top candidates (each the median of <paramref name="repeats"/> runs after warm-up) and keep
    /// the fastest for this shape. Returns (candidates tried, index chosen).
    /// </summary>
    public (int Tried, int Chosen) Autotune(DType t, ulong a, ulong b, ulong d, int m, int n, int k, MatMulOptions o, ulong bias, int candidates = 32, int repeats = 10)
    {
        var key = $"{t}|{m}|{n}|{k}|{o.TransposeB}|{o.Epilogue}|{o.AllowTf32}";
        if (_plans.TryGetValue(key, out var old) && old.Candidates.Length < candidates)
        {
            old.Dispose();
            _plans.Remove(key);
        }

        var plan = GetPlan(t, m, n, k, o, candidates);
        using var start = _ctx.CreateEvent();
        using var stop = _ctx.CreateEvent();
        double best = double.MaxValue;
        int chosen = 0;
        for (int c = 0; c < plan.Candidates.Length; c++)
        {
            try
            {
                for (int w = 0; w < 3; w++) Run(plan, c, a, b, d, o, bias, _ctx.Stream, m, n, k);
                var times = new List<float>();
                for (int r = 0; r < repeats; r++)
                {
                    start.Record(_ctx.Stream);
                    Run(plan, c, a, b, d, o, bias, _ctx.Stream, m, n, k);
                    stop.Record(_ctx.Stream);
                    stop.Synchronize();
                    times.Add(CudaEvent.Elapsed(start, stop));
                }

                times.Sort();
                double med = times[times.Count / 2];
                if (med < best) { best = med; chosen = c; }
            }
            catch (GpuOpsException)
            {
                // a candidate that fails to run is skipped
            }
        }

        plan.Chosen = chosen;
        return (plan.Candidates.Length, chosen);
    }

    public void Dispose()
    {
        if (_handle == IntPtr.Zero) return;
        _ctx.Bind();
        foreach (var p in _plans.Values) p.Dispose();
        _plans.Clear();
        CublasLtApi.Check(CublasLtApi.cublasLtDestroy(_handle), "cublasLtDestroy");
        _handle = IntPtr.Zero;
        _ctx.Free(_workspace);
        _workspace = 0;
    }
}
