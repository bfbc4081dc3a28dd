using GpuOps.Core.Formats;
using GpuOps.Core.Models;
using GpuOps.Tests.Support;
using Xunit;

namespace GpuOps.Tests.Models;

public sealed class ConfigTests
{
    [Fact]
    public void Fixture_config_and_generation_defaults()
    {
        var c = HfConfig.ReadConfig(Repo.Data("fortune-llama"));
        Assert.Equal(new LlamaConfig("LlamaForCausalLM", "llama", 4096, 256, 704, 6, 4, 2, 64, 1e-5, 10000.0, null, false, false, 1024, "bfloat16"), c);
        var g = HfConfig.ReadGenerationDefaults(Repo.Data("fortune-llama"));
        Assert.Equal(new[] { 1 }, g.EosTokenIds);
        Assert.Equal(0, g.BosTokenId);
        Assert.False(g.DoSample);
    }

    [Fact]
    public void Old_style_rope_theta_with_llama3_scaling()
    {
        var c = HfConfig.ParseConfig("""
            {"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":4096,"intermediate_size":14336,
             "num_attention_heads":32,"num_key_value_heads":8,"num_hidden_layers":32,"vocab_size":128256,"rms_norm_eps":1e-5,
             "rope_theta":500000.0,"rope_scaling":{"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
             "original_max_position_embeddings":8192,"rope_type":"llama3"},"max_position_embeddings":131072,"torch_dtype":"bfloat16",
             "tie_word_embeddings":false}
            """);
        Assert.Equal(500000.0, c.RopeTheta);
        Assert.Equal(new RopeScaling("llama3", 8.0, 1.0, 4.0, 8192), c.RopeScaling);
        Assert.Equal(128, c.HeadDim);
        Assert.Equal("bfloat16", c.TorchDType);
    }

    [Fact]
    public void Transformers5_rope_parameters_with_llama3_type()
    {
        var c = HfConfig.ParseConfig("""
            {"model_type":"llama","hidden_size":2048,"intermediate_size":8192,"num_attention_heads":32,"num_key_value_heads":8,
             "num_hidden_layers":16,"vocab_size":128256,"tie_word_embeddings":true,
             "rope_parameters":{"rope_theta":500000.0,"rope_type":"llama3","factor":32.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192}}
            """);
        Assert.Equal(500000.0, c.RopeTheta);
        Assert.Equal(new RopeScaling("llama3", 32.0, 1.0, 4.0, 8192), c.RopeScaling);
        Assert.True(c.TieWordEmbeddings);
        Assert.Equal(64, c.HeadDim);
        Assert.Equal("LlamaForCausalLM", c.Architecture);
    }

    [Fact]
    public void Qwen2_has_attention_bias_and_mistral_sliding_window()
    {
        var q = HfConfig.ParseConfig("""
            {"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2","hidden_size":896,"intermediate_size":4864,"num_attention_heads":14,
             "num_key_value_heads":2,"num_hidden_layers":24,"vocab_size":151936,"rope_theta":1000000.0,"sliding_window":32768,
             "use_sliding_window":false,"tie_word_embeddings":true,"rms_norm_eps":1e-6}
            """);
        Assert.True(q.AttentionBias);
        Assert.Null(q.SlidingWindow);
        Assert.Equal(64, q.HeadDim);
        Assert.Equal(1e6, q.RopeTheta);
        var m = HfConfig.ParseConfig("""
            {"model_type":"mistral","hidden_size":4096,"intermediate_size":14336,"num_attention_heads":32,"num_key_value_heads":8,
             "num_hidden_layers":32,"vocab_size":32000,"sliding_window":4096,"head_dim":128}
            """);
        Assert.Equal("MistralForCausalLM", m.Architecture);
        Assert.Equal(4096, m.SlidingWindow);
        Assert.False(m.AttentionBias);
        Assert.Equal(1e-6, m.RmsNormEps);
    }

    [Fact]
    public void Unsupported_and_incomplete_configs_give_clear_errors()
    {
        var ex = Assert.Throws<ModelFormatException>(() => HfConfig.ParseConfig("""{"model_type":"bert","hidden_size":1}"""));
        Assert.Contains("model_type 'bert' is not supported", ex.Message);
        var ex2 = Assert.Throws<ModelFormatException>(() => HfConfig.ParseConfig("""{"model_type":"llama","hidden_size":64}"""));
        Assert.Contains("num_attention_heads", ex2.Message);
        var ex3 = Assert.Throws<ModelFormatException>(() => HfConfig.ParseConfig("{"));
        Assert.Contains("not valid JSON", ex3.Message);
    }

    [Fact]
    public void Generation_eos_list_overrides_config()
    {
        using var g = System.Text.Json.JsonDocument.Parse("""{"eos_token_id":[128001,128008,128009],"temperature":0.6,"top_p":0.9,"do_sample":true}""");
        using var c = System.Text.Json.JsonDocument.Parse("""{"eos_token_id":128001,"bos_token_id":128000}""");
        var d = HfConfig.ParseGenerationDefaults(g.RootElement, c.RootElement);
        Assert.Equal(new[] { 128001, 128008, 128009 }, d.EosTokenIds);
        Assert.Equal(128000, d.BosTokenId);
        Assert.Equal(0.6, d.Temperature);
        Assert.True(d.DoSample);
    }

    [Fact]
    public void ModelFiles_opens_everything_for_a_directory()
    {
        using var m = ModelFiles.Open(Repo.Data("fortune-llama"));
        Assert.Equal("safetensors", m.Format);
        Assert.Equal(6, m.Config.NumLayers);
        Assert.True(m.Weights.Contains("lm_head.weight"));
        Assert.Equal(new[] { 0, 479, 447, 309, 1975, 736, 297, 402, 644, 15 }, m.Tokenizer.Encode("You will be successful in your work."));
        Assert.Equal(new[] { 1 }, m.Generation.EosTokenIds);
    }
}
