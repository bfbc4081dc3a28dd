using GpuOps.Core.Compute;
using GpuOps.Core.Models;
using GpuOps.Cuda;
using GpuOps.Tests.Support;
using Xunit;

namespace GpuOps.Tests.Compute;

/// <summary>
/// Every CUDA kernel against its CPU reference on fresh random inputs (a new seed each run, printed on failure),
/// with the outputs poisoned (0xFF bytes: NaN in every float type) so an unwritten element fails the check.
/// Error measure: ‖gpu − cpu‖ / ‖cpu‖ with per-dtype tolerances.
/// </summary>
[Collection("Cuda")]
public sealed class CudaKernelTests : IDisposable
{
    private readonly CpuBackend _cpu = new();
    private readonly CudaBackend? _gpu;
    private readonly int _seed = Environment.TickCount;
    private readonly Random _rng;

    public CudaKernelTests()
    {
        _rng = new Random(_seed);
        if (Gpu.Present) _gpu = new CudaBackend(0);
    }

    private CudaBackend G => _gpu!;

    public void Dispose()
    {
        _cpu.Dispose();
        _gpu?.Dispose();
    }

    public static double Tolerance(DType t) => t switch
    {
        DType.F32 => 2e-5,
        DType.F16 => 3e-3,
        DType.BF16 => 1.5e-2,
        _ => 0,
    };

    public static double RelErr(float[] got, float[] want)
    {
        Assert.Equal(want.Length, got.Length);
        double num = 0, den = 0;
        for (int i = 0; i < got.Length; i++)
        {
            if (float.IsNaN(got[i]) && !float.IsNaN(want[i])) return double.PositiveInfinity;
            double d = (double)got[i] - want[i];
            num += d * d;
            den += (double)want[i] * want[i];
        }

        return Math.Sqrt(num) / Math.Max(Math.Sqrt(den), 1e-30);
    }

