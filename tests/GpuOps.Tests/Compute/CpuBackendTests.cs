using GpuOps.Core.Compute;
using GpuOps.Core.Hosting;
using GpuOps.Core.Models;
using Xunit;

namespace GpuOps.Tests.Compute;

/// <summary>The CPU backend and the dtype conversions (run on CI, no GPU).</summary>
public class CpuBackendTests
{
    private static Tensor T(CpuBackend be, DType dt, int[] shape, float[] v)
    {
        var t = be.Allocate(dt, shape);
        t.CopyFromFloats(v);
        return t;
    }

    private static float[] Rand(Random r, int n, float scale = 1f)
    {
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float)(r.NextDouble() * 2 - 1) * scale;
        return v;
    }

    [Fact]
    public void BF16_rounds_to_nearest_even_and_keeps_NaN()
    {
        Assert.Equal(0x3F80, DTypes.FloatToBF16(1f));
        // 1 + 2^-8 is exactly halfway between two bf16 values: ties to even (down)
        Assert.Equal(0x3F80, DTypes.FloatToBF16(1f + MathF.Pow(2, -8)));
        // 1 + 3·2^-8 is halfway too: rounds up to the even mantissa
        Assert.Equal(0x3F82, DTypes.FloatToBF16(1f + 3 * MathF.Pow(2, -8)));
        Assert.True(float.IsNaN(DTypes.BF16ToFloat(DTypes.FloatToBF16(float.NaN))));
        Assert.Equal(-2.5f, DTypes.BF16ToFloat(DTypes.FloatToBF16(-2.5f)));
    }

    [Fact]
    public void FP8_codes_decode_and_encode_back_to_themselves()
    {
        for (int c = 0; c < 256; c++)
        {
            float e4 = DTypes.F8E4M3ToFloat((byte)c);
            if (!float.IsNaN(e4)) Assert.Equal((byte)c, DTypes.FloatToF8E4M3(e4));
            float e5 = DTypes.F8E5M2ToFloat((byte)c);
            if (!float.IsNaN(e5) && !float.IsInfinity(e5)) Assert.Equal((byte)c, DTypes.FloatToF8E5M2(e5));
        }

        Assert.Equal(448f, DTypes.F8E4M3ToFloat(0x7E));
        Assert.Equal(0x7E, DTypes.FloatToF8E4M3(1e6f));           // saturates
        Assert.Equal(57344f, DTypes.F8E5M2ToFloat(0x7B));
        Assert.Equal(0.001953125f, DTypes.F8E4M3ToFloat(0x01));   // smallest subnormal 2^-9
        // halfway between 1.0 (0x38) and 1.125 (0x39): ties to the even code
        Assert.Equal(0x38, DTypes.FloatToF8E4M3(1.0625f));
        Assert.Equal(0x3A, DTypes.FloatToF8E4M3(1.1875f));
    }

    [Fact]
    public void Int4_packs_two_signed_values_per_byte_low_nibble_first()
    {
        var bytes = DTypes.FromFloats(DType.I4, new float[] { 1, -2, 7, -8, 9 });
        Assert.Equal(3, bytes.Length);
        Assert.Equal(0xE1, bytes[0]);
        Assert.Equal(0x87, bytes[1]);
        Assert.Equal(new float[] { 1, -2, 7, -8, 7 }, DTypes.ToFloats(DType.I4, bytes, 5));
        Assert.Equal(3, DTypes.ByteCount(DType.I4, 5));
    }

    [Fact]
    public void Pool_reports_live_tensors_and_frees_everything()
    {
        var be = new CpuBackend();
        var a = be.Allocate(DType.F32, [4, 8], "a");
        var b = be.Allocate(DType.BF16, [3], "b");
        Assert.Equal(2, be.Pool.Count);
        Assert.Equal(4 * 8 * 4 + 3 * 2, be.Pool.BytesInUse);
        var report = be.Pool.Report();
        Assert.Equal(new[] { "a", "b" }, report.Select(r => r.Name));
        Assert.Equal("[4,8]", report[0].Shape);
        a.Dispose();
        Assert.Equal(1, be.Pool.Count);
        Assert.Equal(1, be.Pool.FreeAll());
        Assert.Equal(0, be.Pool.BytesInUse);
        Assert.True(b.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => b.Pointer);
    }

    [Fact]
    public void Views_share_memory_and_die_with_their_parent()
    {
        using var be = new CpuBackend();
        var t = T(be, DType.F32, [2, 3], [0, 1, 2, 3, 4, 5]);
        var tr = t.Transpose(0, 1);
        Assert.False(tr.IsContiguous);
        Assert.Equal(new float[] { 0, 3, 1, 4, 2, 5 }, tr.ToFloatArray());
        Assert.Equal(new float[] { 3, 4, 5 }, t.Narrow(0, 1, 1).ToFloatArray());
        Assert.Equal(new[] { 3, 2 }, t.View(3, -1).Shape);
        t.Dispose();
        Assert.Throws<ObjectDisposedException>(() => tr.Pointer);
    }

    [Fact]
    public void Allocation_is_refused_before_allocating_when_memory_is_short()
    {
        using var be = new CpuBackend();
        var ex = Assert.Throws<GpuOpsException>(() => be.Allocate(DType.F32, [1 << 30, 1 << 20], "huge"));
        Assert.Equal("OutOfMemory", ex.ErrorId);
        Assert.Contains("needs 4194304.00 GiB", ex.Message);
        Assert.Contains("available", ex.Message);
        Assert.Equal(0, be.Pool.Count);
    }

    [Fact]
    public void Shape_mismatches_are_invalid_argument_errors_naming_the_tensors()
    {
        using var be = new CpuBackend();
        var a = be.Allocate(DType.F32, [2, 3], "a");
        var b = be.Allocate(DType.F32, [3, 2], "b");
        var ex = Assert.Throws<GpuOpsException>(() => be.SiluMul(a, b, a));
        Assert.Equal(ErrorCategory.InvalidArgument, ex.Category);
        Assert.Contains("a f32[2,3]", ex.Message);
    }

    [Fact]
    public void RmsNorm_matches_the_formula()
    {
        using var be = new CpuBackend();
        var x = T(be, DType.F32, [1, 4], [1, 2, 3, 4]);
        var w = T(be, DType.F32, [4], [1, 0.5f, 2, 1]);
        var o = be.Allocate(DType.F32, [1, 4]);
        be.RmsNorm(x, w, o, 1e-6f);
        double rms = Math.Sqrt((1 + 4 + 9 + 16) / 4.0 + 1e-6);
        var got = o.ToFloatArray();
        Assert.Equal(1 / rms, got[0], 5);
        Assert.Equal(2 * 0.5 / rms, got[1], 5);
        Assert.Equal(3 * 2 / rms, got[2], 5);
    }

    [Fact]
    public void Softmax_rows_sum_to_one_and_keep_order()
    {
        using var be = new CpuBackend();
        var r = new Random(1);
        var x = T(be, DType.F32, [3, 50], Rand(r, 150, 5));
        var o = be.Allocate(DType.F32, [3, 50]);
        be.Softmax(x, o, 0.5f);
        var v = o.ToFloatArray();
        var xv = x.ToFloatArray();
        for (int row = 0; row < 3; row++)
        {
            Assert.Equal(1.0, v.Skip(row * 50).Take(50).Sum(f => (double)f), 5);
            Assert.Equal(Math.Exp(0.5 * (xv[row * 50] - xv[row * 50 + 1])), v[row * 50] / (double)v[row * 50 + 1], 4);
        }
    }

    [Fact]
    public void Rope_rotate_half_and_interleaved_are_the_same_rotation_on_permuted_dimensions()
    {
        using var be = new CpuBackend();
        var r = new Random(2);
        int tokens = 3, heads = 2, d = 8, half = 4;
        var x = Rand(r, tokens * heads * d);
        var inv = Enumerable.Range(0, half).Select(i => (float)Math.Pow(10000, -2.0 * i / d)).ToArray();
        var pos = new[] { 0, 5, 17 };
        var posT = be.Allocate(DType.I32, [tokens]); posT.CopyFrom<int>(pos);
        var invT = T(be, DType.F32, [half], inv);
        // permutation: interleaved index 2i <-> rotate-half index i, 2i+1 <-> i+half
        var xi = new float[x.Length];
        for (int row = 0; row < tokens * heads; row++)
            for (int i = 0; i < half; i++)
            {
                xi[row * d + 2 * i] = x[row * d + i];
                xi[row * d + 2 * i + 1] = x[row * d + i + half];
            }

        var a = T(be, DType.F32, [tokens, heads, d], x);
        var b = T(be, DType.F32, [tokens, heads, d], xi);
        var oa = be.Allocate(DType.F32, [tokens, heads, d]);
        var ob = be.Allocate(DType.F32, [tokens, heads, d]);
        be.Rope(a, posT, invT, oa, RopeLayout.RotateHalf);
        be.Rope(b, posT, invT, ob, RopeLayout.Interleaved);
        var va = oa.ToFloatArray();
        var vb = ob.ToFloatArray();
        for (int row = 0; row < tokens * heads; row++)
            for (int i = 0; i < half; i++)
            {
                Assert.Equal(va[row * d + i], vb[row * d + 2 * i], 6);
                Assert.Equal(va[row * d + i + half], vb[row * d + 2 * i + 1], 6);
            }

        // position 0 is the identity; the rotation keeps each pair's norm
        for (int e = 0; e < heads * d; e++) Assert.Equal(x[e], va[e], 6);
        int o1 = 2 * heads * d; // token 2, head 0
        Assert.Equal(x[o1] * x[o1] + x[o1 + half] * x[o1 + half], va[o1] * va[o1] + va[o1 + half] * va[o1 + half], 5);
        // angle check for token 1, pair 0: theta = 5 * inv[0] = 5 rad
        int o2 = heads * d;
        Assert.Equal(x[o2] * Math.Cos(5) - x[o2 + half] * Math.Sin(5), va[o2], 5);
    }

    [Fact]
    public void Attention_with_one_key_returns_its_value_and_grouped_heads_share_kv()
    {
        using var be = new CpuBackend();
        var r = new Random(3);
        int b = 1, t = 4, hq = 4, hkv = 2, d = 8;
        var q = T(be, DType.F32, [b, t, hq, d], Rand(r, b * t * hq * d));
        var kv = Rand(r, b * t * hkv * d);
        var k = T(be, DType.F32, [b, t, hkv, d], Rand(r, b * t * hkv * d));
        var v = T(be, DType.F32, [b, t, hkv, d], kv);
        var o = be.Allocate(DType.F32, [b, t, hq, d]);
        be.AttentionPrefill(q, k, v, o, 1 / MathF.Sqrt(d));
        var ov = o.ToFloatArray();
        // query 0 attends key 0 only: output = v[0, kv head]
        for (int h = 0; h < hq; h++)
            for (int e = 0; e < d; e++)
                Assert.Equal(kv[(h / 2) * d + e], ov[h * d + e], 5);

        // decode against a cache holding the same keys gives the prefill's last row
        var qd = T(be, DType.F32, [1, hq, d], q.ToFloatArray().Skip((t - 1) * hq * d).ToArray());
        var len = be.Allocate(DType.I32, [1]); len.CopyFrom<int>(new[] { t });
        var od = be.Allocate(DType.F32, [1, hq, d]);
        be.AttentionDecode(qd, k, v, len, od, 1 / MathF.Sqrt(d));
        var dv = od.ToFloatArray();
        for (int i = 0; i < hq * d; i++) Assert.Equal(ov[(t - 1) * hq * d + i], dv[i], 5);
    }

    [Fact]
    public void MatMul_matches_a_naive_product_for_both_B_layouts_with_bias_and_relu()
    {
        using var be = new CpuBackend();
        var r = new Random(4);
        int m = 5, n = 7, k = 9;
        var av = Rand(r, m * k); var bv = Rand(r, k * n); var bias = Rand(r, n);
        var a = T(be, DType.F32, [m, k], av);
        var b = T(be, DType.F32, [k, n], bv);
        var bt = be.Allocate(DType.F32, [n, k]);
        be.Copy(b.Transpose(0, 1), bt);
        var biasT = T(be, DType.F32, [n], bias);
        var o1 = be.Allocate(DType.F32, [m, n]);
        var o2 = be.Allocate(DType.F32, [m, n]);
        be.MatMul(a, b, o1, new MatMulOptions { Epilogue = MatMulEpilogue.ReluBias, Bias = biasT });
        be.MatMul(a, bt, o2, new MatMulOptions { TransposeB = true, Epilogue = MatMulEpilogue.ReluBias, Bias = biasT });
        var v1 = o1.ToFloatArray(); var v2 = o2.ToFloatArray();
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = bias[j];
                for (int e = 0; e < k; e++) s += av[i * k + e] * bv[e * n + j];
                Assert.Equal(Math.Max(0, s), v1[i * n + j], 4);
                Assert.Equal(v1[i * n + j], v2[i * n + j], 5);
            }
    }

    [Fact]
    public void Int8_product_accumulates_exactly_in_int32()
    {
        using var be = new CpuBackend();
        var a = be.Allocate(DType.I8, [2, 3]); a.CopyFrom<sbyte>(new sbyte[] { 127, -128, 5, 1, 2, 3 });
        var b = be.Allocate(DType.I8, [2, 3]); b.CopyFrom<sbyte>(new sbyte[] { 127, 127, 1, -1, 0, 2 });
        var o = be.Allocate(DType.I32, [2, 2]);
        be.MatMul(a, b, o, new MatMulOptions { TransposeB = true });
        Assert.Equal(new[] { 127 * 127 - 128 * 127 + 5, -127 + 10, 1 * 127 + 2 * 127 + 3, -1 + 6 }, o.ToInt32Array());
    }

    [Fact]
    public void Cast_rounds_and_saturates_like_the_dtype_helpers()
    {
        using var be = new CpuBackend();
        var src = T(be, DType.F32, [6], [1.5f, 2.5f, -300f, 300f, 0.3f, float.NaN]);
        var i8 = be.Allocate(DType.I8, [6]);
        be.Cast(src, i8);
        Assert.Equal(new float[] { 2, 2, -128, 127, 0, 0 }, i8.ToFloatArray());
        var u8 = be.Allocate(DType.U8, [6]);
        be.Cast(src, u8);
        Assert.Equal(new float[] { 2, 2, 0, 255, 0, 0 }, u8.ToFloatArray());
    }

    [Fact]
    public void Embedding_gathers_rows_and_rejects_ids_out_of_range()
    {
        using var be = new CpuBackend();
        var table = T(be, DType.BF16, [4, 2], [0, 1, 10, 11, 20, 21, 30, 31]);
        var ids = be.Allocate(DType.I32, [3]); ids.CopyFrom<int>(new[] { 3, 0, 3 });
        var o = be.Allocate(DType.BF16, [3, 2]);
        be.Embedding(table, ids, o);
        Assert.Equal(new float[] { 30, 31, 0, 1, 30, 31 }, o.ToFloatArray());
        ids.CopyFrom<int>(new[] { 4, 0, 0 });
        Assert.Equal("IndexOutOfRange", Assert.Throws<GpuOpsException>(() => be.Embedding(table, ids, o)).ErrorId);
    }

    [Fact]
    public void Reductions_and_argmax_per_row()
    {
        using var be = new CpuBackend();
        var x = T(be, DType.F16, [2, 3], [1, 5, 5, 2, -1, 0]);
        var o = be.Allocate(DType.F32, [2]);
        be.Reduce(ReduceOp.Sum, x, o); Assert.Equal(new float[] { 11, 1 }, o.ToFloatArray());
        be.Reduce(ReduceOp.Max, x, o); Assert.Equal(new float[] { 5, 2 }, o.ToFloatArray());
        be.Reduce(ReduceOp.SumOfSquares, x, o); Assert.Equal(new float[] { 51, 5 }, o.ToFloatArray());
        var ids = be.Allocate(DType.I32, [2]);
        be.Argmax(x, ids);
        Assert.Equal(new[] { 1, 0 }, ids.ToInt32Array()); // ties: lowest index
    }

    [Fact]
    public void Sampling_follows_top_k_top_p_and_the_uniform_draw()
    {
        var logits = new float[] { 1, 3, 2, 0.5f, 2.9f };
        // top-k 1 is greedy whatever u is
        Assert.Equal(1, CpuBackend.SampleRow(logits, 0.99f, 1f, 1, 1f));
        // top-k 2 keeps ids 1 and 4: u near 0 picks the first kept index, u near 1 the last
        Assert.Equal(1, CpuBackend.SampleRow(logits, 0.01f, 1f, 2, 1f));
        Assert.Equal(4, CpuBackend.SampleRow(logits, 0.99f, 1f, 2, 1f));
        // top-p small keeps only the most probable id
        Assert.Equal(1, CpuBackend.SampleRow(logits, 0.99f, 1f, 0, 0.1f));
        // no filtering: the draw's position in the index-ordered mass decides
        var p = logits.Select(l => Math.Exp(l)).ToArray();
        double z = p.Sum();
        Assert.Equal(0, CpuBackend.SampleRow(logits, (float)(p[0] / z * 0.5), 1f, 0, 1f));
        Assert.Equal(2, CpuBackend.SampleRow(logits, (float)((p[0] + p[1] + p[2] * 0.5) / z), 1f, 0, 1f));
        // backend entry point: temperature 0 is argmax
        using var be = new CpuBackend();
        var l = T(be, DType.F32, [1, 5], logits);
        var u = T(be, DType.F32, [1], [0.7f]);
        var ids = be.Allocate(DType.I32, [1]);
        be.SampleTopKTopP(l, u, ids, 0f, 0, 1f);
        Assert.Equal(1, ids.ToInt32Array()[0]);
    }

    [Fact]
    public void Copy_makes_4d_permutations_contiguous()
    {
        using var be = new CpuBackend();
        var v = Enumerable.Range(0, 2 * 3 * 4 * 5).Select(i => (float)i).ToArray();
        var t = T(be, DType.F16, [2, 3, 4, 5], v);
        var view = t.Transpose(1, 2);
        var o = be.Allocate(DType.F16, [2, 4, 3, 5]);
        be.Copy(view, o);
        var ov = o.ToFloatArray();
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 4; b++)
                for (int c = 0; c < 3; c++)
                    for (int d = 0; d < 5; d++)
                        Assert.Equal(v[((a * 3 + c) * 4 + b) * 5 + d], ov[((a * 4 + b) * 3 + c) * 5 + d]);
    }

    [Fact]
    public void SiluMul_and_unary_ops_match_their_formulas()
    {
        using var be = new CpuBackend();
        var g = T(be, DType.F32, [3], [-1, 0, 2]);
        var u = T(be, DType.F32, [3], [2, 3, 0.5f]);
        var o = be.Allocate(DType.F32, [3]);
        be.SiluMul(g, u, o);
        var v = o.ToFloatArray();
        Assert.Equal(-1 / (1 + Math.E) * 2, v[0], 5);
        Assert.Equal(0, v[1], 6);
        Assert.Equal(2 / (1 + Math.Exp(-2)) * 0.5, v[2], 5);
        be.Binary(BinaryOp.Mul, g, u, o);
        Assert.Equal(new float[] { -2, 0, 1 }, o.ToFloatArray());
        be.Unary(UnaryOp.Scale, g, o, 3f);
        Assert.Equal(new float[] { -3, 0, 6 }, o.ToFloatArray());
    }
}
