using GpuOps.Core.Compute;
using GpuOps.Core.Hosting;
using GpuOps.Core.Models;
using GpuOps.Cuda.Blas;
using GpuOps.Cuda.Compile;
using GpuOps.Cuda.Driver;
using static GpuOps.Cuda.Driver.CudaApi;

namespace GpuOps.Cuda;

/// <summary>
/// The CUDA backend: device tensors, the kernels of kernels/*.cu (compiled with NVRTC for this GPU, cached on disk)
/// and cuBLASLt products, all ordered on one stream. Disposing it frees every tensor still alive, the modules,
/// cuBLASLt and the stream, and releases the primary context.
/// </summary>
public sealed unsafe class CudaBackend : IComputeBackend
{
    private readonly Dictionary<string, CudaModule> _modules = new();
    private CublasLtMatmul? _blas;
    private bool _disposed;

    public CudaBackend(int device = 0, KernelCache? cache = null)
    {
        Context = CudaContext.Open(device);
        Cache = cache ?? KernelCache.Shared;
        Device = ComputeDevice.Cuda(device);
    }

    public CudaContext Context { get; }

    public KernelCache Cache { get; }

    public string Name => "cuda";

    public ComputeDevice Device { get; }

    public TensorPool Pool { get; } = new();

    public IntPtr Stream => Context.Stream;

    /// <summary>cuBLASLt (created on first use, with its 32 MiB workspace).</summary>
    public CublasLtMatmul Blas => _blas ??= new CublasLtMatmul(Context);

    public static ulong Ptr(Tensor t) => (ulong)(long)t.Pointer;

    public Tensor Allocate(DType dtype, int[] shape, string? name = null)
    {
        foreach (var d in shape)
            if (d < 0) throw GpuOpsException.InvalidArgument("ShapeMismatch", $"Negative dimension in [{string.Join(",", shape)}].");
        long bytes = DTypes.ByteCount(dtype, Tensor.ElementCountOf(shape));
        ulong p = Context.Allocate(bytes, $"{name ?? "a tensor"} {DTypes.Name(dtype)}[{string.Join(",", shape)}]");
        var t = new Tensor(this, dtype, shape, Tensor.ContiguousStrides(shape), (IntPtr)(long)p, bytes, null, name, Pool.NextId());
        Pool.Add(t);
        return t;
    }

    public void Free(Tensor tensor, IntPtr pointer)
    {
        Context.Free((ulong)(long)pointer);
        Pool.Remove(tensor);
    }

    public void Upload(Tensor destination, ReadOnlySpan<byte> source)
    {
        ComputeChecks.Contiguous("Upload", destination);
        long n = DTypes.ByteCount(destination.DType, destination.ElementCount);
        if (source.Length != n) throw GpuOpsException.InvalidArgument("ShapeMismatch", $"Upload: {source.Length} bytes given for {destination.Describe()} ({n} bytes).");
        Context.Bind();
        fixed (byte* s = source)
        {
            Check(cuMemcpyHtoDAsync(Ptr(destination), s, (nuint)n, Stream), "cuMemcpyHtoDAsync_v2");
            Check(cuStreamSynchronize(Stream), "cuStreamSynchronize");
        }
    }

    public void Download(Tensor source, Span<byte> destination)
    {
        if (!source.IsContiguous)
        {
            using var tmp = Allocate(source.DType, source.Shape, "download staging");
            Copy(source, tmp);
            Download(tmp, destination);
            return;
        }

        long n = DTypes.ByteCount(source.DType, source.ElementCount);
        if (destination.Length != n) throw GpuOpsException.InvalidArgument("ShapeMismatch", $"Download: {destination.Length} bytes asked of {source.Describe()} ({n} bytes).");
        Context.Bind();
        fixed (byte* d = destination)
        {
            Check(cuMemcpyDtoHAsync(d, Ptr(source), (nuint)n, Stream), "cuMemcpyDtoHAsync_v2");
            Check(cuStreamSynchronize(Stream), "cuStreamSynchronize");
        }
    }

