using GpuOps.Core.Models;

namespace GpuOps.Tests.Engine;

/// <summary>
/// A deliberately plain double-precision Llama forward (full recomputation, no cache, no batching, no tiling),
/// written straight from the Hugging Face modeling formulas, to check the engine against.
/// </summary>
internal static class ReferenceLlama
{
    public static double[] Logits(LlamaConfig c, MemoryWeights w, int[] tokens)
    {
        int T = tokens.Length, H = c.HiddenSize, hd = c.HeadDim, nh = c.NumHeads, nkv = c.NumKeyValueHeads, I = c.IntermediateSize, V = c.VocabSize;
        var inv = InvFreq(c);
        var x = new double[T][];
        var emb = w.Get("model.embed_tokens.weight");
        for (int t = 0; t < T; t++) x[t] = Enumerable.Range(0, H).Select(i => (double)emb[tokens[t] * H + i]).ToArray();
        for (int l = 0; l < c.NumLayers; l++)
        {
            string p = $"model.layers.{l}.";
            var q = new double[T][];
            var k = new double[T][];
            var v = new double[T][];
            for (int t = 0; t < T; t++)
            {
                var h = Norm(x[t], w.Get(p + "input_layernorm.weight"), c.RmsNormEps);
                q[t] = Lin(h, w, p + "self_attn.q_proj", nh * hd);
                k[t] = Lin(h, w, p + "self_attn.k_proj", nkv * hd);
                v[t] = Lin(h, w, p + "self_attn.v_proj", nkv * hd);
                for (int head = 0; head < nh; head++) Rope(q[t], head * hd, hd, t, inv, w.RopeLayout);
                for (int head = 0; head < nkv; head++) Rope(k[t], head * hd, hd, t, inv, w.RopeLayout);
            }

            for (int t = 0; t < T; t++)
            {
                var o = new double[nh * hd];
                for (int head = 0; head < nh; head++)
                {
                    int kvh = head / (nh / nkv);
                    int start = c.SlidingWindow is int win ? Math.Max(0, t - win + 1) : 0;
                    var s = new double[t + 1];
                    double max = double.NegativeInfinity;
                    for (int j = start; j <= t; j++)
                    {
                        double d = 0;
                        for (int i = 0; i < hd; i++) d += q[t][head * hd + i] * k[j][kvh * hd + i];
                        s[j] = d / Math.Sqrt(hd);
                        max = Math.Max(max, s[j]);
                    }

                    double sum = 0;
                    for (int j = start; j <= t; j++) sum += s[j] = Math.Exp(s[j] - max);
                    for (int j = start; j <= t; j++)
                    {
                        for (int i = 0; i < hd; i++) o[head * hd + i] += s[j] / sum * v[j][kvh * hd + i];
                    }
                }

                var ao = Lin(o, w, p + "self_attn.o_proj", H);
                for (int i = 0; i < H; i++) x[t][i] += ao[i];
            }

            for (int t = 0; t < T; t++)
            {
                var h = Norm(x[t], w.Get(p + "post_attention_layernorm.weight"), c.RmsNormEps);
                var g = Lin(h, w, p + "mlp.gate_proj", I);
                var u = Lin(h, w, p + "mlp.up_proj", I);
                for (int i = 0; i < I; i++) g[i] = g[i] / (1 + Math.Exp(-g[i])) * u[i];
                var d = Lin(g, w, p + "mlp.down_proj", H);
                for (int i = 0; i < H; i++) x[t][i] += d[i];
            }
        }

        var result = new double[T * V];
        string head0 = w.Contains("lm_head.weight") && !c.TieWordEmbeddings ? "lm_head" : "model.embed_tokens";
        for (int t = 0; t < T; t++)
        {
            var h = Norm(x[t], w.Get("model.norm.weight"), c.RmsNormEps);
            var lo = Lin(h, w, head0, V);
            Array.Copy(lo, 0, result, t * V, V);
        }

        return result;
    }

