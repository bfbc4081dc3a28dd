using GpuOps.Core.Hosting;
using GpuOps.Core.Models;

namespace GpuOps.Core.Compute;

public enum BinaryOp { Add = 0, Sub = 1, Mul = 2, Max = 3 }

public enum UnaryOp { Scale = 0, Silu = 1, Relu = 2, Gelu = 3, Exp = 4 }

public enum ReduceOp { Sum = 0, Max = 1, Mean = 2, SumOfSquares = 3 }

/// <summary>Fused epilogue of a matrix product.</summary>
public enum MatMulEpilogue { None, Bias, Relu, ReluBias, Gelu, GeluBias }

/// <summary>Options of <see cref="IComputeBackend.MatMul"/>.</summary>
public sealed record MatMulOptions
{
    /// <summary>B is stored [N, K] (a Linear layer's weight) instead of [K, N].</summary>
    public bool TransposeB { get; init; }

    public float Alpha { get; init; } = 1f;

    /// <summary>Scale of the existing output (accumulate into it); 0 overwrites.</summary>
    public float Beta { get; init; }

    public MatMulEpilogue Epilogue { get; init; } = MatMulEpilogue.None;

    /// <summary>Bias [N] for the Bias epilogues (same dtype as the output, f32 for int8 products is not supported).</summary>
    public Tensor? Bias { get; init; }

    /// <summary>For f32 products: let the matrix units round inputs to tf32.</summary>
    public bool AllowTf32 { get; init; }

    public static readonly MatMulOptions Default = new();
}

/// <summary>
/// One compute interface for the CPU and CUDA backends. Every kernel has a CPU reference (the CPU backend) and
/// a CUDA implementation (kernels/*.cu) that tests compare on fresh random inputs. Shapes are row-major; float
/// kernels accept f32, f16 and bf16 and compute in f32. Calls are ordered on the backend's stream: results are
/// visible to <see cref="Tensor.CopyTo{T}"/> (which synchronises) or after <see cref="Synchronize"/>.
/// </summary>
public interface IComputeBackend : IDisposable
{
    /// <summary>"cpu" or "cuda".</summary>
    string Name { get; }

    ComputeDevice Device { get; }

    /// <summary>Every live tensor of this backend; disposing the backend frees what is left.</summary>
    TensorPool Pool { get; }

    /// <summary>Allocate (uninitialised). Refuses before allocating when the memory is not free.</summary>
    Tensor Allocate(DType dtype, int[] shape, string? name = null);

    void Free(Tensor tensor, IntPtr pointer);

    /// <summary>Bytes in, contiguous, length must equal the tensor's byte count.</summary>
    void Upload(Tensor destination, ReadOnlySpan<byte> source);

    void Download(Tensor source, Span<byte> destination);

    /// <summary>Set every byte (tests poison outputs with 0xFF: NaN in every float type).</summary>
    void FillBytes(Tensor tensor, byte value);

    void Synchronize();

    /// <summary>dst = (dtype of dst)src, elementwise; any pair of dtypes.</summary>
    void Cast(Tensor source, Tensor destination);

    /// <summary>dst = a op b; b is broadcast along rows when it has fewer elements (a's count a multiple of b's).</summary>
    void Binary(BinaryOp op, Tensor a, Tensor b, Tensor destination);

    /// <summary>dst = f(x); <paramref name="alpha"/> is the factor of Scale.</summary>
    void Unary(UnaryOp op, Tensor x, Tensor destination, float alpha = 1f);

    /// <summary>Reduce the last dimension: x [..., n] to f32 [...].</summary>
    void Reduce(ReduceOp op, Tensor x, Tensor destination);

    /// <summary>dst = x / sqrt(mean(x²) + eps) * weight over the last dimension.</summary>
    void RmsNorm(Tensor x, Tensor weight, Tensor destination, float eps);