    public void FillBytes(Tensor tensor, byte value)
    {
        ComputeChecks.Contiguous("FillBytes", tensor);
        Context.Bind();
        Check(cuMemsetD8Async(Ptr(tensor), value, (nuint)DTypes.ByteCount(tensor.DType, tensor.ElementCount), Stream), "cuMemsetD8Async");
    }

    public void Synchronize() => Context.Synchronize();

    // ---------------------------------------------------------------- modules and launches

    /// <summary>The function <paramref name="kernel"/> of kernels/<paramref name="file"/> (compiled or loaded on first use).</summary>
    public IntPtr Function(string file, string kernel)
    {
        CudaModule? m;
        lock (_modules)
        {
            if (!_modules.TryGetValue(file, out m))
            {
                var cubin = Cache.GetCubin(file, Context.Major, Context.Minor);
                m = new CudaModule(Context, cubin, file);
                _modules[file] = m;
            }
        }

        return m.Function(kernel);
    }

    public void Launch(string file, string kernel, (int X, int Y, int Z) grid, int block, int sharedBytes, params KernelArg[] args)
    {
        var f = Function(file, kernel);
        Context.Bind();
        if (sharedBytes > 48 * 1024)
        {
            if (sharedBytes > Context.MaxSharedMemoryPerBlockOptin)
                throw new GpuOpsException("KernelLimitExceeded", ErrorCategory.LimitsExceeded,
                    $"{kernel} needs {sharedBytes} bytes of shared memory; this GPU allows {Context.MaxSharedMemoryPerBlockOptin}.", kernel);
            Check(cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, sharedBytes), $"cuFuncSetAttribute({kernel})");
        }

