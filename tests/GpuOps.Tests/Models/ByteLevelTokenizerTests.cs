using System.Text.Json;
using GpuOps.Core.Models;
using GpuOps.Core.Tokenizers;
using GpuOps.Tests.Support;
using Xunit;

namespace GpuOps.Tests.Models;

public sealed class ByteLevelTokenizerTests
{
    private static readonly Lazy<HfTokenizer> Fixture = new(() => TokenizerJson.Load(Repo.Data("fortune-llama")));

    public static TheoryData<int> ProbeIndexes()
    {
        var data = new TheoryData<int>();
        using var doc = JsonDocument.Parse(File.ReadAllText(Repo.Data("fortune-llama", "reference.json")));
        for (int i = 0; i < doc.RootElement.GetProperty("tokenization").GetArrayLength(); i++) data.Add(i);
        return data;
    }

    [Theory]
    [MemberData(nameof(ProbeIndexes))]
    public void Probe_ids_and_decoded_text_equal_hugging_face(int index)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Repo.Data("fortune-llama", "reference.json")));
        var probe = doc.RootElement.GetProperty("tokenization")[index];
        var text = probe.GetProperty("text").GetString()!;
        var expected = probe.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var ids = Fixture.Value.Encode(text);
        Assert.Equal(expected, ids);
        Assert.Equal(probe.GetProperty("decoded").GetString(), Fixture.Value.Decode(ids));
    }

    [Fact]
    public void Every_paragraph_of_the_test_split_equals_hugging_face_and_round_trips()
    {
        var text = File.ReadAllText(Repo.Data("fortune-corpus", "test.txt"));
        var paragraphs = text.Split("\n\n");
        using var doc = JsonDocument.Parse(File.ReadAllText(Repo.Data("fortune-llama", "reference_test_ids.json")));
        var reference = doc.RootElement.GetProperty("ids");
        Assert.Equal(813, paragraphs.Length);
        Assert.Equal(paragraphs.Length, reference.GetArrayLength());
        int total = 0, mismatches = 0;
        string? firstMismatch = null;
        for (int i = 0; i < paragraphs.Length; i++)
        {
            var expected = reference[i].EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var ids = Fixture.Value.Encode(paragraphs[i]);
            total += ids.Length;
            if (!expected.SequenceEqual(ids))
            {
                mismatches++;
                firstMismatch ??= $"paragraph {i}: {JsonSerializer.Serialize(paragraphs[i])}\nexpected {string.Join(",", expected)}\nactual   {string.Join(",", ids)}";
            }

            Assert.Equal(paragraphs[i], Fixture.Value.Decode(ids));
        }

        Assert.True(mismatches == 0, $"{mismatches} paragraphs differ; first: {firstMismatch}");
        Assert.Equal(42169, total);
    }

    [Fact]
    public void Without_special_tokens_there_is_no_bos_and_special_text_maps_to_its_id()
    {
        var tok = Fixture.Value;
        Assert.Equal("ByteLevelBpe", tok.Kind);
        Assert.Equal(0, tok.BosTokenId);
        Assert.Equal(new[] { 1 }, tok.EosTokenIds);
        Assert.Equal(4096, tok.VocabSize);
        var plain = tok.Encode("Hello world", addSpecialTokens: false);
        Assert.NotEqual(0, plain[0]);
        Assert.Equal(tok.Encode("Hello world")[1..], plain);
        var withEos = tok.Encode("Hello<|end_of_text|>", addSpecialTokens: false);
        Assert.Equal(1, withEos[^1]);
        Assert.Equal("Hello", tok.Decode(withEos));
        Assert.Equal("Hello<|end_of_text|>", tok.Decode(withEos, skipSpecialTokens: false));
    }

    [Fact]
    public void Astral_letters_count_as_letters_like_oniguruma()
    {
        // U+1D400 MATHEMATICAL BOLD CAPITAL A is \p{L}: "x𝐀y" is one pre-token, so no split between the letters.
        var regex = new CodePointRegex(@"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}");
        var matches = regex.Matches(" x\U0001D400y 12345");
        Assert.Equal(new[] { (0, 5), (6, 3), (9, 2) }, matches.ToArray());
        // Emoji are symbols, not letters.
        Assert.Equal(2, new CodePointRegex(@"\p{L}+").Matches("ab\U0001F680cd").Count);
    }
}
