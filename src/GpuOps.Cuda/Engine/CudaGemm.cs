using GpuOps.Core.Hosting;
using GpuOps.Cuda.Blas;
using GpuOps.Cuda.Driver;

namespace GpuOps.Cuda.Engine;

/// <summary>
/// The engine's cuBLASLt products: D[M,N] = A[M,K] · W[N,K]^T (+ beta · D), A and W bf16 row-major, D bf16 or float32
/// (float32 with beta 1 adds the product into the residual stream). Plans (layouts + heuristic algorithm) cached per shape.
/// </summary>
public sealed unsafe class CudaGemm : IDisposable
{
    private readonly CudaContext _ctx;
    private readonly Dictionary<(int, int, int, bool), Plan> _plans = new();
    private IntPtr _handle;
    private ulong _workspace;
    private const long WorkspaceBytes = 32L << 20;

    private sealed class Plan
    {
        public IntPtr Desc, A, B, C;
        public CublasLtApi.HeuristicResult Algo;
        public CublasLtApi.HeuristicResult[] Candidates = [];
    }

    /// <summary>How many of the heuristic's candidates are timed per shape (GPUOPS_GEMM_CANDIDATES, default 32).</summary>
    internal static int MaxCandidates { get; } = int.TryParse(Environment.GetEnvironmentVariable("GPUOPS_GEMM_CANDIDATES"), out var c) && c > 0 ? c : 32;

    /// <summary>Time the heuristic's top candidates for each new shape and keep the fastest (GPUOPS_GEMM_AUTOTUNE=0: the first).</summary>
    public bool Autotune { get; set; } = Environment.GetEnvironmentVariable("GPUOPS_GEMM_AUTOTUNE") != "0";

    /// <summary>Per shape: (candidates tried, index chosen, its median ms, the first candidate's median ms).</summary>
    public List<string> TuneLog { get; } = new();

    public CudaGemm(CudaContext ctx)
    {
        _ctx = ctx;
        ctx.Bind();
        IntPtr h;
        CublasLtApi.Check(CublasLtApi.cublasLtCreate(&h), "cublasLtCreate");
        _handle = h;
        _workspace = ctx.Allocate(WorkspaceBytes, "the cuBLASLt workspace");
    }