    /// <summary>
    /// Rotary embedding of x [tokens, heads, headDim] at positions (i32 [tokens]) with inverse frequencies
    /// (f32 [rotaryDim/2]); the first rotaryDim = 2·invFreq.Length dimensions rotate, the rest are copied.
    /// </summary>
    void Rope(Tensor x, Tensor positions, Tensor inverseFrequencies, Tensor destination, RopeLayout layout);

    /// <summary>Softmax of scale·x over the last dimension.</summary>
    void Softmax(Tensor x, Tensor destination, float scale = 1f);

    /// <summary>dst = silu(gate) · up.</summary>
    void SiluMul(Tensor gate, Tensor up, Tensor destination);

    /// <summary>dst[i, :] = table[ids[i], :] (ids i32).</summary>
    void Embedding(Tensor table, Tensor ids, Tensor destination);

    /// <summary>
    /// Causal attention over a prompt: q [B, T, Hq, D], k and v [B, T, Hkv, D] (Hq a multiple of Hkv: grouped-query
    /// heads), dst [B, T, Hq, D]. Query t attends keys 0..t.
    /// </summary>
    void AttentionPrefill(Tensor q, Tensor k, Tensor v, Tensor destination, float scale);

    /// <summary>
    /// Decode attention: q [B, Hq, D] against caches k and v [B, MaxT, Hkv, D], where sequence b uses positions
    /// 0..lengths[b]-1 (lengths i32 [B]); dst [B, Hq, D]. The CUDA backend splits the keys over blocks and keeps the
    /// partial results in a workspace it allocates on first use: call it once before capturing it in a graph.
    /// </summary>
    void AttentionDecode(Tensor q, Tensor kCache, Tensor vCache, Tensor lengths, Tensor destination, float scale);

    /// <summary>Index of the largest value of each row: logits [B, V] to i32 [B] (ties: lowest index).</summary>
    void Argmax(Tensor logits, Tensor destination);

    /// <summary>
    /// Sample one id per row of logits [B, V]: temperature, then top-k (keep logits ≥ the k-th largest; 0 = off),
    /// then top-p (keep probabilities ≥ the largest threshold whose kept mass ≥ p; 1 = off); the token is the first
    /// kept index (ascending) where the running kept mass exceeds u·(kept mass), u = uniforms[b] in [0,1).
    /// </summary>
    void SampleTopKTopP(Tensor logits, Tensor uniforms, Tensor destination, float temperature, int topK, float topP);

    /// <summary>dst (contiguous) = src (any strides, rank ≤ 4, same dtype): copies and transposes.</summary>
    void Copy(Tensor source, Tensor destination);

    /// <summary>
    /// dst [M, N] = alpha · a [M, K] · b ([K, N], or [N, K] with TransposeB) + beta · dst, with the epilogue.
    /// dtypes: f32 (optionally tf32), f16, bf16 (output same as a), f8e4m3 (TransposeB, output bf16), i8 (TransposeB, output i32).
    /// </summary>
    void MatMul(Tensor a, Tensor b, Tensor destination, MatMulOptions? options = null);
}

/// <summary>Shape checks shared by the backends; every message names the tensors involved.</summary>
public static partial class ComputeChecks
{
    public static void SameShape(Tensor a, Tensor b, string op)
    {
        if (!a.Shape.AsSpan().SequenceEqual(b.Shape))
            throw GpuOpsException.InvalidArgument("ShapeMismatch", $"{op}: {a.Describe()} and {b.Describe()} must have the same shape.");
    }

    public static void Elements(Tensor a, long n, string op)
    {
        if (a.ElementCount != n)
            throw GpuOpsException.InvalidArgument("ShapeMismatch", $"{op}: {a.Describe()} must have {n} elements.");
    }

    public static void Contiguous(string op, params Tensor[] ts)
    {
        foreach (var t in ts)
            if (!t.IsContiguous)
                throw GpuOpsException.InvalidArgument("TensorNotContiguous", $"{op}: {t.Describe()} must be contiguous (Copy it first).");
    }

    public static void Float(string op, params Tensor[] ts)
    {
        foreach (var t in ts)
            if (t.DType is not (DType.F32 or DType.F16 or DType.BF16))
                throw GpuOpsException.InvalidArgument("UnsupportedDType", $"{op}: {t.Describe()} must be f32, f16 or bf16.");
    }

