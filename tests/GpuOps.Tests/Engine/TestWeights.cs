using System.Buffers.Binary;
using System.Text.Json;
using GpuOps.Core.Engine;
using GpuOps.Core.Models;

namespace GpuOps.Tests.Engine;

/// <summary>An in-memory weight source (float32 tensors by Hugging Face name) for engine tests.</summary>
internal sealed class MemoryWeights : IWeightSource
{
    private readonly Dictionary<string, (long[] Shape, float[] Data)> _t = new(StringComparer.Ordinal);

    public MemoryWeights(RopeLayout layout = RopeLayout.RotateHalf) => RopeLayout = layout;

    public RopeLayout RopeLayout { get; set; }

    public void Add(string name, float[] data, params long[] shape) => _t[name] = (shape, data);

    public float[] Get(string name) => _t[name].Data;

    public IReadOnlyCollection<string> Names => _t.Keys;

    public bool Contains(string name) => _t.ContainsKey(name);

    public TensorInfo GetInfo(string name) => new(name, TensorDType.F32, _t[name].Shape, _t[name].Data.LongLength * 4);

    public ReadOnlySpan<byte> GetRaw(string name) => System.Runtime.InteropServices.MemoryMarshal.AsBytes(_t[name].Data.AsSpan());

    public void ReadFloat32(string name, Span<float> destination) => _t[name].Data.CopyTo(destination);

    public void Dispose()
    {
    }

    /// <summary>A small random llama-shaped model.</summary>
    public static (LlamaConfig Config, MemoryWeights Weights) Random(int seed, int vocab = 97, int hidden = 48, int inter = 80, int layers = 2,
        int heads = 4, int kvHeads = 2, int headDim = 12, bool tied = false, bool qkvBias = false, RopeScaling? scaling = null, double theta = 10000, int? slidingWindow = null)
    {
        var rng = new Random(seed);
        float[] R(long n, double scale)
        {
            var a = new float[n];
            for (long i = 0; i < n; i++) a[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
            return a;
        }

        float[] Norm(int n)
        {
            var a = new float[n];
            for (int i = 0; i < n; i++) a[i] = (float)(1 + (rng.NextDouble() - 0.5) * 0.4);
            return a;
        }

        var c = new LlamaConfig("LlamaForCausalLM", qkvBias ? "qwen2" : "llama", vocab, hidden, inter, layers, heads, kvHeads, headDim, 1e-5, theta,
            scaling, tied, qkvBias, 512, "float32", slidingWindow);
        var w = new MemoryWeights();
        w.Add("model.embed_tokens.weight", R((long)vocab * hidden, 1.0), vocab, hidden);
        double s = 1.0 / Math.Sqrt(hidden);
        for (int l = 0; l < layers; l++)
        {
            string p = $"model.layers.{l}.";
            w.Add(p + "input_layernorm.weight", Norm(hidden), hidden);
            w.Add(p + "post_attention_layernorm.weight", Norm(hidden), hidden);
            w.Add(p + "self_attn.q_proj.weight", R((long)heads * headDim * hidden, 2 * s), heads * headDim, hidden);
            w.Add(p + "self_attn.k_proj.weight", R((long)kvHeads * headDim * hidden, 2 * s), kvHeads * headDim, hidden);
            w.Add(p + "self_attn.v_proj.weight", R((long)kvHeads * headDim * hidden, s), kvHeads * headDim, hidden);
            if (qkvBias)
            {
                w.Add(p + "self_attn.q_proj.bias", R(heads * headDim, 0.5), heads * headDim);
                w.Add(p + "self_attn.k_proj.bias", R(kvHeads * headDim, 0.5), kvHeads * headDim);
                w.Add(p + "self_attn.v_proj.bias", R(kvHeads * headDim, 0.5), kvHeads * headDim);
            }

            w.Add(p + "self_attn.o_proj.weight", R((long)hidden * heads * headDim, 1.0 / Math.Sqrt(heads * headDim)), hidden, heads * headDim);
            w.Add(p + "mlp.gate_proj.weight", R((long)inter * hidden, s), inter, hidden);
            w.Add(p + "mlp.up_proj.weight", R((long)inter * hidden, s), inter, hidden);
            w.Add(p + "mlp.down_proj.weight", R((long)hidden * inter, 1.0 / Math.Sqrt(inter)), hidden, inter);
        }

        w.Add("model.norm.weight", Norm(hidden), hidden);
        if (!tied) w.Add("lm_head.weight", R((long)vocab * hidden, s), vocab, hidden);
        return (c, w);
    }
}

/// <summary>Just enough safetensors to read the reference logits (F32/BF16/F16) in tests.</summary>
internal static class TestSafetensors
{
    public static Dictionary<string, (long[] Shape, float[] Data)> Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        long n = BinaryPrimitives.ReadInt64LittleEndian(bytes);
        using var doc = JsonDocument.Parse(bytes.AsMemory(8, (int)n));
        var result = new Dictionary<string, (long[], float[])>();
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            if (p.Name == "__metadata__") continue;
            string dtype = p.Value.GetProperty("dtype").GetString()!;
            var shape = p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var offs = p.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var span = bytes.AsSpan((int)(8 + n + offs[0]), (int)(offs[1] - offs[0]));
            long count = shape.Aggregate(1L, (a, b) => a * b);
            var data = new float[count];
            for (long i = 0; i < count; i++)
            {
                data[i] = dtype switch
                {
                    "F32" => BinaryPrimitives.ReadSingleLittleEndian(span[(int)(i * 4)..]),
                    "BF16" => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(span[(int)(i * 2)..]) << 16),
                    "F16" => (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(span[(int)(i * 2)..])),
                    _ => throw new NotSupportedException(dtype),
                };
            }

            result[p.Name] = (shape, data);
        }

        return result;
    }
}
