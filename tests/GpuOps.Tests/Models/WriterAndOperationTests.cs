using System.Text.Json;
using GpuOps.Core.Formats;
using GpuOps.Core.Hosting;
using GpuOps.Core.Models;
using GpuOps.Tests.Foundation;
using GpuOps.Tests.Support;
using Xunit;

namespace GpuOps.Tests.Models;

public sealed class WriterAndOperationTests
{
    [Fact]
    public void Streaming_writer_round_trips_through_the_reader_in_arbitrary_pieces()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "out.safetensors");
        var rng = new Random(7);
        var a = new byte[3 * 5 * 2];
        var b = new byte[4 * 4];
        rng.NextBytes(a);
        rng.NextBytes(b);
        using (var w = new SafeTensorsWriter(path, [
            new TensorDeclaration("a", TensorDType.BF16, [3, 5]),
            new TensorDeclaration("empty", TensorDType.F32, [0, 4]),
            new TensorDeclaration("b", TensorDType.F32, [4]),
        ], new Dictionary<string, string> { ["format"] = "pt" }))
        {
            var all = a.Concat(b).ToArray();
            for (int i = 0; i < all.Length; i += 7) w.Write(all.AsSpan(i, Math.Min(7, all.Length - i)));
            Assert.Null(w.CurrentTensor);
            w.Complete();
        }

        using var f = SafeTensorsFile.Open(path);
        Assert.Equal(0, f.DataStart % 8);
        Assert.Equal(new[] { "a", "empty", "b" }, f.Names);
        Assert.Equal(a, f.GetRaw("a").ToArray());
        Assert.Equal(b, f.GetRaw("b").ToArray());
        Assert.Equal(0, f.GetRaw("empty").Length);
        Assert.Equal("pt", f.Metadata["format"]);
    }

    [Fact]
    public void WriteFloat32_converts_and_an_incomplete_file_is_not_left_behind()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "f.safetensors");
        using (var w = new SafeTensorsWriter(path, [new TensorDeclaration("x", TensorDType.BF16, [3]), new TensorDeclaration("y", TensorDType.F16, [2])]))
        {
            w.WriteFloat32([1f, -2.5f, 0.1f]);
            w.WriteFloat32([0.5f, 65504f]);
            w.Complete();
        }

        using (var src = SafeTensorsWeightSource.Open(path))
        {
            var x = new float[3];
            src.ReadFloat32("x", x);
            Assert.Equal(new[] { 1f, -2.5f, DTypes.BF16ToSingle(DTypes.SingleToBF16(0.1f)) }, x);
            var y = new float[2];
            src.ReadFloat32("y", y);
            Assert.Equal(new[] { 0.5f, 65504f }, y);
        }

        var path2 = Path.Combine(dir.Path, "g.safetensors");
        using (var w = new SafeTensorsWriter(path2, [new TensorDeclaration("x", TensorDType.F32, [4])]))
        {
            w.Write(new byte[8]);
            Assert.Throws<InvalidOperationException>(() => w.Complete());
        }

        Assert.False(File.Exists(path2));
        Assert.Empty(Directory.GetFiles(dir.Path, "*.partial"));
    }

    [Fact]
    public void Random_checkpoint_is_sharded_loadable_and_matches_its_config()
    {
        using var dir = new TempDir();
        var host = new RecordingHost();
        new WriteRandomCheckpointOperation { Path = dir.Path, Preset = "tiny", Layers = 2, MaxShardBytes = 1_500_000, Seed = 5 }.Execute(host);
        var info = Assert.IsType<RandomCheckpointInfo>(Assert.Single(host.Objects));
        Assert.True(info.Files > 1);
        Assert.True(File.Exists(Path.Combine(dir.Path, "model.safetensors.index.json")));
        using var m = ModelFiles.Open(dir.Path);
        Assert.False(m.HasTokenizer);
        Assert.Equal("TokenizerNotFound", Assert.Throws<GpuOpsException>(() => m.Tokenizer.Encode("x")).ErrorId);
        Assert.Equal(2, m.Config.NumLayers);
        Assert.Equal(LlamaLayout.Tensors(m.Config).Count, m.Weights.Names.Count);
        Assert.Equal(info.Parameters, m.Weights.Names.Sum(n => m.Weights.GetInfo(n).ElementCount));
        var norm = new float[256];
        m.Weights.ReadFloat32("model.norm.weight", norm);
        Assert.All(norm, v => Assert.Equal(1f, v));
        var q = new float[256 * 256];
        m.Weights.ReadFloat32("model.layers.1.self_attn.q_proj.weight", q);
        Assert.All(q, v => Assert.InRange(Math.Abs(v), 1f / 128, 1f / 64));
        Assert.Contains(q, v => v < 0);
        Assert.Contains(q, v => v > 0);
        Assert.Contains(host.Progress, p => p.Completed);
    }

    [Fact]
    public void Random_checkpoint_respects_what_if()
    {
        using var dir = new TempDir();
        var target = Path.Combine(dir.Path, "ckpt");
        var host = new RecordingHost { Confirm = false };
        new WriteRandomCheckpointOperation { Path = target, Preset = "tiny" }.Execute(host);
        Assert.False(Directory.Exists(target));
        Assert.Single(host.ShouldProcessCalls);
    }

    [Fact]
    public void Llama3_8b_shape_has_the_known_parameter_count()
    {
        Assert.Equal(8_030_261_248L, LlamaLayout.ParameterCount(LlamaLayout.Llama3_8B));
        Assert.Equal(131072L, LlamaLayout.KvCacheBytesPerToken(LlamaLayout.Llama3_8B));
        var roundTrip = HfConfig.ParseConfig(LlamaLayout.ToConfigJson(LlamaLayout.Llama3_8B));
        Assert.Equal(LlamaLayout.Llama3_8B, roundTrip);
    }

    [Fact]
    public void Model_info_for_safetensors_and_gguf()
    {
        var st = GetModelInfoOperation.Read(Repo.Data("fortune-llama"));
        Assert.Equal("LlamaForCausalLM", st.Architecture);
        Assert.Equal(6524160, st.Parameters);
        Assert.Equal("BF16:57", st.DTypes);
        Assert.Equal(6524160 * 2, st.WeightBytes);
        Assert.Equal(6 * 2 * 2 * 64 * 2 * 1000, st.KvCacheBytesPer1kTokens);
        Assert.Equal("ByteLevelBpe", st.TokenizerKind);
        Assert.Equal(57, st.Tensors);
        var gg = GetModelInfoOperation.Read(Repo.Data("fortune-llama-gguf", "fortune-llama-q4_k_m.gguf"));
        Assert.Equal("gguf", gg.Format);
        Assert.Equal(6524160, gg.Parameters);
        Assert.Contains("Q4_K", gg.DTypes);
        Assert.Contains("Q6_K", gg.DTypes);
        Assert.Equal("ByteLevelBpe", gg.TokenizerKind);
        Assert.True(gg.WeightBytes < st.WeightBytes / 2);
        Assert.Equal("ModelNotFound", Assert.Throws<GpuOpsException>(() => GetModelInfoOperation.Read("/no/such/model")).ErrorId);
    }

    [Fact]
    public void Token_operations_round_trip_and_reject_out_of_range_ids()
    {
        var host = new RecordingHost();
        new ConvertToTokenOperation { Model = Repo.Data("fortune-llama"), Text = ["You will be successful in your work.", ""] }.Execute(host);
        var r = host.Objects.Cast<TokenizationResult>().ToList();
        Assert.Equal(new[] { 0, 479, 447, 309, 1975, 736, 297, 402, 644, 15 }, r[0].Ids);
        Assert.Equal("<|begin_of_text|>", r[0].Tokens[0]);
        Assert.Equal(new[] { 0 }, r[1].Ids);
        var host2 = new RecordingHost();
        new ConvertFromTokenOperation { Model = Repo.Data("fortune-llama"), Ids = r[0].Ids }.Execute(host2);
        Assert.Equal("You will be successful in your work.", Assert.IsType<DetokenizationResult>(Assert.Single(host2.Objects)).Text);
        var ex = Assert.Throws<GpuOpsException>(() => new ConvertFromTokenOperation { Model = Repo.Data("fortune-llama"), Ids = [5000] }.Execute(new RecordingHost()));
        Assert.Equal("TokenIdOutOfRange", ex.ErrorId);
    }

    [Fact]
    public void Cli_tokenize_json_prints_ids_and_detokenize_prints_text()
    {
        var (code, stdout, stderr) = CliTests.Gpuops("tokenize", Repo.Data("fortune-llama"), "--text", "You will be successful in your work.", "--json");
        Assert.True(code == 0, stderr);
        Assert.Equal("{\"ids\":[0,479,447,309,1975,736,297,402,644,15]}", stdout.Trim());
        var (code2, stdout2, _) = CliTests.Gpuops("detokenize", Repo.Data("fortune-llama"), "0,479,447,309,1975,736,297,402,644,15");
        Assert.Equal(0, code2);
        Assert.Equal("You will be successful in your work.", stdout2.TrimEnd('\n', '\r'));
        var (code3, stdout3, _) = CliTests.Gpuops("detokenize", Repo.Data("fortune-llama"), "0", "479", "--json");
        Assert.Equal(0, code3);
        Assert.Equal("{\"text\":\"You\"}", stdout3.Trim());
    }

    [Fact]
    public void Cli_model_info_prints_architecture_and_counts()
    {
        var (code, stdout, stderr) = CliTests.Gpuops("model", "info", Repo.Data("fortune-llama"), "--json");
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        Assert.Equal("LlamaForCausalLM", doc.RootElement.GetProperty("architecture").GetString());
        Assert.Equal(6524160, doc.RootElement.GetProperty("parameters").GetInt64());
        Assert.Equal(6, doc.RootElement.GetProperty("layers").GetInt32());
        var (code2, human, _) = CliTests.Gpuops("model", "info", Repo.Data("fortune-llama-gguf", "fortune-llama-q8_0.gguf"));
        Assert.Equal(0, code2);
        Assert.Contains("LlamaForCausalLM", human);
        var (code3, _, err3) = CliTests.Gpuops("model", "info", "/no/such/dir");
        Assert.Equal(1, code3);
        Assert.Contains("not a model directory", err3);
    }
}