    public static void OfDType(Tensor t, DType d, string op)
    {
        if (t.DType != d) throw GpuOpsException.InvalidArgument("DTypeMismatch", $"{op}: {t.Describe()} must be {DTypes.Name(d)}.");
    }

    public static void SameDType(string op, Tensor a, params Tensor[] others)
    {
        foreach (var t in others)
            if (t.DType != a.DType)
                throw GpuOpsException.InvalidArgument("DTypeMismatch", $"{op}: {t.Describe()} must have the dtype of {a.Describe()}.");
    }

    public static void Rank(Tensor t, int rank, string op)
    {
        if (t.Rank != rank) throw GpuOpsException.InvalidArgument("ShapeMismatch", $"{op}: {t.Describe()} must have {rank} dimensions.");
    }

    public static void SameBackend(IComputeBackend b, string op, params Tensor?[] ts)
    {
        foreach (var t in ts)
            if (t is not null && !ReferenceEquals(t.Backend, b))
                throw GpuOpsException.InvalidArgument("DeviceMismatch", $"{op}: {t.Describe()} belongs to another backend ({t.Device}).");
    }

    /// <summary>(M, N, K) of a matrix product, checked.</summary>
    public static (int M, int N, int K) MatMulShape(Tensor a, Tensor b, Tensor d, MatMulOptions o)
    {
        Rank(a, 2, "MatMul"); Rank(b, 2, "MatMul"); Rank(d, 2, "MatMul");
        int m = a.Shape[0], k = a.Shape[1];
        int n = o.TransposeB ? b.Shape[0] : b.Shape[1];
        int kb = o.TransposeB ? b.Shape[1] : b.Shape[0];
        if (kb != k || d.Shape[0] != m || d.Shape[1] != n)
            throw GpuOpsException.InvalidArgument("ShapeMismatch",
                $"MatMul: {a.Describe()} × {b.Describe()}{(o.TransposeB ? "ᵀ" : "")} does not give {d.Describe()}.");
        if (o.Epilogue is MatMulEpilogue.Bias or MatMulEpilogue.ReluBias or MatMulEpilogue.GeluBias)
        {
            if (o.Bias is null || o.Bias.ElementCount != n)
                throw GpuOpsException.InvalidArgument("ShapeMismatch", $"MatMul: the {o.Epilogue} epilogue needs a bias of {n} elements.");
        }

        return (m, n, k);
    }

    /// <summary>The output dtype a product of <paramref name="input"/> operands writes.</summary>
    public static DType MatMulOutput(DType input) => input switch
    {
        DType.F8E4M3 => DType.BF16,
        DType.I8 => DType.I32,
        _ => input,
    };

    public static void MatMulTypes(Tensor a, Tensor b, Tensor d, MatMulOptions o)
    {
        SameDType("MatMul", a, b);
        if (a.DType is not (DType.F32 or DType.F16 or DType.BF16 or DType.F8E4M3 or DType.I8))
            throw GpuOpsException.InvalidArgument("UnsupportedDType", $"MatMul: {DTypes.Name(a.DType)} operands are not supported (f32, f16, bf16, f8e4m3, i8).");
        if (d.DType != MatMulOutput(a.DType))
            throw GpuOpsException.InvalidArgument("DTypeMismatch", $"MatMul: {DTypes.Name(a.DType)} operands write {DTypes.Name(MatMulOutput(a.DType))}, not {d.Describe()}.");
        if (a.DType is DType.F8E4M3 or DType.I8 && !o.TransposeB)
            throw GpuOpsException.InvalidArgument("UnsupportedLayout", $"MatMul: {DTypes.Name(a.DType)} products need B stored [N, K] (TransposeB).");
        if (a.DType == DType.I8 && o.Epilogue != MatMulEpilogue.None)
            throw GpuOpsException.InvalidArgument("UnsupportedEpilogue", "MatMul: int8 products support no epilogue.");
    }
}
