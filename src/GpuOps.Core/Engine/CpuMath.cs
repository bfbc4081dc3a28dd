using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GpuOps.Core.Engine;

/// <summary>
/// Float32 CPU kernels of the engine: the projection matmul (y = x·Wᵀ, the layout Hugging Face stores weights in),
/// RMSNorm, SiLU-gating and softmax. Matmuls run in parallel over blocks of output rows; the inner kernel is a
/// register-tiled AVX2/FMA micro-kernel (3 tokens × 4 weight rows) with a <see cref="TensorPrimitives.Dot"/> fallback.
/// </summary>
public static class CpuMath
{
    private const int RowBlock = 32;   // weight rows per parallel work item
    private const int TokenBlock = 48; // tokens per cache block inside a work item

    /// <summary>Whether the AVX2/FMA micro-kernel is used (otherwise the portable TensorPrimitives path).</summary>
    public static bool UsesFma => Fma.IsSupported && Avx.IsSupported;

    /// <summary>
    /// y[t*ldy + yOffset + o] = Σ_k x[t*K + k] · w[o*K + k] (+ bias[o]) for t &lt; T, o &lt; O.
    /// </summary>
    public static void MatMulTransposed(float[] x, int T, int K, float[] w, int O, float[] y, int ldy, int yOffset = 0,
        float[]? bias = null, int? maxDegreeOfParallelism = null)
    {
        if (x.Length < (long)T * K) throw new ArgumentException("x is too short", nameof(x));
        if (w.Length < (long)O * K) throw new ArgumentException("w is too short", nameof(w));
        if (T > 0 && y.Length < (long)(T - 1) * ldy + yOffset + O) throw new ArgumentException("y is too short", nameof(y));
        int blocks = (O + RowBlock - 1) / RowBlock;
        long work = (long)T * K * O;
        if (work < 1 << 17 || blocks == 1 || maxDegreeOfParallelism == 1)
        {
            for (int b = 0; b < blocks; b++) MatMulBlock(x, T, K, w, O, y, ldy, yOffset, bias, b);
            return;
        }

        var options = new ParallelOptions { MaxDegreeOfParallelism = maxDegreeOfParallelism ?? -1 };
        Parallel.For(0, blocks, options, b => MatMulBlock(x, T, K, w, O, y, ldy, yOffset, bias, b));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void MatMulBlock(float[] x, int T, int K, float[] w, int O, float[] y, int ldy, int yOffset, float[]? bias, int block)
    {
        int o0 = block * RowBlock;
        int o1 = Math.Min(O, o0 + RowBlock);
        fixed (float* xp = x, wp = w, yp = y)
        {
            for (int t0 = 0; t0 < T; t0 += TokenBlock)
            {
                int t1 = Math.Min(T, t0 + TokenBlock);
                int o = o0;
                if (UsesFma)
                {
                    for (; o + 4 <= o1; o += 4)
                    {
                        int t = t0;
                        for (; t + 3 <= t1; t += 3) Kernel3x4(xp + (long)t * K, K, wp + (long)o * K, K, yp + (long)t * ldy + yOffset + o, ldy);
                        for (; t < t1; t++) Kernel1x4(xp + (long)t * K, wp + (long)o * K, K, yp + (long)t * ldy + yOffset + o);
                    }
                }

                for (; o < o1; o++)
                {
                    var wrow = new ReadOnlySpan<float>(wp + (long)o * K, K);
                    for (int t = t0; t < t1; t++)
                    {
                        yp[(long)t * ldy + yOffset + o] = TensorPrimitives.Dot(new ReadOnlySpan<float>(xp + (long)t * K, K), wrow);
                    }
                }
            }
        }

        if (bias is not null)
        {
            for (int t = 0; t < T; t++)
            {
                for (int o = o0; o < o1; o++) y[(long)t * ldy + yOffset + o] += bias[o];
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Kernel3x4(float* x, int K, float* w, int ldw, float* y, int ldy)
    {
        Vector256<float> a00 = default, a01 = default, a02 = default, a03 = default;
        Vector256<float> a10 = default, a11 = default, a12 = default, a13 = default;
        Vector256<float> a20 = default, a21 = default, a22 = default, a23 = default;
        float* x0 = x, x1 = x + K, x2 = x + 2 * K;
        float* w0 = w, w1 = w + ldw, w2 = w + 2 * ldw, w3 = w + 3 * ldw;
        int k = 0;
        for (; k + 8 <= K; k += 8)
        {
            var v0 = Avx.LoadVector256(x0 + k);
            var v1 = Avx.LoadVector256(x1 + k);
            var v2 = Avx.LoadVector256(x2 + k);
            var u = Avx.LoadVector256(w0 + k);
            a00 = Fma.MultiplyAdd(v0, u, a00); a10 = Fma.MultiplyAdd(v1, u, a10); a20 = Fma.MultiplyAdd(v2, u, a20);
            u = Avx.LoadVector256(w1 + k);
            a01 = Fma.MultiplyAdd(v0, u, a01); a11 = Fma.MultiplyAdd(v1, u, a11); a21 = Fma.MultiplyAdd(v2, u, a21);
            u = Avx.LoadVector256(w2 + k);
            a02 = Fma.MultiplyAdd(v0, u, a02); a12 = Fma.MultiplyAdd(v1, u, a12); a22 = Fma.MultiplyAdd(v2, u, a22);
            u = Avx.LoadVector256(w3 + k);
            a03 = Fma.MultiplyAdd(v0, u, a03); a13 = Fma.MultiplyAdd(v1, u, a13); a23 = Fma.MultiplyAdd(v2, u, a23);
        }

        float s00 = Vector256.Sum(a00), s01 = Vector256.Sum(a01), s02 = Vector256.Sum(a02), s03 = Vector256.Sum(a03);
        float s10 = Vector256.Sum(a10), s11 = Vector256.Sum(a11), s12 = Vector256.Sum(a12), s13 = Vector256.Sum(a13);
        float s20 = Vector256.Sum(a20), s21 = Vector256.Sum(a21), s22 = Vector256.Sum(a22), s23 = Vector256.Sum(a23);
        for (; k < K; k++)
        {
            float p0 = x0[k], p1 = x1[k], p2 = x2[k];
            float q0 = w0[k], q1 = w1[k], q2 = w2[k], q3 = w3[k];
            s00 += p0 * q0; s01 += p0 * q1; s02 += p0 * q2; s03 += p0 * q3;
            s10 += p1 * q0; s11 += p1 * q1; s12 += p1 * q2; s13 += p1 * q3;
            s20 += p2 * q0; s21 += p2 * q1; s22 += p2 * q2; s23 += p2 * q3;
        }

        y[0] = s00; y[1] = s01; y[2] = s02; y[3] = s03;
        y += ldy; y[0] = s10; y[1] = s11; y[2] = s12; y[3] = s13;
        y += ldy; y[0] = s20; y[1] = s21; y[2] = s22; y[3] = s23;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Kernel1x4(float* x, float* w, int K, float* y)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        float* w0 = w, w1 = w + K, w2 = w + 2 * K, w3 = w + 3 * K;
        int k = 0;
        for (; k + 8 <= K; k += 8)
        {
            var v = Avx.LoadVector256(x + k);
            a0 = Fma.MultiplyAdd(v, Avx.LoadVector256(w0 + k), a0);
            a1 = Fma.MultiplyAdd(v, Avx.LoadVector256(w1 + k), a1);
            a2 = Fma.MultiplyAdd(v, Avx.LoadVector256(w2 + k), a2);
            a3 = Fma.MultiplyAdd(v, Avx.LoadVector256(w3 + k), a3);
        }

        float s0 = Vector256.Sum(a0), s1 = Vector256.Sum(a1), s2 = Vector256.Sum(a2), s3 = Vector256.Sum(a3);
        for (; k < K; k++)
        {
            float p = x[k];
            s0 += p * w0[k]; s1 += p * w1[k]; s2 += p * w2[k]; s3 += p * w3[k];
        }

        y[0] = s0; y[1] = s1; y[2] = s2; y[3] = s3;
    }

    /// <summary>Hugging Face LlamaRMSNorm in float32: y = w · x / sqrt(mean(x²) + eps), per row of length n.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> y)
    {
        int n = x.Length;
        fixed (float* xp = x, wp = weight, yp = y)
        {
            float ss = Dot(xp, xp, n);
            float inv = 1f / MathF.Sqrt(ss / n + eps);
            int i = 0;
            if (UsesFma)
            {
                var vi = Vector256.Create(inv);
                for (; i + 8 <= n; i += 8) Avx.Store(yp + i, Avx.Multiply(Avx.Multiply(Avx.LoadVector256(xp + i), vi), Avx.LoadVector256(wp + i)));
            }

            for (; i < n; i++) yp[i] = xp[i] * inv * wp[i];
        }
    }

    /// <summary>Σ a[i]·b[i] (AVX2/FMA; compiled fully optimized from the first call, so no warm-up is needed).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe float Dot(float* a, float* b, int n)
    {
        if (!UsesFma) return TensorPrimitives.Dot(new ReadOnlySpan<float>(a, n), new ReadOnlySpan<float>(b, n));
        Vector256<float> s0 = default, s1 = default;
        int i = 0;
        for (; i + 16 <= n; i += 16)
        {
            s0 = Fma.MultiplyAdd(Avx.LoadVector256(a + i), Avx.LoadVector256(b + i), s0);
            s1 = Fma.MultiplyAdd(Avx.LoadVector256(a + i + 8), Avx.LoadVector256(b + i + 8), s1);
        }

        for (; i + 8 <= n; i += 8) s0 = Fma.MultiplyAdd(Avx.LoadVector256(a + i), Avx.LoadVector256(b + i), s0);
        float s = Vector256.Sum(Avx.Add(s0, s1));
        for (; i < n; i++) s += a[i] * b[i];
        return s;
    }

    /// <summary>y += alpha · x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe void Axpy(float alpha, float* x, float* y, int n)
    {
        int i = 0;
        if (UsesFma)
        {
            var va = Vector256.Create(alpha);
            for (; i + 8 <= n; i += 8) Avx.Store(y + i, Fma.MultiplyAdd(Avx.LoadVector256(x + i), va, Avx.LoadVector256(y + i)));
        }

        for (; i < n; i++) y[i] += alpha * x[i];
    }

    /// <summary>In place: g = silu(g) · u = g · sigmoid(g) · u.</summary>
    public static void SiluMul(Span<float> g, ReadOnlySpan<float> u, Span<float> scratch)
    {
        var s = scratch[..g.Length];
        TensorPrimitives.Sigmoid(g, s);
        TensorPrimitives.Multiply(g, s, g);
        TensorPrimitives.Multiply(g, u, g);
    }

    /// <summary>Numerically stable softmax in place (float32, max subtracted).</summary>
    public static void SoftmaxInPlace(Span<float> x)
    {
        float max = TensorPrimitives.Max(x);
        TensorPrimitives.Subtract(x, max, x);
        TensorPrimitives.Exp(x, x);
        float sum = TensorPrimitives.Sum(x);
        TensorPrimitives.Multiply(x, 1f / sum, x);
    }

    /// <summary>log Σ exp(x): max subtracted, exponentials vectorized, the sum in blocks accumulated in double.</summary>
    public static double LogSumExp(ReadOnlySpan<float> x, Span<float> scratch)
    {
        float max = TensorPrimitives.Max(x);
        var e = scratch[..x.Length];
        TensorPrimitives.Subtract(x, max, e);
        TensorPrimitives.Exp(e, e);
        double sum = 0;
        for (int i = 0; i < e.Length; i += 1024) sum += TensorPrimitives.Sum(e.Slice(i, Math.Min(1024, e.Length - i)));
        return max + Math.Log(sum);
    }

    internal static float[] Rent(int n) => ArrayPool<float>.Shared.Rent(n);

    internal static void Return(float[] a) => ArrayPool<float>.Shared.Return(a);
}
