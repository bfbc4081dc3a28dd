using GpuOps.Core.Hosting;

namespace GpuOps.Core.Compute;

// The argument contract of each IComputeBackend operation, checked the same way by every backend (CpuBackend,
// CudaBackend); each returns the shape facts the operation goes on with. A backend's own restrictions come on top:
// sameDType = the CUDA kernels take one dtype for their float operands, where the CPU reference converts each.
public static partial class ComputeChecks
{
    /// <summary>Rows of a tensor seen as [rows, last dimension] (1 for a scalar).</summary>
    public static long RowsOf(Tensor t) => t.Rank == 0 ? 1 : t.ElementCount / Math.Max(1, t.Dim(-1));

    public static void CastArgs(IComputeBackend be, Tensor source, Tensor destination)
    {
        SameBackend(be, "Cast", source, destination);
        Contiguous("Cast", source, destination);
        Elements(destination, source.ElementCount, "Cast");
    }

    /// <summary>b broadcasts over a (a's element count a multiple of b's); returns b's element count.</summary>
    public static long BinaryArgs(IComputeBackend be, Tensor a, Tensor b, Tensor destination)
    {
        SameBackend(be, "Binary", a, b, destination);
        Contiguous("Binary", a, b, destination);
        Float("Binary", a, b, destination);
        SameShape(a, destination, "Binary");
        long nb = b.ElementCount;
        if (nb == 0 || a.ElementCount % nb != 0)
            throw GpuOpsException.InvalidArgument("ShapeMismatch", $"Binary: {b.Describe()} does not broadcast over {a.Describe()}.");
        return nb;
    }

    public static void UnaryArgs(IComputeBackend be, Tensor x, Tensor destination)
    {
        SameBackend(be, "Unary", x, destination);
        Contiguous("Unary", x, destination);
        Float("Unary", x, destination);
        SameShape(x, destination, "Unary");
    }

    /// <summary>A reduction over the last dimension into f32 (Reduce) or int32 ids (Argmax): (rows, last dimension).</summary>
    public static (long Rows, int N) RowReductionArgs(IComputeBackend be, string op, Tensor x, Tensor destination, DType output)
    {
        SameBackend(be, op, x, destination);
        Contiguous(op, x, destination);
        Float(op, x);
        OfDType(destination, output, op);
        long rows = RowsOf(x);
        Elements(destination, rows, op);
        return (rows, x.Dim(-1));
    }

    /// <summary>Returns the normalised (last) dimension.</summary>
    public static int RmsNormArgs(IComputeBackend be, Tensor x, Tensor weight, Tensor destination, bool sameDType)
    {
        SameBackend(be, "RmsNorm", x, weight, destination);
        Contiguous("RmsNorm", x, weight, destination);
        Float("RmsNorm", x, weight, destination);
        SameShape(x, destination, "RmsNorm");
        if (sameDType) SameDType("RmsNorm", x, destination);
        int n = x.Dim(-1);
        Elements(weight, n, "RmsNorm");
        return n;
    }

    /// <summary>x [tokens, heads, d]; returns those and the rotated pairs (the inverse frequencies' count).</summary>
    public static (int Tokens, int Heads, int D, int Half) RopeArgs(IComputeBackend be, Tensor x, Tensor positions, Tensor inverseFrequencies, Tensor destination, bool sameDType)
    {
        SameBackend(be, "Rope", x, positions, inverseFrequencies, destination);
        Contiguous("Rope", x, positions, inverseFrequencies, destination);
        Float("Rope", x, destination);
        if (sameDType) SameDType("Rope", x, destination);
        Rank(x, 3, "Rope");
        SameShape(x, destination, "Rope");
        OfDType(positions, DType.I32, "Rope");
        OfDType(inverseFrequencies, DType.F32, "Rope");
        int tokens = x.Shape[0], heads = x.Shape[1], d = x.Shape[2];
        Elements(positions, tokens, "Rope");
        int half = (int)inverseFrequencies.ElementCount;
        if (2 * half > d) throw GpuOpsException.InvalidArgument("ShapeMismatch", $"Rope: {inverseFrequencies.Describe()} rotates more than head dim {d}.");
        return (tokens, heads, d, half);
    }

    public static void SoftmaxArgs(IComputeBackend be, Tensor x, Tensor destination, bool sameDType)
    {
        SameBackend(be, "Softmax", x, destination);
        Contiguous("Softmax", x, destination);
        Float("Softmax", x, destination);
        if (sameDType) SameDType("Softmax", x, destination);
        SameShape(x, destination, "Softmax");
    }