    public static double[] InvFreq(LlamaConfig c)
    {
        int half = c.HeadDim / 2;
        var inv = new double[half];
        for (int i = 0; i < half; i++) inv[i] = 1.0 / Math.Pow(c.RopeTheta, 2.0 * i / c.HeadDim);
        if (c.RopeScaling is { Type: "llama3" } s)
        {
            double low = s.OriginalMaxPositionEmbeddings / s.LowFreqFactor, high = s.OriginalMaxPositionEmbeddings / s.HighFreqFactor;
            for (int i = 0; i < half; i++)
            {
                double wl = 2 * Math.PI / inv[i];
                if (wl < high) continue;
                if (wl > low) inv[i] /= s.Factor;
                else
                {
                    double smooth = (s.OriginalMaxPositionEmbeddings / wl - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
                    inv[i] = (1 - smooth) * inv[i] / s.Factor + smooth * inv[i];
                }
            }
        }
        else if (c.RopeScaling is { Type: "linear" } lin)
        {
            for (int i = 0; i < half; i++) inv[i] /= lin.Factor;
        }

        return inv;
    }

    private static void Rope(double[] v, int off, int hd, int pos, double[] inv, RopeLayout layout)
    {
        int half = hd / 2;
        var r = new double[hd];
        for (int i = 0; i < half; i++)
        {
            double cos = Math.Cos(pos * inv[i]), sin = Math.Sin(pos * inv[i]);
            int a = layout == RopeLayout.RotateHalf ? i : 2 * i;
            int b = layout == RopeLayout.RotateHalf ? i + half : 2 * i + 1;
            r[a] = v[off + a] * cos - v[off + b] * sin;
            r[b] = v[off + b] * cos + v[off + a] * sin;
        }

        Array.Copy(r, 0, v, off, hd);
    }

    private static double[] Norm(double[] x, float[] w, double eps)
    {
        double ms = x.Sum(e => e * e) / x.Length;
        double inv = 1 / Math.Sqrt(ms + eps);
        return x.Select((e, i) => e * inv * w[i]).ToArray();
    }

    private static double[] Lin(double[] x, MemoryWeights w, string name, int outDim)
    {
        var W = w.Get(name + ".weight");
        float[]? b = w.Contains(name + ".bias") ? w.Get(name + ".bias") : null;
        int K = x.Length;
        var y = new double[outDim];
        for (int o = 0; o < outDim; o++)
        {
            double s = b?[o] ?? 0;
            for (int k = 0; k < K; k++) s += W[(long)o * K + k] * x[k];
            y[o] = s;
        }

        return y;
    }

    /// <summary>llama.cpp's convert_hf_to_gguf permutation of q/k rows: reshape(heads, 2, rows/heads/2, cols).swapaxes(1, 2).</summary>
    public static float[] PermuteRows(float[] w, int heads, int cols)
    {
        int rows = w.Length / cols;
        int hd = rows / heads, half = hd / 2;
        var r = new float[w.Length];
        for (int h = 0; h < heads; h++)
        {
            for (int a = 0; a < 2; a++)
            {
                for (int b = 0; b < half; b++)
                {
                    Array.Copy(w, (long)(h * hd + a * half + b) * cols, r, (long)(h * hd + 2 * b + a) * cols, cols);
                }
            }
        }

        return r;
    }

    public static double RelativeError(ReadOnlySpan<float> a, ReadOnlySpan<double> b)
    {
        double num = 0, den = 0;
        for (int i = 0; i < a.Length; i++)
        {
            num += (a[i] - b[i]) * (a[i] - b[i]);
            den += b[i] * b[i];
        }

        return Math.Sqrt(num / den);
    }

    public static double RelativeError(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double num = 0, den = 0;
        for (int i = 0; i < a.Length; i++)
        {
            num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
            den += (double)b[i] * b[i];
        }

        return Math.Sqrt(num / den);
    }
}