    private float[] Rand(int n, float scale = 1f)
    {
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float)(_rng.NextDouble() * 2 - 1) * scale;
        return v;
    }

    private (Tensor C, Tensor G) In(DType dt, int[] shape, float[] v)
    {
        var c = _cpu.Allocate(dt, shape);
        c.CopyFromFloats(v);
        var g = G.Allocate(dt, shape);
        g.CopyFrom<byte>(c.ToBytes());
        return (c, g);
    }

    private (Tensor C, Tensor G) InInt(int[] shape, int[] v)
    {
        var c = _cpu.Allocate(DType.I32, shape);
        c.CopyFrom<int>(v);
        var g = G.Allocate(DType.I32, shape);
        g.CopyFrom<int>(v);
        return (c, g);
    }

    private (Tensor C, Tensor G) Out(DType dt, int[] shape)
    {
        var c = _cpu.Allocate(dt, shape);
        var g = G.Allocate(dt, shape);
        _cpu.FillBytes(c, 0xFF);
        G.FillBytes(g, 0xFF);
        return (c, g);
    }

    private void Close((Tensor C, Tensor G) o, DType dt, string what, double? tol = null)
    {
        var want = o.C.ToFloatArray();
        var got = o.G.ToFloatArray();
        Assert.DoesNotContain(got, float.IsNaN);
        double err = RelErr(got, want);
        double t = tol ?? Tolerance(dt);
        Assert.True(err <= t, $"{what} {DTypes.Name(dt)}: relative error {err:E2} > {t:E1} (seed {_seed})");
    }

    public static TheoryData<DType> FloatTypes => new() { DType.F32, DType.F16, DType.BF16 };

    [GpuFact]
    public void Cast_between_every_pair_of_dtypes_is_bit_exact()
    {
        var all = Enum.GetValues<DType>();
        int n = 4098;
        var v = Rand(n, 300f);
        for (int i = 0; i < 64; i++) v[i] = Rand(1, 3f)[0]; // small values, where int4 and fp8 have resolution
        foreach (var s in all)
        {
            var src = In(s, [n], v);
            foreach (var d in all)
            {
                var o = Out(d, [n]);
                _cpu.Cast(src.C, o.C);
                G.Cast(src.G, o.G);
                Assert.True(o.C.ToBytes().AsSpan().SequenceEqual(o.G.ToBytes()), $"cast {DTypes.Name(s)} -> {DTypes.Name(d)} differs (seed {_seed})");
            }
        }
    }

    [GpuTheory]
    [MemberData(nameof(FloatTypes))]
    public void Binary_and_unary_ops(DType dt)
    {
        int rows = 37, cols = 513;
        var a = In(dt, [rows, cols], Rand(rows * cols, 3));
        var b = In(dt, [rows, cols], Rand(rows * cols, 3));
        var row = In(dt, [cols], Rand(cols, 3));
        foreach (var op in Enum.GetValues<BinaryOp>())
        {
            var o = Out(dt, [rows, cols]);
            _cpu.Binary(op, a.C, b.C, o.C); G.Binary(op, a.G, b.G, o.G);
            Close(o, dt, $"binary {op}");
            var o2 = Out(dt, [rows, cols]);
            _cpu.Binary(op, a.C, row.C, o2.C); G.Binary(op, a.G, row.G, o2.G);
            Close(o2, dt, $"binary {op} (row broadcast)");
        }

        foreach (var op in Enum.GetValues<UnaryOp>())
        {
            var o = Out(dt, [rows, cols]);
            _cpu.Unary(op, a.C, o.C, 0.75f); G.Unary(op, a.G, o.G, 0.75f);
            Close(o, dt, $"unary {op}");
        }
    }

    [GpuTheory]
    [MemberData(nameof(FloatTypes))]
    public void Reductions_over_rows(DType dt)
    {
        foreach (var cols in new[] { 1, 100, 4096, 5001 })
        {
            var x = In(dt, [23, cols], Rand(23 * cols, 2));
            foreach (var op in Enum.GetValues<ReduceOp>())
            {
                var o = Out(DType.F32, [23]);
                _cpu.Reduce(op, x.C, o.C); G.Reduce(op, x.G, o.G);
                Close(o, DType.F32, $"reduce {op} {cols}", op == ReduceOp.Sum || op == ReduceOp.Mean ? 1e-4 : 1e-5);
            }
        }
    }

    [GpuTheory]
    [MemberData(nameof(FloatTypes))]
    public void RmsNorm_matches(DType dt)
    {
        foreach (var (cols, wdt) in new[] { (64, dt), (4096, dt), (5000, dt), (5001, dt), (4096, DType.F32) })
        {
            // multiples of the vector lanes with a same-dtype weight take the 16-byte kernel, the rest the scalar one
            var x = In(dt, [17, cols], Rand(17 * cols, 4));
            var w = In(wdt, [cols], Rand(cols, 2));
            var o = Out(dt, [17, cols]);
            _cpu.RmsNorm(x.C, w.C, o.C, 1e-5f); G.RmsNorm(x.G, w.G, o.G, 1e-5f);
            Close(o, dt, $"rmsnorm {cols}");
        }
    }

    [GpuTheory]
    [MemberData(nameof(FloatTypes))]
    public void Rope_both_layouts_match(DType dt)
    {
        int tokens = 29, heads = 6, d = 128;
        var x = In(dt, [tokens, heads, d], Rand(tokens * heads * d, 2));
        var pos = InInt([tokens], Enumerable.Range(0, tokens).Select(_ => _rng.Next(0, 8192)).ToArray());
        foreach (var rot in new[] { d, d / 2 })
        {
            var invf = In(DType.F32, [rot / 2], Enumerable.Range(0, rot / 2).Select(i => (float)Math.Pow(500000, -2.0 * i / rot)).ToArray());
            foreach (var layout in new[] { RopeLayout.RotateHalf, RopeLayout.Interleaved })
            {
                var o = Out(dt, [tokens, heads, d]);
                _cpu.Rope(x.C, pos.C, invf.C, o.C, layout); G.Rope(x.G, pos.G, invf.G, o.G, layout);
                Close(o, dt, $"rope {layout} rotary {rot}");
            }
        }
    }

    [GpuTheory]
    [MemberData(nameof(FloatTypes))]
    public void Softmax_matches(DType dt)
    {
        foreach (var cols in new[] { 7, 1000, 32000 })
        {
            var x = In(dt, [9, cols], Rand(9 * cols, 8));
            var o = Out(dt, [9, cols]);
            _cpu.Softmax(x.C, o.C, 0.7f); G.Softmax(x.G, o.G, 0.7f);
            Close(o, dt, $"softmax {cols}");
        }
    }

    [GpuTheory]
    [MemberData(nameof(FloatTypes))]
    public void SiluMul_matches(DType dt)
    {
        foreach (var n in new[] { 3 * 14336 + 5, 3 * 14336 })
        {
            // the first size takes the scalar kernel, the second the 16-byte one
            var g = In(dt, [n], Rand(n, 6));
            var u = In(dt, [n], Rand(n, 3));
            var o = Out(dt, [n]);
            _cpu.SiluMul(g.C, u.C, o.C); G.SiluMul(g.G, u.G, o.G);
            Close(o, dt, $"silu_mul n={n}");
        }
    }

    [GpuFact]
    public void Embedding_gather_is_exact_for_every_row_size()
    {
        foreach (var (dt, h) in new[] { (DType.BF16, 4096), (DType.F32, 33), (DType.I8, 100), (DType.I4, 64) })
        {
            int vocab = 1000, n = 77;
            var table = In(dt, [vocab, h], Rand(vocab * h, 5));
            var ids = InInt([n], Enumerable.Range(0, n).Select(_ => _rng.Next(vocab)).ToArray());
            var o = Out(dt, [n, h]);
            _cpu.Embedding(table.C, ids.C, o.C); G.Embedding(table.G, ids.G, o.G);
            Assert.True(o.C.ToBytes().AsSpan().SequenceEqual(o.G.ToBytes()), $"embedding {DTypes.Name(dt)} h={h} (seed {_seed})");
        }
    }

    [GpuTheory]
    [MemberData(nameof(FloatTypes))]
    public void Causal_prefill_attention_with_grouped_query_heads(DType dt)
    {
        foreach (var (b, t, hq, hkv, d) in new[] { (1, 1, 4, 4, 64), (2, 37, 8, 2, 64), (1, 300, 32, 8, 128) })
        {
            var q = In(dt, [b, t, hq, d], Rand(b * t * hq * d, 2));
            var k = In(dt, [b, t, hkv, d], Rand(b * t * hkv * d, 2));
            var v = In(dt, [b, t, hkv, d], Rand(b * t * hkv * d, 2));
            var o = Out(dt, [b, t, hq, d]);
            float scale = 1 / MathF.Sqrt(d);
            _cpu.AttentionPrefill(q.C, k.C, v.C, o.C, scale); G.AttentionPrefill(q.G, k.G, v.G, o.G, scale);
            Close(o, dt, $"prefill b{b} t{t} hq{hq} hkv{hkv} d{d}");
        }
    }

    [GpuTheory]
    [MemberData(nameof(FloatTypes))]
    public void Decode_attention_against_a_kv_cache_with_grouped_query_heads(DType dt)
    {
        // split-K kernel: head dims 64/128/256 and groups up to 8; the last case (group 16) takes the general kernel
        foreach (var (b, maxT, hq, hkv, d) in new[] { (1, 16, 4, 1, 64), (4, 1000, 32, 8, 128), (3, 4096, 8, 8, 128), (1, 3000, 32, 8, 128), (2, 300, 16, 2, 256), (2, 100, 32, 2, 64) })
        {
            var q = In(dt, [b, hq, d], Rand(b * hq * d, 2));
            var k = In(dt, [b, maxT, hkv, d], Rand(b * maxT * hkv * d, 2));
            var v = In(dt, [b, maxT, hkv, d], Rand(b * maxT * hkv * d, 2));
            var len = InInt([b], Enumerable.Range(0, b).Select(i => i == 0 ? maxT : _rng.Next(1, maxT + 1)).ToArray());
            var o = Out(dt, [b, hq, d]);
            float scale = 1 / MathF.Sqrt(d);
            _cpu.AttentionDecode(q.C, k.C, v.C, len.C, o.C, scale); G.AttentionDecode(q.G, k.G, v.G, len.G, o.G, scale);
            Close(o, dt, $"decode b{b} maxT{maxT} hq{hq} hkv{hkv}");
        }
    }

    [GpuTheory]
    [MemberData(nameof(FloatTypes))]
    public void Argmax_matches(DType dt)
    {
        int rows = 13, vocab = 128256;
        var x = In(dt, [rows, vocab], Rand(rows * vocab, 10));
        var o = Out(DType.I32, [rows]);
        _cpu.Argmax(x.C, o.C); G.Argmax(x.G, o.G);
        Assert.Equal(o.C.ToInt32Array(), o.G.ToInt32Array());
    }

    [GpuTheory]
    [MemberData(nameof(FloatTypes))]
    public void Top_k_top_p_sampling_picks_the_same_ids(DType dt)
    {
        int rows = 8, vocab = 32000;
        var x = In(dt, [rows, vocab], Rand(rows * vocab, 6));
        foreach (var (temp, k, p) in new[] { (1f, 0, 1f), (0.8f, 50, 1f), (1f, 0, 0.9f), (0.7f, 40, 0.95f), (1.3f, 1, 0.5f), (0f, 0, 1f) })
        {
            var u = In(DType.F32, [rows], Enumerable.Range(0, rows).Select(_ => (float)_rng.NextDouble()).ToArray());
            var o = Out(DType.I32, [rows]);
            _cpu.SampleTopKTopP(x.C, u.C, o.C, temp, k, p); G.SampleTopKTopP(x.G, u.G, o.G, temp, k, p);
            var cpuIds = o.C.ToInt32Array();
            var gpuIds = o.G.ToInt32Array();
            // The GPU sums probabilities in another order, so a uniform that falls within float rounding of a
            // cumulative boundary may pick the neighbour. Such a pick must be what the CPU reference picks for the
            // uniform nudged by 2e-5 either way; anything else is a real mismatch.
            int boundaryCases = 0;
            for (int r = 0; r < rows; r++)
            {
                if (cpuIds[r] == gpuIds[r]) continue;
                var uNear = u.C.ToFloatArray();
                var near = new HashSet<int>();
                foreach (var delta in new[] { -2e-5f, 2e-5f })
                {
                    uNear[r] = Math.Clamp(u.C.ToFloatArray()[r] + delta, 0f, 0.9999999f);
                    var un = In(DType.F32, [rows], uNear);
                    var on = Out(DType.I32, [rows]);
                    _cpu.SampleTopKTopP(x.C, un.C, on.C, temp, k, p);
                    near.Add(on.C.ToInt32Array()[r]);
                }

                Assert.True(near.Contains(gpuIds[r]),
                    $"sampling T={temp} k={k} p={p} row {r}: cpu {cpuIds[r]} gpu {gpuIds[r]}, not a rounding boundary (seed {_seed})");
                boundaryCases++;
            }

            Assert.True(boundaryCases <= 1, $"sampling T={temp} k={k} p={p}: {boundaryCases} rows differ (seed {_seed})");
        }
    }

    [GpuFact]
    public void Copies_and_transposes_are_exact()
    {
        foreach (var dt in new[] { DType.F32, DType.BF16, DType.I8 })
        {
            var x = In(dt, [3, 17, 5, 33], Rand(3 * 17 * 5 * 33, 4));
            foreach (var (a, b) in new[] { (0, 1), (1, 2), (2, 3), (0, 3) })
            {
                var view = (x.C.Transpose(a, b), x.G.Transpose(a, b));
                var o = Out(dt, view.Item1.Shape);
                _cpu.Copy(view.Item1, o.C); G.Copy(view.Item2, o.G);
                Assert.True(o.C.ToBytes().AsSpan().SequenceEqual(o.G.ToBytes()), $"transpose {a},{b} {DTypes.Name(dt)}");
            }

            // a 2-D transpose with sizes that are not multiples of the 32x32 tile (the tiled kernel)
            var m2 = In(dt, [45, 77], Rand(45 * 77, 4));
            var o2 = Out(dt, [77, 45]);
            _cpu.Copy(m2.C.Transpose(0, 1), o2.C); G.Copy(m2.G.Transpose(0, 1), o2.G);
            Assert.True(o2.C.ToBytes().AsSpan().SequenceEqual(o2.G.ToBytes()), $"2-D transpose {DTypes.Name(dt)}");

            var narrow = (x.C.Narrow(1, 3, 9), x.G.Narrow(1, 3, 9));
            var on = Out(dt, narrow.Item1.Shape);
            _cpu.Copy(narrow.Item1, on.C); G.Copy(narrow.Item2, on.G);
            Assert.True(on.C.ToBytes().AsSpan().SequenceEqual(on.G.ToBytes()), $"narrow {DTypes.Name(dt)}");
        }
    }

    public static TheoryData<DType, bool> GemmCases => new()
    {
        { DType.F32, false }, { DType.F32, true }, { DType.F16, false }, { DType.F16, true }, { DType.BF16, false }, { DType.BF16, true },
    };

    [GpuTheory]
    [MemberData(nameof(GemmCases))]
    public void CublasLt_products_match_the_cpu_reference(DType dt, bool transposeB)
    {
        foreach (var (m, n, k) in new[] { (1, 4096, 4096), (128, 256, 512), (257, 130, 96) })
        {
            var a = In(dt, [m, k], Rand(m * k));
            var b = In(dt, transposeB ? [n, k] : [k, n], Rand(n * k));
            var o = Out(dt, [m, n]);
            var opt = new MatMulOptions { TransposeB = transposeB };
            _cpu.MatMul(a.C, b.C, o.C, opt); G.MatMul(a.G, b.G, o.G, opt);
            Close(o, dt, $"gemm {m}x{n}x{k} tB={transposeB}", dt == DType.F32 ? 1e-5 : Tolerance(dt));
        }
    }

    [GpuFact]
    public void CublasLt_tf32_fp8_int8_and_epilogues()
    {
        int m = 64, n = 256, k = 512;
        // tf32: inputs rounded to 10-bit mantissas
        var a = In(DType.F32, [m, k], Rand(m * k)); var b = In(DType.F32, [n, k], Rand(n * k));
        var o = Out(DType.F32, [m, n]);
        var tf = new MatMulOptions { TransposeB = true, AllowTf32 = true };
        _cpu.MatMul(a.C, b.C, o.C, tf); G.MatMul(a.G, b.G, o.G, tf);
        Close(o, DType.F32, "tf32 gemm", 1e-3);

        // bias + relu and bias + gelu epilogues (bf16)
        var ab = In(DType.BF16, [m, k], Rand(m * k)); var bb = In(DType.BF16, [n, k], Rand(n * k));
        var bias = In(DType.BF16, [n], Rand(n, 4));
        foreach (var epi in new[] { MatMulEpilogue.Bias, MatMulEpilogue.ReluBias, MatMulEpilogue.GeluBias, MatMulEpilogue.Relu })
        {
            var ob = Out(DType.BF16, [m, n]);
            _cpu.MatMul(ab.C, bb.C, ob.C, new MatMulOptions { TransposeB = true, Epilogue = epi, Bias = bias.C });
            G.MatMul(ab.G, bb.G, ob.G, new MatMulOptions { TransposeB = true, Epilogue = epi, Bias = bias.G });
            Close(ob, DType.BF16, $"bf16 gemm {epi}", 2e-2);
        }

        // fp8 e4m3 (Hopper / Ada) -> bf16
        if (G.Context.Major >= 9 || (G.Context.Major == 8 && G.Context.Minor >= 9))
        {
            var a8 = In(DType.F8E4M3, [m, k], Rand(m * k, 2)); var b8 = In(DType.F8E4M3, [n, k], Rand(n * k, 2));
            var o8 = Out(DType.BF16, [m, n]);
            var opt = new MatMulOptions { TransposeB = true };
            _cpu.MatMul(a8.C, b8.C, o8.C, opt); G.MatMul(a8.G, b8.G, o8.G, opt);
            Close(o8, DType.BF16, "fp8 e4m3 gemm", 1.5e-2);
        }

        // int8 -> int32, exact
        var ai = In(DType.I8, [m, k], Rand(m * k, 127)); var bi = In(DType.I8, [n, k], Rand(n * k, 127));
        var oi = Out(DType.I32, [m, n]);
        _cpu.MatMul(ai.C, bi.C, oi.C, new MatMulOptions { TransposeB = true }); G.MatMul(ai.G, bi.G, oi.G, new MatMulOptions { TransposeB = true });
        Assert.Equal(oi.C.ToInt32Array(), oi.G.ToInt32Array());
    }
}