    public static void SiluMulArgs(IComputeBackend be, Tensor gate, Tensor up, Tensor destination, bool sameDType)
    {
        SameBackend(be, "SiluMul", gate, up, destination);
        Contiguous("SiluMul", gate, up, destination);
        Float("SiluMul", gate, up, destination);
        if (sameDType) SameDType("SiluMul", gate, up, destination);
        SameShape(gate, up, "SiluMul");
        SameShape(gate, destination, "SiluMul");
    }

    /// <summary>table [vocab, h] (int4 rows of even length), int32 ids, destination ids x h of the table's dtype.</summary>
    public static (int Vocab, int H) EmbeddingArgs(IComputeBackend be, Tensor table, Tensor ids, Tensor destination)
    {
        SameBackend(be, "Embedding", table, ids, destination);
        Contiguous("Embedding", table, ids, destination);
        Rank(table, 2, "Embedding");
        OfDType(ids, DType.I32, "Embedding");
        SameDType("Embedding", table, destination);
        int vocab = table.Shape[0], h = table.Shape[1];
        Elements(destination, ids.ElementCount * h, "Embedding");
        if (table.DType == DType.I4 && h % 2 != 0) throw GpuOpsException.InvalidArgument("UnsupportedDType", "Embedding: int4 rows must have an even length.");
        return (vocab, h);
    }

    /// <summary>q [B, T, Hq, D], k/v [B, T, Hkv, D] with Hq a multiple of Hkv.</summary>
    public static (int B, int T, int Hq, int D, int Hkv) AttentionPrefillArgs(IComputeBackend be, Tensor q, Tensor k, Tensor v, Tensor destination, bool sameDType)
    {
        SameBackend(be, "AttentionPrefill", q, k, v, destination);
        Contiguous("AttentionPrefill", q, k, v, destination);
        Float("AttentionPrefill", q, k, v, destination);
        if (sameDType) SameDType("AttentionPrefill", q, k, v, destination);
        Rank(q, 4, "AttentionPrefill"); Rank(k, 4, "AttentionPrefill");
        SameShape(k, v, "AttentionPrefill"); SameShape(q, destination, "AttentionPrefill");
        int b = q.Shape[0], t = q.Shape[1], hq = q.Shape[2], d = q.Shape[3], hkv = k.Shape[2];
        if (k.Shape[0] != b || k.Shape[1] != t || k.Shape[3] != d || hkv == 0 || hq % hkv != 0)
            throw GpuOpsException.InvalidArgument("ShapeMismatch", $"AttentionPrefill: {q.Describe()} and {k.Describe()} do not match (heads must group evenly).");
        return (b, t, hq, d, hkv);
    }

    /// <summary>q [B, Hq, D], k/v caches [B, maxT, Hkv, D] with Hq a multiple of Hkv, int32 lengths [B] (their values are
    /// the backend's to check: the CPU reference does, the CUDA kernels read them on the device).</summary>
    public static (int B, int Hq, int D, int MaxT, int Hkv) AttentionDecodeArgs(IComputeBackend be, Tensor q, Tensor kCache, Tensor vCache, Tensor lengths, Tensor destination, bool sameDType)
    {
        SameBackend(be, "AttentionDecode", q, kCache, vCache, lengths, destination);
        Contiguous("AttentionDecode", q, kCache, vCache, lengths, destination);
        Float("AttentionDecode", q, kCache, vCache, destination);
        if (sameDType) SameDType("AttentionDecode", q, kCache, vCache, destination);
        Rank(q, 3, "AttentionDecode"); Rank(kCache, 4, "AttentionDecode");
        SameShape(kCache, vCache, "AttentionDecode"); SameShape(q, destination, "AttentionDecode");
        OfDType(lengths, DType.I32, "AttentionDecode");
        int b = q.Shape[0], hq = q.Shape[1], d = q.Shape[2], maxT = kCache.Shape[1], hkv = kCache.Shape[2];
        if (kCache.Shape[0] != b || kCache.Shape[3] != d || hkv == 0 || hq % hkv != 0)
            throw GpuOpsException.InvalidArgument("ShapeMismatch", $"AttentionDecode: {q.Describe()} and {kCache.Describe()} do not match (heads must group evenly).");
        Elements(lengths, b, "AttentionDecode");
        return (b, hq, d, maxT, hkv);
    }

    /// <summary>Sampling: f32 uniforms and int32 ids, one a row; returns (rows, vocabulary).</summary>
    public static (long Rows, int N) SampleArgs(IComputeBackend be, Tensor logits, Tensor uniforms, Tensor destination)
    {
        SameBackend(be, "Sample", logits, uniforms, destination);
        Contiguous("Sample", logits, uniforms, destination);
        Float("Sample", logits);
        OfDType(uniforms, DType.F32, "Sample");
        OfDType(destination, DType.I32, "Sample");
        long rows = RowsOf(logits);
        Elements(destination, rows, "Sample");
        Elements(uniforms, rows, "Sample");
        return (rows, logits.Dim(-1));
    }
}
