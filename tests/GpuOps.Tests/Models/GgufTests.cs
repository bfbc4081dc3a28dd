using System.Text.Json;
using GpuOps.Core.Formats;
using GpuOps.Core.Models;
using GpuOps.Core.Tokenizers;
using GpuOps.Tests.Support;
using Xunit;

namespace GpuOps.Tests.Models;

public sealed class GgufTests
{
    public static TheoryData<string> Files() => new() { "f16", "q8_0", "q4_0", "q4_k_m", "mxfp4" };

    private static string PathOf(string kind) => Repo.Data("fortune-llama-gguf", $"fortune-llama-{kind}.gguf");

    private static readonly Lazy<SafeTensorsWeightSource> Reference = new(() => SafeTensorsWeightSource.Open(Repo.Data("fortune-llama")));

    [Theory]
    [MemberData(nameof(Files))]
    public void Config_from_llama_metadata_matches_config_json(string kind)
    {
        using var f = GgufFile.Open(PathOf(kind));
        Assert.Equal(3u, f.Version);
        Assert.Equal(57, f.Tensors.Count);
        var c = GgufModel.ReadConfig(f);
        var hf = HfConfig.ReadConfig(Repo.Data("fortune-llama"));
        Assert.Equal(hf with { TorchDType = c.TorchDType }, c);
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Every_tensor_maps_to_a_hugging_face_name_with_the_same_shape(string kind)
    {
        using var w = GgufWeightSource.Open(PathOf(kind));
        Assert.Equal(Reference.Value.Names.OrderBy(n => n, StringComparer.Ordinal), w.Names.OrderBy(n => n, StringComparer.Ordinal));
        foreach (var n in w.Names) Assert.Equal(Reference.Value.GetInfo(n).Shape, w.GetInfo(n).Shape);
        Assert.Equal(RopeLayout.RotateHalf, w.RopeLayout);
        Assert.Equal(RopeLayout.Interleaved, w.StoredRopeLayout);
        Assert.True(w.IsPermuted("model.layers.0.self_attn.q_proj.weight"));
        Assert.True(w.IsPermuted("model.layers.5.self_attn.k_proj.weight"));
        Assert.False(w.IsPermuted("model.layers.0.self_attn.v_proj.weight"));
    }

    [Fact]
    public void F16_file_dequantizes_to_the_bf16_weights_rounded_to_half_exactly_in_hugging_face_layout()
    {
        using var w = GgufWeightSource.Open(PathOf("f16"));
        foreach (var n in w.Names)
        {
            var info = w.GetInfo(n);
            var expected = new float[info.ElementCount];
            Reference.Value.ReadFloat32(n, expected);
            var actual = new float[info.ElementCount];
            w.ReadFloat32(n, actual);
            bool isNorm = n.EndsWith("norm.weight", StringComparison.Ordinal);
            Assert.Equal(isNorm ? TensorDType.F32 : TensorDType.F16, info.DType);
            for (int i = 0; i < expected.Length; i++)
            {
                float e = isNorm ? expected[i] : (float)(Half)expected[i];
                if (e != actual[i]) Assert.Fail($"{n}[{i}]: expected {e}, got {actual[i]}");
            }
        }
    }

    [Fact]
    public void Stored_layout_keeps_the_llama_cpp_permutation()
    {
        using var w = GgufWeightSource.Open(PathOf("f16"), GgufQkLayout.Stored);
        Assert.Equal(RopeLayout.Interleaved, w.RopeLayout);
        const string name = "model.layers.2.self_attn.k_proj.weight";
        var stored = new float[128 * 256];
        w.ReadFloat32(name, stored);
        var hf = new float[128 * 256];
        Reference.Value.ReadFloat32(name, hf);
        // k has 2 heads of 64: stored row h*64 + 2i + t holds HF row h*64 + 32t + i.
        for (int h = 0; h < 2; h++)
        for (int i = 0; i < 32; i++)
        for (int t = 0; t < 2; t++)
        {
            int sr = h * 64 + 2 * i + t, hr = h * 64 + 32 * t + i;
            for (int c = 0; c < 256; c += 37) Assert.Equal((float)(Half)hf[hr * 256 + c], stored[sr * 256 + c]);
        }

        // Raw rows copied in HF order dequantize to the same values as ReadFloat32 in HF layout.
        using var hfw = GgufWeightSource.Open(PathOf("q4_k_m"));
        var t4 = hfw.GetTensor("model.layers.2.self_attn.q_proj.weight");
        var bytes = new byte[t4.ByteLength];
        hfw.CopyRawRows("model.layers.2.self_attn.q_proj.weight", bytes);
        var viaRows = new float[t4.ElementCount];
        GgmlQuants.Dequantize(t4.DType, bytes, viaRows);
        var direct = new float[t4.ElementCount];
        hfw.ReadFloat32("model.layers.2.self_attn.q_proj.weight", direct);
        Assert.Equal(direct, viaRows);
    }

    [Fact]
    public void Q8_0_error_stays_within_half_a_quantization_step_per_block_plus_scale_rounding()
    {
        using var w = GgufWeightSource.Open(PathOf("q8_0"));
        int checkedBlocks = 0;
        foreach (var n in w.Names)
        {
            var info = w.GetInfo(n);
            if (info.DType != TensorDType.Q8_0) continue;
            var expected = new float[info.ElementCount];
            Reference.Value.ReadFloat32(n, expected);
            var actual = new float[info.ElementCount];
            w.ReadFloat32(n, actual);
            for (int b = 0; b < expected.Length; b += 32)
            {
                float amax = 0;
                for (int i = b; i < b + 32; i++) amax = Math.Max(amax, Math.Abs(expected[i]));
                float step = amax / 127f;
                for (int i = b; i < b + 32; i++)
                {
                    // Half a step, plus the f16 rounding of the stored scale (up to 127 × 2^-11 of a step).
                    if (Math.Abs(actual[i] - expected[i]) > step * (0.5f + 127f / 2048f) + 1e-7f)
                        Assert.Fail($"{n}[{i}]: {actual[i]} vs {expected[i]} (step {step})");
                }

                checkedBlocks++;
            }
        }

        Assert.True(checkedBlocks > 10000);
    }

    [Theory]
    [InlineData("q4_0", TensorDType.Q4_0, 0.12)]
    [InlineData("q4_k_m", TensorDType.Q4_K, 0.12)]
    [InlineData("q4_k_m", TensorDType.Q6_K, 0.03)]
    [InlineData("mxfp4", TensorDType.MXFP4, 0.25)]
    public void Low_bit_types_dequantize_close_to_the_original_weights(string kind, TensorDType type, double maxRelative)
    {
        using var w = GgufWeightSource.Open(PathOf(kind));
        int seen = 0;
        foreach (var n in w.Names)
        {
            var info = w.GetInfo(n);
            if (info.DType != type) continue;
            seen++;
            var expected = new float[info.ElementCount];
            Reference.Value.ReadFloat32(n, expected);
            var actual = new float[info.ElementCount];
            w.ReadFloat32(n, actual);
            double num = 0, den = 0;
            for (int i = 0; i < expected.Length; i++)
            {
                num += (actual[i] - expected[i]) * (double)(actual[i] - expected[i]);
                den += expected[i] * (double)expected[i];
            }

            double rel = Math.Sqrt(num / den);
            Assert.True(rel < maxRelative, $"{n} ({type}): relative error {rel:F4} (a wrong block layout or q/k permutation gives ~1.4)");
        }

        Assert.True(seen > 0, $"no {type} tensor in {kind}");
    }

    [Fact]
    public void Block_decoders_follow_ggml_on_hand_built_blocks()
    {
        // Q4_0: d = 0.5 (f16 0x3800); nibble 0x0 → -8, 0xF → 7.
        var q40 = new byte[18];
        q40[0] = 0x00; q40[1] = 0x38;
        q40[2] = 0xF0; // j=0: low nibble 0 → (0-8)*0.5 = -4; high nibble 15 → (15-8)*0.5 = 3.5 at j+16
        var y = new float[32];
        GgmlQuants.Dequantize(TensorDType.Q4_0, q40, y);
        Assert.Equal(-4f, y[0]);
        Assert.Equal(3.5f, y[16]);
        Assert.Equal(-4f, y[1]);
        // MXFP4: e = 128 → 2^(128-127)/2 = 1; nibble 0x7 → 12 (doubled 6), 0xF → -12.
        var mx = new byte[17];
        mx[0] = 128; mx[1] = 0xF7;
        GgmlQuants.Dequantize(TensorDType.MXFP4, mx, y);
        Assert.Equal(12f, y[0]);
        Assert.Equal(-12f, y[16]);
        Assert.Equal(BitConverter.UInt32BitsToSingle(0x00200000u), GgmlQuants.E8M0ToFloatHalf(0));
        Assert.Equal(BitConverter.UInt32BitsToSingle(0x00400000u), GgmlQuants.E8M0ToFloatHalf(1));
        Assert.Equal(0.5f, GgmlQuants.E8M0ToFloatHalf(127));
        // Q6_K: all-zero quants decode to -32 * d * scale.
        var q6 = new byte[210];
        q6[192] = 2; // scale of sub-block 0
        q6[208] = 0x00; q6[209] = 0x3C; // d = 1
        var y6 = new float[256];
        GgmlQuants.Dequantize(TensorDType.Q6_K, q6, y6);
        Assert.Equal(-64f, y6[0]);
        Assert.Equal(0f, y6[16]);
        // Q4_K: scale 1 / min 1 for sub-block 0 → q - 1.
        var q4k = new byte[144];
        q4k[0] = 0x00; q4k[1] = 0x3C; // d = 1
        q4k[2] = 0x00; q4k[3] = 0x3C; // dmin = 1
        q4k[4] = 1; q4k[8] = 1; // sc[0] = 1, m[0] = 1
        q4k[16] = 0x35; // l=0: low nibble 5 (sub-block 0), high nibble 3 (sub-block 1: scale 0, min 0)
        var y4 = new float[256];
        GgmlQuants.Dequantize(TensorDType.Q4_K, q4k, y4);
        Assert.Equal(4f, y4[0]);
        Assert.Equal(-1f, y4[1]);
        Assert.Equal(0f, y4[32]);
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Tokenizer_from_gguf_metadata_gives_hugging_face_ids(string kind)
    {
        using var f = GgufFile.Open(PathOf(kind));
        var tok = GgufModel.ReadTokenizer(f);
        Assert.Equal(0, tok.BosTokenId);
        Assert.Equal(new[] { 1 }, tok.EosTokenIds);
        using var doc = JsonDocument.Parse(File.ReadAllText(Repo.Data("fortune-llama", "reference.json")));
        foreach (var probe in doc.RootElement.GetProperty("tokenization").EnumerateArray())
        {
            var ids = tok.Encode(probe.GetProperty("text").GetString()!);
            Assert.Equal(probe.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()), ids);
            Assert.Equal(probe.GetProperty("decoded").GetString(), tok.Decode(ids));
        }
    }

    [Fact]
    public void Gguf_tokenizer_matches_on_the_whole_test_split()
    {
        using var f = GgufFile.Open(PathOf("q4_0"));
        var tok = GgufModel.ReadTokenizer(f);
        var paragraphs = File.ReadAllText(Repo.Data("fortune-corpus", "test.txt")).Split("\n\n");
        using var doc = JsonDocument.Parse(File.ReadAllText(Repo.Data("fortune-llama", "reference_test_ids.json")));
        var reference = doc.RootElement.GetProperty("ids");
        for (int i = 0; i < paragraphs.Length; i++)
            Assert.Equal(reference[i].EnumerateArray().Select(e => e.GetInt32()), tok.Encode(paragraphs[i]));
    }

    [Fact]
    public void ModelFiles_opens_a_gguf_file()
    {
        using var m = ModelFiles.Open(PathOf("q8_0"));
        Assert.Equal("gguf", m.Format);
        Assert.Equal(RopeLayout.RotateHalf, m.Weights.RopeLayout);
        Assert.Equal(4096, m.Config.VocabSize);
        Assert.Equal(new[] { 1 }, m.Generation.EosTokenIds);
        Assert.Equal("ByteLevelBpe", m.Tokenizer.Kind);
    }

    [Fact]
    public void Name_mapping_covers_llama_tensors()
    {
        Assert.Equal("model.layers.12.mlp.down_proj.weight", GgufWeightSource.HfName("blk.12.ffn_down.weight"));
        Assert.Equal("model.layers.0.self_attn.q_proj.bias", GgufWeightSource.HfName("blk.0.attn_q.bias"));
        Assert.Equal("model.layers.3.post_attention_layernorm.weight", GgufWeightSource.HfName("blk.3.ffn_norm.weight"));
        Assert.Equal("rope_freqs.weight", GgufWeightSource.HfName("rope_freqs.weight"));
        Assert.Equal(new[] { 0, 2, 4, 6, 1, 3, 5, 7 }.Select((s, i) => (s, i)).ToDictionary(x => x.i, x => x.s),
            Enumerable.Range(0, 8).ToDictionary(r => GgufWeightSource.HfRow(r, 8, 1), r => r));
    }
}

public sealed class RowReadTests
{
    [Theory]
    [InlineData("q4_k_m", "model.layers.1.self_attn.q_proj.weight")]
    [InlineData("q4_k_m", "model.layers.1.self_attn.k_proj.weight")]
    [InlineData("mxfp4", "model.embed_tokens.weight")]
    [InlineData("q8_0", "model.layers.3.mlp.down_proj.weight")]
    public void Row_reads_equal_slices_of_whole_reads(string kind, string name)
    {
        using var w = GgufWeightSource.Open(Repo.Data("fortune-llama-gguf", $"fortune-llama-{kind}.gguf"));
        var info = w.GetInfo(name);
        int rows = (int)info.Shape[0], cols = (int)info.Shape[1];
        var all = new float[info.ElementCount];
        w.ReadFloat32(name, all);
        foreach (var (start, count) in new[] { (0, 1), (rows - 3, 3), (rows / 2 - 5, 17) })
        {
            var part = new float[count * cols];
            ((IWeightSource)w).ReadFloat32Rows(name, start, count, part);
            Assert.Equal(all.AsSpan(start * cols, count * cols).ToArray(), part);
        }

        for (int r = 0; r < 128; r++) Assert.Equal(r, GgufWeightSource.HfRow(GgufWeightSource.StoredRow(r, 128, 2), 128, 2));
    }

    [Fact]
    public void Safetensors_row_reads_equal_slices()
    {
        using var w = SafeTensorsWeightSource.Open(Repo.Data("fortune-llama"));
        var all = new float[4096 * 256];
        w.ReadFloat32("model.embed_tokens.weight", all);
        var part = new float[2 * 256];
        ((IWeightSource)w).ReadFloat32Rows("model.embed_tokens.weight", 4094, 2, part);
        Assert.Equal(all.AsSpan(4094 * 256).ToArray(), part);
        Assert.Throws<ArgumentOutOfRangeException>(() => w.ReadFloat32Rows("model.embed_tokens.weight", 4095, 2, new float[512]));
    }
}
