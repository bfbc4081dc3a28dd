using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using GpuOps.Core.Hosting;
using GpuOps.Core.Models;

namespace GpuOps.Core.Compute;

/// <summary>
/// The CPU backend: host memory, multithreaded kernels (System.Numerics.Tensors for the f32 inner loops).
/// It is also the reference every CUDA kernel is tested against: float32 arithmetic with float64 where a sum
/// or an angle needs it, the same rounding to the output dtype as the kernels.
/// </summary>
public sealed unsafe class CpuBackend : IComputeBackend
{
    private readonly ParallelOptions _parallel;

    public CpuBackend(int? threads = null)
    {
        _parallel = new ParallelOptions { MaxDegreeOfParallelism = threads ?? Environment.ProcessorCount };
    }

    public string Name => "cpu";

    public ComputeDevice Device => ComputeDevice.Cpu;

    public TensorPool Pool { get; } = new();

    public Tensor Allocate(DType dtype, int[] shape, string? name = null)
    {
        foreach (var d in shape)
            if (d < 0) throw GpuOpsException.InvalidArgument("ShapeMismatch", $"Negative dimension in [{string.Join(",", shape)}].");
        long bytes = DTypes.ByteCount(dtype, Tensor.ElementCountOf(shape));
        long? free = HostAvailableBytes();
        if (free is { } f && bytes > f)
            throw new GpuOpsException("OutOfMemory", ErrorCategory.ResourceUnavailable,
                $"Allocating {name ?? "a tensor"} {DTypes.Name(dtype)}[{string.Join(",", shape)}] needs {Format(bytes)} of host memory but only {Format(f)} is available.",
                "cpu", null, "Free tensors (Pool.FreeAll) or use a smaller shape.");
        void* p = NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 1), 64);
        var t = new Tensor(this, dtype, shape, Tensor.ContiguousStrides(shape), (IntPtr)p, bytes, null, name, Pool.NextId());
        Pool.Add(t);
        return t;
    }

    public void Free(Tensor tensor, IntPtr pointer)
    {
        NativeMemory.AlignedFree((void*)pointer);
        Pool.Remove(tensor);
    }

    public void Upload(Tensor destination, ReadOnlySpan<byte> source)
    {
        ComputeChecks.Contiguous("Upload", destination);
        long n = DTypes.ByteCount(destination.DType, destination.ElementCount);
        if (source.Length != n) throw GpuOpsException.InvalidArgument("ShapeMismatch", $"Upload: {source.Length} bytes given for {destination.Describe()} ({n} bytes).");
        source.CopyTo(new Span<byte>((void*)destination.Pointer, (int)n));
    }

    public void Download(Tensor source, Span<byte> destination)
    {
        if (!source.IsContiguous)
        {
            using var tmp = Allocate(source.DType, source.Shape);
            Copy(source, tmp);
            Download(tmp, destination);
            return;
        }

        long n = DTypes.ByteCount(source.DType, source.ElementCount);
        if (destination.Length != n) throw GpuOpsException.InvalidArgument("ShapeMismatch", $"Download: {destination.Length} bytes asked of {source.Describe()} ({n} bytes).");
        new ReadOnlySpan<byte>((void*)source.Pointer, (int)n).CopyTo(destination);
    }

    public void FillBytes(Tensor tensor, byte value)
    {
        ComputeChecks.Contiguous("FillBytes", tensor);
        NativeMemory.Fill((void*)tensor.Pointer, (nuint)DTypes.ByteCount(tensor.DType, tensor.ElementCount), value);
    }

    public void Synchronize() { }

    public void Dispose() => Pool.FreeAll();

    // ---------------------------------------------------------------- element access

    /// <summary>Elements [start, start+dst.Length) of a contiguous tensor as floats.</summary>
    internal static void Load(Tensor t, long start, Span<float> dst)
    {
        byte* p = (byte*)t.Pointer;
        if (t.DType == DType.F32) { new ReadOnlySpan<float>(p + start * 4, dst.Length).CopyTo(dst); return; }
        long first = t.DType == DType.I4 ? start & 1 : 0;
        long byteStart = t.DType == DType.I4 ? start >> 1 : start * (DTypes.Bits(t.DType) / 8);
        var span = new ReadOnlySpan<byte>(p + byteStart, (int)DTypes.ByteCount(t.DType, dst.Length + first));
        for (int i = 0; i < dst.Length; i++) dst[i] = DTypes.Load(t.DType, span, first + i);
    }

    internal static void Store(Tensor t, long start, ReadOnlySpan<float> src)
    {
        byte* p = (byte*)t.Pointer;
        if (t.DType == DType.F32) { src.CopyTo(new Span<float>(p + start * 4, src.Length)); return; }
        long first = t.DType == DType.I4 ? start & 1 : 0;
        long byteStart = t.DType == DType.I4 ? start >> 1 : start * (DTypes.Bits(t.DType) / 8);
        var span = new Span<byte>(p + byteStart, (int)DTypes.ByteCount(t.DType, src.Length + first));
        for (int i = 0; i < src.Length; i++) DTypes.Store(t.DType, span, first + i, src[i]);
    }

    internal static float[] All(Tensor t)
    {
        var r = new float[t.ElementCount];
        Load(t, 0, r);
        return r;
    }

    private void Rows(long rows, int width, Tensor input, Tensor output, Action<long, float[], float[]> body, Tensor? input2 = null, float[]? extra = null)
    {
        Parallel.For(0L, rows, _parallel, () => (new float[width], new float[width]), (r, _, bufs) =>
        {
            Load(input, r * width, bufs.Item1);
            if (input2 is not null) Load(input2, r * width, bufs.Item2);
            body(r, bufs.Item1, bufs.Item2);
            Store(output, r * width, bufs.Item2);
            return bufs;
        }, _ => { });
    }

    private static long RowsOf(Tensor t) => ComputeChecks.RowsOf(t);

    // ---------------------------------------------------------------- kernels

    public void Cast(Tensor source, Tensor destination)
    {
        ComputeChecks.CastArgs(this, source, destination);
        const int chunk = 1 << 16;
        long n = source.ElementCount;
        Parallel.For(0L, (n + chunk - 1) / chunk, _parallel, c =>
        {
            long start = c * chunk;
            int len = (int)Math.Min(chunk, n - start);
            // int4 chunks start on byte boundaries (chunk is even), so concurrent nibble stores never share a byte.
            var buf = ArrayPool<float>.Shared.Rent(len);
            Load(source, start, buf.AsSpan(0, len));
            Store(destination, start, buf.AsSpan(0, len));
            ArrayPool<float>.Shared.Return(buf);
        });
    }

    public void Binary(BinaryOp op, Tensor a, Tensor b, Tensor destination)
    {
        long nb = ComputeChecks.BinaryArgs(this, a, b, destination);
        var bv = All(b);
        long n = a.ElementCount;
        int width = (int)Math.Min(nb, 1 << 16);
        if (nb > width) width = (int)nb; // b is a whole row: one row per task
        long rows = (n + width - 1) / width;
        Parallel.For(0L, rows, _parallel, r =>
        {
            long start = r * width;
            int len = (int)Math.Min(width, n - start);
            var x = new float[len];
            Load(a, start, x);
            for (int i = 0; i < len; i++)
            {
                float y = bv[(start + i) % nb];
                x[i] = op switch
                {
                    BinaryOp.Add => x[i] + y,
                    BinaryOp.Sub => x[i] - y,
                    BinaryOp.Mul => x[i] * y,
                    _ => MathF.Max(x[i], y),
                };
            }

            Store(destination, start, x);
        });
    }

    public void Unary(UnaryOp op, Tensor x, Tensor destination, float alpha = 1f)
    {
        ComputeChecks.UnaryArgs(this, x, destination);
        const int chunk = 1 << 16;
        long n = x.ElementCount;
        Parallel.For(0L, (n + chunk - 1) / chunk, _parallel, c =>
        {
            long start = c * chunk;
            int len = (int)Math.Min(chunk, n - start);
            var v = new float[len];
            Load(x, start, v);
            for (int i = 0; i < len; i++) v[i] = UnaryRef(op, v[i], alpha);
            Store(destination, start, v);
        });
    }

    public static float UnaryRef(UnaryOp op, float v, float alpha) => op switch
    {
        UnaryOp.Scale => v * alpha,
        UnaryOp.Silu => (float)(v / (1.0 + Math.Exp(-v))),
        UnaryOp.Relu => v > 0 ? v : 0,
        UnaryOp.Gelu => (float)(0.5 * v * (1 + Math.Tanh(0.7978845608028654 * (v + 0.044715 * (double)v * v * v)))),
        _ => (float)Math.Exp(v),
    };

    public void Reduce(ReduceOp op, Tensor x, Tensor destination)
    {
        var (rows, n) = ComputeChecks.RowReductionArgs(this, "Reduce", x, destination, DType.F32);
        var outp = new float[rows];
        Parallel.For(0L, rows, _parallel, r =>
        {
            var v = new float[n];
            Load(x, r * n, v);
            double acc = op == ReduceOp.Max ? double.NegativeInfinity : 0;
            foreach (var e in v)
            {
                acc = op switch
                {
                    ReduceOp.Max => Math.Max(acc, e),
                    ReduceOp.SumOfSquares => acc + (double)e * e,
                    _ => acc + e,
                };
            }

            outp[r] = (float)(op == ReduceOp.Mean ? acc / n : acc);
        });
        Store(destination, 0, outp);
    }

    public void RmsNorm(Tensor x, Tensor weight, Tensor destination, float eps)
    {
        int n = ComputeChecks.RmsNormArgs(this, x, weight, destination, sameDType: false);
        var w = All(weight);
        Rows(RowsOf(x), n, x, destination, (_, v, o) =>
        {
            double ss = 0;
            foreach (var e in v) ss += (double)e * e;
            float inv = (float)(1.0 / Math.Sqrt(ss / n + eps));
            for (int i = 0; i < n; i++) o[i] = v[i] * inv * w[i];
        });
    }

    public void Rope(Tensor x, Tensor positions, Tensor inverseFrequencies, Tensor destination, RopeLayout layout)
    {
        var (tokens, heads, d, half) = ComputeChecks.RopeArgs(this, x, positions, inverseFrequencies, destination, sameDType: false);
        var pos = positions.ToInt32Array();
        var inv = All(inverseFrequencies);
        Rows((long)tokens * heads, d, x, destination, (r, v, o) =>
        {
            int p = pos[r / heads];
            v.AsSpan().CopyTo(o);
            for (int i = 0; i < half; i++)
            {
                double ang = p * (double)inv[i];
                float c = (float)Math.Cos(ang), s = (float)Math.Sin(ang);
                int i1 = layout == RopeLayout.RotateHalf ? i : 2 * i;
                int i2 = layout == RopeLayout.RotateHalf ? i + half : 2 * i + 1;
                float x1 = v[i1], x2 = v[i2];
                o[i1] = x1 * c - x2 * s;
                o[i2] = x2 * c + x1 * s;
            }
        });
    }

    public void Softmax(Tensor x, Tensor destination, float scale = 1f)
    {
        ComputeChecks.SoftmaxArgs(this, x, destination, sameDType: false);
        int n = x.Dim(-1);
        Rows(RowsOf(x), n, x, destination, (_, v, o) =>
        {
            float m = float.NegativeInfinity;
            foreach (var e in v) m = MathF.Max(m, e * scale);
            double sum = 0;
            for (int i = 0; i < n; i++) { double e = Math.Exp(v[i] * scale - m); o[i] = (float)e; sum += e; }
            float inv = (float)(1.0 / sum);
            TensorPrimitives.Multiply(o, inv, o);
        });
    }

    public void SiluMul(Tensor gate, Tensor up, Tensor destination)
    {
        ComputeChecks.SiluMulArgs(this, gate, up, destination, sameDType: false);
        int n = gate.Dim(-1);
        Rows(RowsOf(gate), n, gate, destination, (_, g, u) =>
        {
            for (int i = 0; i < n; i++) u[i] = (float)(g[i] / (1.0 + Math.Exp(-g[i]))) * u[i];
        }, up);
    }

    public void Embedding(Tensor table, Tensor ids, Tensor destination)
    {
        var (vocab, h) = ComputeChecks.EmbeddingArgs(this, table, ids, destination);
        var idv = ids.ToInt32Array();
        foreach (var id in idv)
            if ((uint)id >= (uint)vocab) throw GpuOpsException.InvalidArgument("IndexOutOfRange", $"Embedding: id {id} is outside the table's {vocab} rows.");
        long rowBytes = DTypes.ByteCount(table.DType, h);
        Parallel.For(0, idv.Length, _parallel, i =>
            Buffer.MemoryCopy((byte*)table.Pointer + idv[i] * rowBytes, (byte*)destination.Pointer + i * rowBytes, rowBytes, rowBytes));
    }

    public void AttentionPrefill(Tensor q, Tensor k, Tensor v, Tensor destination, float scale)
    {
        var (b, t, hq, d, hkv) = ComputeChecks.AttentionPrefillArgs(this, q, k, v, destination, sameDType: false);
        Attend(All(q), All(k), All(v), destination, b, t, hq, hkv, d, t, null, scale);
    }

    public void AttentionDecode(Tensor q, Tensor kCache, Tensor vCache, Tensor lengths, Tensor destination, float scale)
    {
        var (b, hq, d, maxT, hkv) = ComputeChecks.AttentionDecodeArgs(this, q, kCache, vCache, lengths, destination, sameDType: false);
        var len = lengths.ToInt32Array();
        foreach (var l in len)
            if (l < 1 || l > maxT) throw GpuOpsException.InvalidArgument("IndexOutOfRange", $"AttentionDecode: length {l} is outside 1..{maxT}.");
        Attend(All(q), All(kCache), All(vCache), destination, b, 1, hq, hkv, d, maxT, len, scale);
    }

    /// <summary>q [B, nq, Hq, D]; k/v [B, maxT, Hkv, D]. Causal with nq queries ending at position len-1.</summary>
    private void Attend(float[] q, float[] k, float[] v, Tensor destination, int b, int nq, int hq, int hkv, int d, int maxT, int[]? lengths, float scale)
    {
        var outp = new float[q.Length];
        int group = hq / hkv;
        Parallel.For(0, b * nq * hq, _parallel, idx =>
        {
            int h = idx % hq, qi = idx / hq % nq, bi = idx / (hq * nq);
            int len = lengths?[bi] ?? nq;
            int nkeys = len - nq + qi + 1;
            int kh = h / group;
            var qs = new ReadOnlySpan<float>(q, idx * d, d);
            var s = new double[nkeys];
            double m = double.NegativeInfinity;
            for (int j = 0; j < nkeys; j++)
            {
                long ko = (((long)bi * maxT + j) * hkv + kh) * d;
                double dot = 0;
                for (int e = 0; e < d; e++) dot += (double)qs[e] * k[ko + e];
                s[j] = dot * scale;
                m = Math.Max(m, s[j]);
            }

            double sum = 0;
            for (int j = 0; j < nkeys; j++) { s[j] = Math.Exp(s[j] - m); sum += s[j]; }
            var acc = new double[d];
            for (int j = 0; j < nkeys; j++)
            {
                long vo = (((long)bi * maxT + j) * hkv + kh) * d;
                double p = s[j] / sum;
                for (int e = 0; e < d; e++) acc[e] += p * v[vo + e];
            }

            for (int e = 0; e < d; e++) outp[(long)idx * d + e] = (float)acc[e];
        });
        Store(destination, 0, outp);
    }

    public void Argmax(Tensor logits, Tensor destination)
    {
        var (rows, n) = ComputeChecks.RowReductionArgs(this, "Argmax", logits, destination, DType.I32);
        var ids = new int[rows];
        Parallel.For(0L, rows, _parallel, r =>
        {
            var v = new float[n];
            Load(logits, r * n, v);
            int best = 0;
            for (int i = 1; i < n; i++) if (v[i] > v[best]) best = i;
            ids[r] = best;
        });
        destination.CopyFrom<int>(ids);
    }

    public void SampleTopKTopP(Tensor logits, Tensor uniforms, Tensor destination, float temperature, int topK, float topP)
    {
        var (rows, n) = ComputeChecks.SampleArgs(this, logits, uniforms, destination);
        if (temperature <= 0) { Argmax(logits, destination); return; }
        var u = All(uniforms);
        var ids = new int[rows];
        Parallel.For(0L, rows, _parallel, r =>
        {
            var x = new float[n];
            Load(logits, r * n, x);
            ids[r] = SampleRow(x, u[r], temperature, topK, topP);
        });
        destination.CopyFrom<int>(ids);
    }

    /// <summary>The sampling rule of <see cref="IComputeBackend.SampleTopKTopP"/> for one row (the reference).</summary>
    public static int SampleRow(float[] logits, float u, float temperature, int topK, float topP)
    {
        int n = logits.Length;
        float invT = 1f / temperature;
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = logits[i] * invT;
        var keep = new bool[n];
        float kth = float.NegativeInfinity;
        if (topK > 0 && topK < n)
        {
            var sorted = (float[])x.Clone();
            Array.Sort(sorted);
            kth = sorted[n - topK];
        }

        float m = float.NegativeInfinity;
        for (int i = 0; i < n; i++) { keep[i] = x[i] >= kth; if (keep[i]) m = MathF.Max(m, x[i]); }
        var p = new float[n];
        double z = 0;
        for (int i = 0; i < n; i++) if (keep[i]) { p[i] = MathF.Exp(x[i] - m); z += p[i]; }
        if (topP < 1f)
        {
            var kept = new List<float>();
            for (int i = 0; i < n; i++) if (keep[i]) kept.Add(p[i]);
            kept.Sort((a, b) => b.CompareTo(a));
            double target = topP * z, acc = 0;
            float tau = kept[^1];
            for (int j = 0; j < kept.Count; j++)
            {
                acc += kept[j];
                if (acc >= target)
                {
                    tau = kept[j];
                    break;
                }
            }

            // Every probability equal to tau is kept (the threshold rule), so the mass is recounted below.
            z = 0;
            for (int i = 0; i < n; i++) { keep[i] = keep[i] && p[i] >= tau; if (keep[i]) z += p[i]; }
        }

        double goal = u * z, run = 0;
        int last = 0;
        for (int i = 0; i < n; i++)
        {
            if (!keep[i]) continue;
            run += p[i];
            last = i;
            if (run > goal) return i;
        }

        return last;
    }

    public void Copy(Tensor source, Tensor destination)
    {
        ComputeChecks.SameBackend(this, "Copy", source, destination);
        ComputeChecks.Contiguous("Copy", destination);
        ComputeChecks.SameDType("Copy", source, destination);
        ComputeChecks.SameShape(source, destination, "Copy");
        if (source.Rank > 4) throw GpuOpsException.InvalidArgument("ShapeMismatch", "Copy: at most 4 dimensions.");
        if (source.DType == DType.I4 && !source.IsContiguous) throw GpuOpsException.InvalidArgument("UnsupportedDType", "Copy: strided int4 is not supported.");
        int es = Math.Max(1, DTypes.Bits(source.DType) / 8);
        if (source.IsContiguous)
        {
            long bytes = DTypes.ByteCount(source.DType, source.ElementCount);
            Buffer.MemoryCopy((void*)source.Pointer, (void*)destination.Pointer, bytes, bytes);
            return;
        }

        var shape = new int[4]; var strides = new long[4];
        int pad = 4 - source.Rank;
        for (int i = 0; i < 4; i++)
        {
            shape[i] = i < pad ? 1 : source.Shape[i - pad];
            strides[i] = i < pad ? 0 : source.Strides[i - pad];
        }

        byte* src = (byte*)source.Pointer, dst = (byte*)destination.Pointer;
        Parallel.For(0, shape[0] * shape[1] * shape[2], _parallel, r =>
        {
            int i2 = r % shape[2], i1 = r / shape[2] % shape[1], i0 = r / (shape[2] * shape[1]);
            long so = i0 * strides[0] + i1 * strides[1] + i2 * strides[2];
            long dOff = (long)r * shape[3];
            for (int i3 = 0; i3 < shape[3]; i3++)
                Buffer.MemoryCopy(src + (so + i3 * strides[3]) * es, dst + (dOff + i3) * es, es, es);
        });
    }

    public void MatMul(Tensor a, Tensor b, Tensor destination, MatMulOptions? options = null)
    {
        var o = options ?? MatMulOptions.Default;
        ComputeChecks.SameBackend(this, "MatMul", a, b, destination, o.Bias);
        ComputeChecks.Contiguous("MatMul", a, b, destination);
        ComputeChecks.MatMulTypes(a, b, destination, o);
        var (m, n, k) = ComputeChecks.MatMulShape(a, b, destination, o);
        if (a.DType == DType.I8)
        {
            var ai = new ReadOnlySpan<sbyte>((void*)a.Pointer, m * k).ToArray();
            var bi = new ReadOnlySpan<sbyte>((void*)b.Pointer, n * k).ToArray();
            int* dp = (int*)destination.Pointer;
            int alphaI = (int)o.Alpha, betaI = (int)o.Beta;
            Parallel.For(0, m, _parallel, i =>
            {
                for (int j = 0; j < n; j++)
                {
                    int acc = 0;
                    for (int e = 0; e < k; e++) acc += ai[i * k + e] * bi[j * k + e];
                    long idx = (long)i * n + j;
                    dp[idx] = alphaI * acc + (betaI == 0 ? 0 : betaI * dp[idx]);
                }
            });
            return;
        }

        float[] bt; // B as [N, K] floats
        if (o.TransposeB) bt = All(b);
        else
        {
            var bf = All(b);
            bt = new float[(long)n * k];
            Parallel.For(0, k, _parallel, e => { for (int j = 0; j < n; j++) bt[(long)j * k + e] = bf[(long)e * n + j]; });
        }

        bool tf32 = a.DType == DType.F32 && o.AllowTf32;
        if (tf32) for (long i = 0; i < bt.Length; i++) bt[i] = RoundTf32(bt[i]);
        float[]? bias = o.Bias is null ? null : All(o.Bias);
        Parallel.For(0, m, _parallel, () => (new float[k], new float[n]), (i, _, bufs) =>
        {
            var (ar, row) = bufs;
            Load(a, (long)i * k, ar);
            if (tf32) for (int e = 0; e < k; e++) ar[e] = RoundTf32(ar[e]);
            if (o.Beta != 0) Load(destination, (long)i * n, row);
            for (int j = 0; j < n; j++)
            {
                float acc = o.Alpha * TensorPrimitives.Dot(ar, new ReadOnlySpan<float>(bt, j * k, k));
                if (o.Beta != 0) acc += o.Beta * row[j];
                if (bias is not null && o.Epilogue is MatMulEpilogue.Bias or MatMulEpilogue.ReluBias or MatMulEpilogue.GeluBias) acc += bias[j];
                if (o.Epilogue is MatMulEpilogue.Relu or MatMulEpilogue.ReluBias) acc = MathF.Max(acc, 0);
                if (o.Epilogue is MatMulEpilogue.Gelu or MatMulEpilogue.GeluBias) acc = UnaryRef(UnaryOp.Gelu, acc, 1);
                row[j] = acc;
            }

            Store(destination, (long)i * n, row);
            return bufs;
        }, _ => { });
    }

    private static float RoundTf32(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        if ((u & 0x7F800000u) == 0x7F800000u) return f;
        u += 0xFFFu + ((u >> 13) & 1u);
        return BitConverter.UInt32BitsToSingle(u & 0xFFFFE000u);
    }

    private static long? HostAvailableBytes()
    {
        try
        {
            if (OperatingSystem.IsLinux())
            {
                foreach (var line in File.ReadLines("/proc/meminfo"))
                {
                    if (!line.StartsWith("MemAvailable:", StringComparison.Ordinal)) continue;
                    var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    return long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture) * 1024;
                }
            }
        }
        catch (IOException)
        {
        }

        return null;
    }

    internal static string Format(long bytes) => bytes >= 1L << 30 ? $"{bytes / (double)(1L << 30):0.00} GiB" : $"{bytes / (double)(1L << 20):0.0} MiB";
}
