using System.Text.Json;
using GpuOps.Core.Formats;
using GpuOps.Core.Models;
using GpuOps.Tests.Support;
using Xunit;

namespace GpuOps.Tests.Models;

/// <summary>
/// End-to-end check of the readers against transformers: a plain float32 Llama forward pass (a test oracle, not the
/// engine) over the weights as read (safetensors bf16, and each GGUF file dequantized and un-permuted to HF layout)
/// must reproduce the fixture's reference logits to 1e-5 relative error (observed: about 2e-7). This proves dequantization matches ggml's
/// values and that the q/k un-permutation is right.
/// </summary>
public sealed class ReferenceForwardTests(ITestOutputHelper output)
{
    [Fact]
    public void Safetensors_weights_reproduce_transformers_logits()
    {
        using var m = ModelFiles.Open(Repo.Data("fortune-llama"));
        Check(m, Repo.Data("fortune-llama", "reference.json"), Repo.Data("fortune-llama", "reference_logits.safetensors"), null);
    }

    [Theory]
    [InlineData("f16")]
    [InlineData("q8_0")]
    [InlineData("q4_0")]
    [InlineData("q4_k_m")]
    [InlineData("mxfp4")]
    public void Gguf_weights_dequantize_to_ggml_values(string kind)
    {
        using var m = ModelFiles.Open(Repo.Data("fortune-llama-gguf", $"fortune-llama-{kind}.gguf"));
        Check(m, Repo.Data("fortune-llama-gguf", "reference.json"), Repo.Data("fortune-llama-gguf", "reference_logits.safetensors"), kind);
    }

