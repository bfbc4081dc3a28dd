using System.Text;
using GpuOps.Core.Formats;
using GpuOps.Core.Tokenizers;
using GpuOps.Tests.Support;
using Xunit;

namespace GpuOps.Tests.Models;

/// <summary>Properties of the tokenizers on random text mixing scripts, whitespace, emoji, digits and special tokens.</summary>
public sealed class TokenizerPropertyTests
{
    private static readonly string[] Palette =
    [
        "a", "Z", "e", "the", " ", "  ", "\t", "\n", "\r\n", "\n\n", "\u00A0", "\u3000", "0", "12", "3456789", ".", ",", "!?",
        "'s", "'T", "'ll", "don't", "é", "ü", "ß", "ñ", "日本", "語", "中文", "한국어", "Ελλάδα", "мир", "\U0001F680", "\U0001F600",
        "\U0001D400", "e\u0301", "\u200B", "$", "€", "½", "(", ")", "{", "}", "<|end_of_text|>", "<|begin_of_text|>", "<", "|", "--", "\\",
    ];

    private static string RandomText(Random rng)
    {
        var sb = new StringBuilder();
        int n = rng.Next(0, 24);
        for (int i = 0; i < n; i++) sb.Append(Palette[rng.Next(Palette.Length)]);
        return sb.ToString();
    }

    [Fact]
    public void Byte_level_decode_inverts_encode_and_gguf_and_json_tokenizers_agree()
    {
        int seed = Environment.TickCount;
        var rng = new Random(seed);
        var json = TokenizerJson.Load(Repo.Data("fortune-llama"));
        using var f = GgufFile.Open(Repo.Data("fortune-llama-gguf", "fortune-llama-q4_0.gguf"));
        var gguf = GgufModel.ReadTokenizer(f);
        for (int i = 0; i < 3000; i++)
        {
            var text = RandomText(rng);
            var ids = json.Encode(text, addSpecialTokens: false);
            Assert.All(ids, id => Assert.InRange(id, 0, json.VocabSize - 1));
            Assert.True(text == json.Decode(ids, skipSpecialTokens: false), $"seed {seed}: round trip of {Escape(text)} gave {Escape(json.Decode(ids, false))}");
            Assert.True(ids.SequenceEqual(gguf.Encode(text, addSpecialTokens: false)), $"seed {seed}: GGUF tokenizer differs on {Escape(text)}");
            var withBos = json.Encode(text);
            Assert.Equal(0, withBos[0]);
            Assert.Equal(ids, withBos[1..]);
        }
    }

    [Fact]
    public void Sentencepiece_byte_fallback_round_trips_any_text()
    {
        int seed = Environment.TickCount;
        var rng = new Random(seed);
        var tok = TokenizerJson.Load(Repo.PathOf("tests", "GpuOps.Tests", "Models", "Tokenizers", "spm-llama2-style.tokenizer.json"));
        for (int i = 0; i < 2000; i++)
        {
            var text = RandomText(rng).Replace("<|", "<").Replace("\u00A0", " ");
            var ids = tok.Encode(text);
            Assert.Equal(1, ids[0]);
            Assert.DoesNotContain(0, ids); // byte fallback covers everything: no <unk>
            Assert.True(text == tok.Decode(ids), $"seed {seed}: round trip of {Escape(text)} gave {Escape(tok.Decode(ids))}");
        }
    }

    [Fact]
    public void Lone_surrogates_do_not_crash()
    {
        var json = TokenizerJson.Load(Repo.Data("fortune-llama"));
        var ids = json.Encode("a\uD800b\uDC00");
        Assert.Equal("a\uFFFDb\uFFFD", json.Decode(ids));
    }

    private static string Escape(string s) => System.Text.Json.JsonSerializer.Serialize(s);
}