    private Plan GetPlan(int m, int n, int k, bool f32Out)
    {
        if (_plans.TryGetValue((m, n, k, f32Out), out var p)) return p;
        p = new Plan();
        IntPtr desc, la, lb, lc;
        CublasLtApi.Check(CublasLtApi.cublasLtMatmulDescCreate(&desc, CublasLtApi.CUBLAS_COMPUTE_32F, CublasLtApi.CUDA_R_32F), "cublasLtMatmulDescCreate");
        p.Desc = desc;
        int opT = 1, opN = 0;
        CublasLtApi.Check(CublasLtApi.cublasLtMatmulDescSetAttribute(desc, CublasLtApi.DESC_TRANSA, &opT, 4), "cublasLtMatmulDescSetAttribute(TRANSA)");
        CublasLtApi.Check(CublasLtApi.cublasLtMatmulDescSetAttribute(desc, CublasLtApi.DESC_TRANSB, &opN, 4), "cublasLtMatmulDescSetAttribute(TRANSB)");
        // Column-major view: D^T[N,M] = W_cm[K,N]^T · A_cm[K,M].
        CublasLtApi.Check(CublasLtApi.cublasLtMatrixLayoutCreate(&la, CublasLtApi.CUDA_R_16BF, (ulong)k, (ulong)n, k), "cublasLtMatrixLayoutCreate(W)");
        p.A = la;
        CublasLtApi.Check(CublasLtApi.cublasLtMatrixLayoutCreate(&lb, CublasLtApi.CUDA_R_16BF, (ulong)k, (ulong)m, k), "cublasLtMatrixLayoutCreate(A)");
        p.B = lb;
        CublasLtApi.Check(CublasLtApi.cublasLtMatrixLayoutCreate(&lc, f32Out ? CublasLtApi.CUDA_R_32F : CublasLtApi.CUDA_R_16BF, (ulong)n, (ulong)m, n), "cublasLtMatrixLayoutCreate(D)");
        p.C = lc;
        IntPtr pref;
        CublasLtApi.Check(CublasLtApi.cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
        try
        {
            ulong ws = WorkspaceBytes;
            CublasLtApi.Check(CublasLtApi.cublasLtMatmulPreferenceSetAttribute(pref, CublasLtApi.PREF_MAX_WORKSPACE_BYTES, &ws, 8), "cublasLtMatmulPreferenceSetAttribute");
            var results = new CublasLtApi.HeuristicResult[MaxCandidates];
            int returned = 0;
            fixed (CublasLtApi.HeuristicResult* r = results)
                CublasLtApi.Check(CublasLtApi.cublasLtMatmulAlgoGetHeuristic(_handle, desc, la, lb, lc, lc, pref, results.Length, r, &returned), $"cublasLtMatmulAlgoGetHeuristic(bf16 {m}x{n}x{k})");
            if (returned == 0)
                throw new GpuOpsException("CublasNoAlgorithm", ErrorCategory.NotImplemented, $"cuBLASLt has no algorithm for a bf16 product {m}x{n}x{k} on this GPU.");
            p.Candidates = results[..returned];
            p.Algo = results[0];
        }
        finally
        {
            CublasLtApi.cublasLtMatmulPreferenceDestroy(pref);
        }

        _plans[(m, n, k, f32Out)] = p;
        return p;
    }

    /// <summary>D[M,N] = A[M,K] · W[N,K]^T + beta · D on <paramref name="stream"/>.</summary>
    public void Run(ulong a, ulong w, ulong d, int m, int n, int k, bool f32Out, float beta, IntPtr stream)
    {
        bool fresh = !_plans.ContainsKey((m, n, k, f32Out));
        var p = GetPlan(m, n, k, f32Out);
        if (fresh && Autotune && p.Candidates.Length > 1) Tune(p, a, w, m, n, k, f32Out, beta, stream);
        float alpha = 1f;
        var algo = p.Algo;
        CublasLtApi.Check(CublasLtApi.cublasLtMatmul(_handle, p.Desc, &alpha, w, p.A, a, p.B, &beta, d, p.C, d, p.C, algo.Algo, _workspace, (nuint)WorkspaceBytes, stream),
            $"cublasLtMatmul(bf16 {m}x{n}x{k})");
    }

    /// <summary>Time each candidate (into a scratch output: D may be the residual stream) and keep the fastest. Not during graph capture.</summary>
    private void Tune(Plan p, ulong a, ulong w, int m, int n, int k, bool f32Out, float realBeta, IntPtr stream)
    {
        ulong tmp = _ctx.Allocate((long)m * n * (f32Out ? 4 : 2), "GEMM tuning scratch");
        try
        {
            using var e0 = _ctx.CreateEvent();
            using var e1 = _ctx.CreateEvent();
            double best = double.MaxValue, first = 0;
            int chosen = 0;
            float alpha = 1f, beta = realBeta;   // (timed as it will run: beta 1 reads the output too; the scratch's values do not matter)
            for (int c = 0; c < p.Candidates.Length; c++)
            {
                var algo = p.Candidates[c];
                var times = new List<float>();
                bool ok = true;
                for (int r = 0; r < 4 && ok; r++)
                {
                    e0.Record(stream);
                    ok = CublasLtApi.cublasLtMatmul(_handle, p.Desc, &alpha, w, p.A, a, p.B, &beta, tmp, p.C, tmp, p.C, algo.Algo, _workspace, (nuint)WorkspaceBytes, stream) == 0;
                    e1.Record(stream);
                    e1.Synchronize();
                    if (r > 0) times.Add(CudaEvent.Elapsed(e0, e1));
                }

                if (!ok) continue;
                times.Sort();
                double med = times[times.Count / 2];
                if (c == 0) first = med;
                if (med < best)
                {
                    best = med;
                    chosen = c;
                }
            }

            p.Algo = p.Candidates[chosen];
            TuneLog.Add($"{m}x{n}x{k}{(f32Out ? " f32" : "")}: {p.Candidates.Length} candidates, chose #{chosen} {best:F3} ms (heuristic's first {first:F3} ms)");
        }
        finally
        {
            _ctx.Free(tmp);
        }
    }

    public void Dispose()
    {
        if (_handle == IntPtr.Zero) return;
        _ctx.Bind();
        foreach (var p in _plans.Values)
        {
            CublasLtApi.cublasLtMatrixLayoutDestroy(p.A);
            CublasLtApi.cublasLtMatrixLayoutDestroy(p.B);
            CublasLtApi.cublasLtMatrixLayoutDestroy(p.C);
            CublasLtApi.cublasLtMatmulDescDestroy(p.Desc);
        }

        _plans.Clear();
        CublasLtApi.cublasLtDestroy(_handle);
        _handle = IntPtr.Zero;
        _ctx.Free(_workspace);
    }
}