    private void Check(ModelBundle m, string referenceJson, string logitsFile, string? kind)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(referenceJson));
        var prompts = kind is null ? doc.RootElement.GetProperty("logits") : doc.RootElement.GetProperty(kind).GetProperty("logits");
        using var reference = SafeTensorsWeightSource.Open(logitsFile);
        var model = new TinyLlama(m.Config, m.Weights);
        foreach (var p in prompts.EnumerateArray())
        {
            var ids = p.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            Assert.Equal(ids, m.Tokenizer.Encode(p.GetProperty("prompt").GetString()!));
            var expected = new float[reference.GetInfo(p.GetProperty("tensor").GetString()!).ElementCount];
            reference.ReadFloat32(p.GetProperty("tensor").GetString()!, expected);
            var actual = model.Forward(ids);
            Assert.Equal(expected.Length, actual.Length);
            double num = 0, den = 0;
            for (int i = 0; i < expected.Length; i++)
            {
                num += (actual[i] - (double)expected[i]) * (actual[i] - (double)expected[i]);
                den += expected[i] * (double)expected[i];
            }

            double rel = Math.Sqrt(num / den);
            output.WriteLine($"{kind ?? "safetensors"} prompt {p.GetProperty("tensor").GetString()}: relative error {rel:E2}");
            Assert.True(rel < 1e-5, $"{kind ?? "safetensors"} '{p.GetProperty("prompt").GetString()}': relative error {rel:E2}");
            var last = actual.AsSpan(actual.Length - m.Config.VocabSize);
            int argmax = 0;
            for (int i = 1; i < last.Length; i++) if (last[i] > last[argmax]) argmax = i;
            Assert.Equal(p.GetProperty("last_top5")[0].GetInt32(), argmax);
        }
    }

    /// <summary>A straightforward float32 Llama forward pass (double accumulation), Hugging Face semantics.</summary>
    private sealed class TinyLlama
    {
        private readonly LlamaConfig _c;
        private readonly Dictionary<string, float[]> _w = new();

        public TinyLlama(LlamaConfig c, IWeightSource w)
        {
            Assert.Equal(RopeLayout.RotateHalf, w.RopeLayout);
            _c = c;
            foreach (var n in w.Names)
            {
                var a = new float[w.GetInfo(n).ElementCount];
                w.ReadFloat32(n, a);
                _w[n] = a;
            }
        }

        public float[] Forward(int[] ids)
        {
            int n = ids.Length, h = _c.HiddenSize, hd = _c.HeadDim, nh = _c.NumHeads, nkv = _c.NumKeyValueHeads, v = _c.VocabSize;
            var x = new float[n * h];
            var emb = _w["model.embed_tokens.weight"];
            for (int t = 0; t < n; t++) Array.Copy(emb, ids[t] * h, x, t * h, h);
            for (int l = 0; l < _c.NumLayers; l++)
            {
                string p = $"model.layers.{l}.";
                var xn = RmsNorm(x, n, h, _w[p + "input_layernorm.weight"]);
                var q = MatMul(xn, n, h, _w[p + "self_attn.q_proj.weight"], nh * hd);
                var k = MatMul(xn, n, h, _w[p + "self_attn.k_proj.weight"], nkv * hd);
                var vv = MatMul(xn, n, h, _w[p + "self_attn.v_proj.weight"], nkv * hd);
                Rope(q, n, nh, hd);
                Rope(k, n, nkv, hd);
                var attn = new float[n * nh * hd];
                int group = nh / nkv;
                var scores = new double[n];
                for (int head = 0; head < nh; head++)
                {
                    int kh = head / group;
                    for (int i = 0; i < n; i++)
                    {
                        double max = double.NegativeInfinity;
                        for (int j = 0; j <= i; j++)
                        {
                            double s = 0;
                            for (int d = 0; d < hd; d++) s += q[(i * nh + head) * hd + d] * (double)k[(j * nkv + kh) * hd + d];
                            scores[j] = s / Math.Sqrt(hd);
                            max = Math.Max(max, scores[j]);
                        }

                        double sum = 0;
                        for (int j = 0; j <= i; j++) { scores[j] = Math.Exp(scores[j] - max); sum += scores[j]; }
                        for (int d = 0; d < hd; d++)
                        {
                            double acc = 0;
                            for (int j = 0; j <= i; j++) acc += scores[j] / sum * vv[(j * nkv + kh) * hd + d];
                            attn[(i * nh + head) * hd + d] = (float)acc;
                        }
                    }
                }

                var o = MatMul(attn, n, nh * hd, _w[p + "self_attn.o_proj.weight"], h);
                for (int i = 0; i < x.Length; i++) x[i] += o[i];
                var xn2 = RmsNorm(x, n, h, _w[p + "post_attention_layernorm.weight"]);
                var gate = MatMul(xn2, n, h, _w[p + "mlp.gate_proj.weight"], _c.IntermediateSize);
                var up = MatMul(xn2, n, h, _w[p + "mlp.up_proj.weight"], _c.IntermediateSize);
                for (int i = 0; i < gate.Length; i++) gate[i] = (float)(gate[i] / (1 + Math.Exp(-gate[i])) * up[i]);
                var down = MatMul(gate, n, _c.IntermediateSize, _w[p + "mlp.down_proj.weight"], h);
                for (int i = 0; i < x.Length; i++) x[i] += down[i];
            }

            var final = RmsNorm(x, n, h, _w["model.norm.weight"]);
            var head2 = _w.TryGetValue("lm_head.weight", out var lm) ? lm : _w["model.embed_tokens.weight"];
            return MatMul(final, n, h, head2, v);
        }

        private float[] RmsNorm(float[] x, int n, int h, float[] w)
        {
            var y = new float[x.Length];
            for (int t = 0; t < n; t++)
            {
                double ss = 0;
                for (int i = 0; i < h; i++) ss += x[t * h + i] * (double)x[t * h + i];
                float r = (float)(1.0 / Math.Sqrt(ss / h + _c.RmsNormEps));
                for (int i = 0; i < h; i++) y[t * h + i] = w[i] * (x[t * h + i] * r);
            }

            return y;
        }

        private static float[] MatMul(float[] x, int n, int inDim, float[] w, int outDim)
        {
            var y = new float[n * outDim];
            Parallel.For(0, outDim, o =>
            {
                for (int t = 0; t < n; t++)
                {
                    double s = 0;
                    for (int i = 0; i < inDim; i++) s += x[t * inDim + i] * (double)w[o * inDim + i];
                    y[t * outDim + o] = (float)s;
                }
            });
            return y;
        }

        private void Rope(float[] q, int n, int heads, int hd)
        {
            int half = hd / 2;
            for (int t = 0; t < n; t++)
            for (int hh = 0; hh < heads; hh++)
            for (int i = 0; i < half; i++)
            {
                double invFreq = 1.0 / Math.Pow(_c.RopeTheta, 2.0 * i / hd);
                double angle = t * invFreq;
                double cos = Math.Cos(angle), sin = Math.Sin(angle);
                int b = (t * heads + hh) * hd;
                double a0 = q[b + i], a1 = q[b + i + half];
                q[b + i] = (float)(a0 * cos - a1 * sin);
                q[b + i + half] = (float)(a1 * cos + a0 * sin);
            }
        }
    }
}