        Launcher.Launch(f, kernel, Stream, grid, block, sharedBytes, args);
    }

    /// <summary>Blocks for a grid-stride loop over <paramref name="n"/> items.</summary>
    public int GridFor(long n, int block = 256) => (int)Math.Clamp((n + block - 1) / block, 1, (long)Context.MultiprocessorCount * 16);

    private static string Suffix(DType t) => t switch
    {
        DType.F32 => "f32",
        DType.F16 => "f16",
        DType.BF16 => "bf16",
        _ => throw GpuOpsException.InvalidArgument("UnsupportedDType", $"{DTypes.Name(t)} is not a float kernel type."),
    };

    private Tensor? _scratch;

    /// <summary>
    /// A device workspace of at least <paramref name="bytes"/> (kept and grown; freed with the backend). Kernels that
    /// need one allocate it on first use: run them once before capturing a graph.
    /// </summary>
    public ulong Scratch(long bytes)
    {
        if (_scratch is null || _scratch.IsDisposed || _scratch.ByteLength < bytes)
        {
            if (_scratch is { IsDisposed: false })
            {
                Context.Synchronize();
                _scratch.Dispose();
            }

            _scratch = Allocate(DType.U8, [(int)Math.Max(bytes, 1 << 20)], "workspace");
        }

        return Ptr(_scratch);
    }

    /// <summary>Elements per 16-byte vector (f32: 4, f16/bf16: 8).</summary>
    private static int VecLanes(DType t) => t == DType.F32 ? 4 : 8;

    private static bool Aligned16(params Tensor[] ts) => ts.All(t => (Ptr(t) & 15) == 0);

    private static long RowsOf(Tensor t) => ComputeChecks.RowsOf(t);

    private static int RowBlock(int n) => n >= 1024 ? 1024 : n >= 512 ? 512 : n >= 256 ? 256 : 128;

    // ---------------------------------------------------------------- kernels

    public void Cast(Tensor source, Tensor destination)
    {
        ComputeChecks.CastArgs(this, source, destination);
        long n = source.ElementCount;
        Launch("elementwise.cu", "cast_any", (GridFor(n), 1, 1), 256, 0, Ptr(source), (int)source.DType, Ptr(destination), (int)destination.DType, n);
    }

    public void Binary(BinaryOp op, Tensor a, Tensor b, Tensor destination)
    {
        long nb = ComputeChecks.BinaryArgs(this, a, b, destination);
        long n = a.ElementCount;
        Launch("elementwise.cu", "binary_any", (GridFor(n), 1, 1), 256, 0, (int)op, Ptr(a), (int)a.DType, Ptr(b), (int)b.DType, Ptr(destination), (int)destination.DType, n, nb);
    }

    public void Unary(UnaryOp op, Tensor x, Tensor destination, float alpha = 1f)
    {
        ComputeChecks.UnaryArgs(this, x, destination);
        long n = x.ElementCount;
        Launch("elementwise.cu", "unary_any", (GridFor(n), 1, 1), 256, 0, (int)op, Ptr(x), (int)x.DType, Ptr(destination), (int)destination.DType, n, alpha);
    }

    /// <summary>Uniform random values in [lo, hi) (benchmark and test inputs; never zeros).</summary>
    public void FillUniform(Tensor t, ulong seed, float lo = -1f, float hi = 1f)
    {
        ComputeChecks.Contiguous("FillUniform", t);
        if (t.DType == DType.I4) throw GpuOpsException.InvalidArgument("UnsupportedDType", "FillUniform: not for packed int4.");
        long n = t.ElementCount;
        Launch("elementwise.cu", "fill_uniform", (GridFor(n), 1, 1), 256, 0, Ptr(t), (int)t.DType, n, seed, lo, hi);
    }

    public void Reduce(ReduceOp op, Tensor x, Tensor destination)
    {
        var (rows, n) = ComputeChecks.RowReductionArgs(this, "Reduce", x, destination, DType.F32);
        Launch("reduce.cu", "reduce_" + Suffix(x.DType), ((int)rows, 1, 1), RowBlock(n), 0, Ptr(x), Ptr(destination), n, (int)op);
    }

    public void RmsNorm(Tensor x, Tensor weight, Tensor destination, float eps)
    {
        int n = ComputeChecks.RmsNormArgs(this, x, weight, destination, sameDType: true);
        int lanes = VecLanes(x.DType);
        if (weight.DType == x.DType && n % lanes == 0 && Aligned16(x, weight, destination))
        {
            int nv = n / lanes;
            int block = Math.Clamp((nv + 31) / 32 * 32, 64, 1024);
            Launch("norm.cu", "rmsnorm_vec_" + Suffix(x.DType), ((int)RowsOf(x), 1, 1), block, 0, Ptr(x), Ptr(weight), Ptr(destination), n, eps);
            return;
        }

        Launch("norm.cu", "rmsnorm_" + Suffix(x.DType), ((int)RowsOf(x), 1, 1), RowBlock(n), 0, Ptr(x), Ptr(weight), (int)weight.DType, Ptr(destination), n, eps);
    }

    public void Rope(Tensor x, Tensor positions, Tensor inverseFrequencies, Tensor destination, RopeLayout layout)
    {
        var (_, heads, d, half) = ComputeChecks.RopeArgs(this, x, positions, inverseFrequencies, destination, sameDType: true);
        long n = x.ElementCount;
        Launch("rope.cu", "rope_" + Suffix(x.DType), (GridFor(n), 1, 1), 256, 0, Ptr(x), Ptr(positions), Ptr(inverseFrequencies), Ptr(destination),
            heads, d, half, layout == RopeLayout.RotateHalf ? 0 : 1, n);
    }

    public void Softmax(Tensor x, Tensor destination, float scale = 1f)
    {
        ComputeChecks.SoftmaxArgs(this, x, destination, sameDType: true);
        int n = x.Dim(-1);
        Launch("norm.cu", "softmax_" + Suffix(x.DType), ((int)RowsOf(x), 1, 1), RowBlock(n), 0, Ptr(x), Ptr(destination), n, scale);
    }

    public void SiluMul(Tensor gate, Tensor up, Tensor destination)
    {
        ComputeChecks.SiluMulArgs(this, gate, up, destination, sameDType: true);
        long n = gate.ElementCount;
        int lanes = VecLanes(gate.DType);
        if (n % lanes == 0 && Aligned16(gate, up, destination))
        {
            long nv = n / lanes;
            Launch("silu_mul.cu", "silu_mul_vec_" + Suffix(gate.DType), (GridFor(nv), 1, 1), 256, 0, Ptr(gate), Ptr(up), Ptr(destination), nv);
            return;
        }

        Launch("silu_mul.cu", "silu_mul_" + Suffix(gate.DType), (GridFor(n), 1, 1), 256, 0, Ptr(gate), Ptr(up), Ptr(destination), n);
    }

    public void Embedding(Tensor table, Tensor ids, Tensor destination)
    {
        var (vocab, h) = ComputeChecks.EmbeddingArgs(this, table, ids, destination);
        long rowBytes = DTypes.ByteCount(table.DType, h);
        Launch("embedding.cu", "embedding_gather", ((int)ids.ElementCount, 1, 1), 256, 0, Ptr(table), Ptr(ids), Ptr(destination), vocab, rowBytes);
    }

    public void AttentionPrefill(Tensor q, Tensor k, Tensor v, Tensor destination, float scale)
    {
        var (b, t, hq, d, hkv) = ComputeChecks.AttentionPrefillArgs(this, q, k, v, destination, sameDType: true);
        int smem = (d + 33 + t) * 4;
        Launch("attention.cu", "attention_" + Suffix(q.DType), (t * hq, b, 1), 128, smem,
            Ptr(q), Ptr(k), Ptr(v), Ptr(destination), 0UL, t, hq, hkv, d, t, scale);
    }

    public void AttentionDecode(Tensor q, Tensor kCache, Tensor vCache, Tensor lengths, Tensor destination, float scale)
    {
        var (b, hq, d, maxT, hkv) = ComputeChecks.AttentionDecodeArgs(this, q, kCache, vCache, lengths, destination, sameDType: true);
        int group = hq / hkv;
        if (d % 32 == 0 && d / 32 is 2 or 4 or 8 && group <= 8)
        {
            // split-K decode: K/V read once per kv head for the whole query group, the keys split over enough blocks
            // to fill the GPU, then the partial softmaxes merged
            int splits = Math.Clamp((2 * Context.MultiprocessorCount + hkv * b - 1) / (hkv * b), 1, Math.Max(1, (maxT + 63) / 64));
            int chunk = (maxT + splits - 1) / splits;
            ulong part = Scratch((long)b * hq * splits * (d + 2) * 4);
            Launch("attention.cu", $"attn_decode_split_{Suffix(q.DType)}_r{d / 32}", (hkv, b, splits), 128, 0,
                Ptr(q), Ptr(kCache), Ptr(vCache), Ptr(lengths), part, hq, hkv, maxT, chunk, scale);
            Launch("attention.cu", "attn_decode_combine_" + Suffix(q.DType), (hq, b, 1), d, 0, part, Ptr(destination), hq, d, splits);
            return;
        }

        int smem = (d + 33 + maxT) * 4;
        Launch("attention.cu", "attention_" + Suffix(q.DType), (hq, b, 1), 128, smem,
            Ptr(q), Ptr(kCache), Ptr(vCache), Ptr(destination), Ptr(lengths), 1, hq, hkv, d, maxT, scale);
    }

    public void Argmax(Tensor logits, Tensor destination)
    {
        var (rows, n) = ComputeChecks.RowReductionArgs(this, "Argmax", logits, destination, DType.I32);
        Launch("reduce.cu", "argmax_" + Suffix(logits.DType), ((int)rows, 1, 1), RowBlock(n), 0, Ptr(logits), Ptr(destination), n);
    }

    public void SampleTopKTopP(Tensor logits, Tensor uniforms, Tensor destination, float temperature, int topK, float topP)
    {
        var (rows, n) = ComputeChecks.SampleArgs(this, logits, uniforms, destination);
        if (temperature <= 0) { Argmax(logits, destination); return; }
        Launch("sampling.cu", "sample_" + Suffix(logits.DType), ((int)rows, 1, 1), 1024, 0,
            Ptr(logits), Ptr(uniforms), Ptr(destination), n, 1f / temperature, topK, topP);
    }

    public void Copy(Tensor source, Tensor destination)
    {
        ComputeChecks.SameBackend(this, "Copy", source, destination);
        ComputeChecks.Contiguous("Copy", destination);
        ComputeChecks.SameDType("Copy", source, destination);
        ComputeChecks.SameShape(source, destination, "Copy");
        if (source.Rank > 4) throw GpuOpsException.InvalidArgument("ShapeMismatch", "Copy: at most 4 dimensions.");
        if (source.IsContiguous)
        {
            Context.Bind();
            Check(cuMemcpyDtoDAsync(Ptr(destination), Ptr(source), (nuint)DTypes.ByteCount(source.DType, source.ElementCount), Stream), "cuMemcpyDtoDAsync_v2");
            return;
        }

        if (source.DType == DType.I4) throw GpuOpsException.InvalidArgument("UnsupportedDType", "Copy: strided int4 is not supported.");
        if (IsLastTwoTransposed(source, out int rows, out int cols, out int batch) && DTypes.Bits(source.DType) is 8 or 16 or 32 && batch <= 65535)
        {
            string kn = DTypes.Bits(source.DType) switch { 8 => "transpose_b8", 16 => "transpose_b16", _ => "transpose_b32" };
            Launch("elementwise.cu", kn, ((cols + 31) / 32, (rows + 31) / 32, batch), 256, 0, Ptr(source), Ptr(destination), rows, cols);
            return;
        }

        var s = new int[4];
        var st = new long[4];
        int pad = 4 - source.Rank;
        for (int i = 0; i < 4; i++)
        {
            s[i] = i < pad ? 1 : source.Shape[i - pad];
            st[i] = i < pad ? 0 : source.Strides[i - pad];
        }

        long n = source.ElementCount;
        Launch("elementwise.cu", "copy_strided", (GridFor(n), 1, 1), 256, 0, Ptr(source), Ptr(destination), DTypes.Bits(source.DType) / 8,
            s[0], s[1], s[2], s[3], st[0], st[1], st[2], st[3], n);
    }

    /// <summary>
    /// True when <paramref name="t"/> is a contiguous [batch..., rows, cols] tensor viewed with its last two dimensions
    /// swapped (shape [..., cols, rows], strides [..., 1, cols]).
    /// </summary>
    private static bool IsLastTwoTransposed(Tensor t, out int rows, out int cols, out int batch)
    {
        rows = cols = batch = 0;
        int r = t.Rank;
        if (r < 2) return false;
        cols = t.Shape[r - 2];
        rows = t.Shape[r - 1];
        if (t.Strides[r - 2] != 1 || t.Strides[r - 1] != cols || rows < 2 || cols < 2) return false;
        long expect = (long)rows * cols;
        long nb = 1;
        for (int i = r - 3; i >= 0; i--)
        {
            if (t.Shape[i] != 1 && t.Strides[i] != expect) return false;
            expect *= t.Shape[i];
            nb *= t.Shape[i];
        }

        batch = (int)Math.Min(nb, int.MaxValue);
        return true;
    }

    public void MatMul(Tensor a, Tensor b, Tensor destination, MatMulOptions? options = null)
    {
        var o = options ?? MatMulOptions.Default;
        ComputeChecks.SameBackend(this, "MatMul", a, b, destination, o.Bias);
        ComputeChecks.Contiguous("MatMul", a, b, destination);
        ComputeChecks.MatMulTypes(a, b, destination, o);
        var (m, n, k) = ComputeChecks.MatMulShape(a, b, destination, o);
        if (a.DType == DType.F8E4M3 && Context.Major < 9 && !(Context.Major == 8 && Context.Minor >= 9))
            throw new GpuOpsException("UnsupportedOnThisGpu", ErrorCategory.NotImplemented,
                $"FP8 products need compute capability 8.9 or later; {Context.Name} is {Context.ComputeCapability}.");
        if (o.Bias is not null && o.Bias.DType != destination.DType)
            throw GpuOpsException.InvalidArgument("DTypeMismatch", $"MatMul: the bias must be {DTypes.Name(destination.DType)}.");
        ulong bias = o.Epilogue is MatMulEpilogue.Bias or MatMulEpilogue.ReluBias or MatMulEpilogue.GeluBias && o.Bias is not null ? Ptr(o.Bias) : 0;
        Blas.Run(a.DType, Ptr(a), Ptr(b), Ptr(destination), m, n, k, o, bias, Stream);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            Context.Synchronize();
        }
        finally
        {
            Pool.FreeAll();
            _blas?.Dispose();
            foreach (var m in _modules.Values) m.Dispose();
            _modules.Clear();
            Context.Dispose();
        }
    }
}
