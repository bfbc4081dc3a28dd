using GpuOps.Core.Formats;
using GpuOps.Core.Tokenizers;
using GpuOps.Tests.Support;
using Xunit;

namespace GpuOps.Tests.Models;

/// <summary>
/// SentencePiece-style BPE on hand-written tokenizer.json files (tests/GpuOps.Tests/Models/Tokenizers).
/// Merges (rank order): "▁ h", "l l", "▁h e", "▁he ll", "▁hell o", "o r", "▁ w", "▁w or", "e l".
/// Expected ids were worked out by hand following tokenizers' BPE (lowest rank first, then leftmost).
/// </summary>
public sealed class SentencePieceTokenizerTests
{
    private static HfTokenizer Load(string name) =>
        TokenizerJson.Load(Repo.PathOf("tests", "GpuOps.Tests", "Models", "Tokenizers", name + ".tokenizer.json"));

    // Llama-2 style ids: <unk>0 <s>1 </s>2, <0xNN> = 3 + NN, then ▁259 h260 e261 l262 o263 w264 r265 d266
    // ▁h267 ll268 ▁he269 ▁hell270 ▁hello271 or272 ▁w273 ▁wor274 el275.
    [Theory]
    [InlineData("hello world", new[] { 1, 271, 274, 262, 266 })]
    [InlineData("hello  world", new[] { 1, 271, 259, 274, 262, 266 })]
    [InlineData("hé", new[] { 1, 267, 3 + 0xC3, 3 + 0xA9 })]
    [InlineData("<s>hello", new[] { 1, 1, 271 })]
    [InlineData("", new[] { 1 })]
    [InlineData("\U0001F680", new[] { 1, 259, 3 + 0xF0, 3 + 0x9F, 3 + 0x9A, 3 + 0x80 })]
    public void Llama2_style_prepend_replace_with_byte_fallback(string text, int[] expected)
    {
        var tok = Load("spm-llama2-style");
        Assert.Equal("SentencePieceBpe", tok.Kind);
        Assert.Equal(1, tok.BosTokenId);
        Assert.Equal(expected, tok.Encode(text));
        Assert.Equal(text.Replace("<s>", ""), tok.Decode(tok.Encode(text)));
    }

    [Fact]
    public void Merge_priority_beats_position()
    {
        // "ell": (e,l) is rank 8, (l,l) rank 1, so "ll" wins although "el" starts further left;
        // afterwards (e,ll) has no merge: ▁ e ll.
        var tok = Load("spm-llama2-style");
        Assert.Equal(new[] { 259, 261, 268 }, tok.Encode("ell", addSpecialTokens: false));
        // "el" alone merges.
        Assert.Equal(new[] { 259, 275 }, tok.Encode("el", addSpecialTokens: false));
    }

    [Fact]
    public void Byte_fallback_decoding_of_invalid_utf8_gives_one_replacement_char_per_byte()
    {
        var tok = Load("spm-llama2-style");
        Assert.Equal("\uFFFD\uFFFD", tok.Decode([3 + 0xC3, 3 + 0xC3]));
        Assert.Equal("é", tok.Decode([3 + 0xC3, 3 + 0xA9]));
        // As tokenizers does: Strip removes the leading space of the first token only, and "<s>" is first.
        Assert.Equal("<s> hello</s>", tok.Decode([1, 271, 2], skipSpecialTokens: false));
    }

    // Metaspace-first ids: <unk>0 <s>1 </s>2 ▁3 h4 e5 l6 o7 w8 r9 d10 ▁h11 ll12 ▁he13 ▁hell14 ▁hello15 or16 ▁w17 ▁wor18 el19.
    [Theory]
    [InlineData("hello world", new[] { 1, 15, 18, 6, 10 })]
    [InlineData("hello zzworld", new[] { 1, 15, 3, 0, 8, 16, 6, 10 })]
    [InlineData("<s>hello", new[] { 1, 1, 4, 5, 12, 7 })]
    [InlineData("hello<s> hello", new[] { 1, 15, 1, 15 })]
    public void Metaspace_first_scheme_unk_fusing_and_array_merges(string text, int[] expected)
    {
        var tok = Load("spm-metaspace-first");
        Assert.Equal("SentencePieceBpe", tok.Kind);
        Assert.Equal(expected, tok.Encode(text));
    }

    [Fact]
    public void Metaspace_decoder_strips_the_first_prefix_space_only()
    {
        var tok = Load("spm-metaspace-first");
        Assert.Equal("hello world", tok.Decode([1, 15, 18, 6, 10]));
        Assert.Equal("hello world", tok.Decode([15, 3, 0, 8, 16, 6, 10]));
        Assert.Equal("hello <unk>world", tok.Decode([15, 3, 0, 8, 16, 6, 10], skipSpecialTokens: false));
    }

    [Fact]
    public void Unsupported_model_types_and_broken_merges_give_clear_errors()
    {
        var ex = Assert.Throws<ModelFormatException>(() => TokenizerJson.Parse("""{"model":{"type":"Unigram","vocab":[]}}"""));
        Assert.Contains("tokenizer model 'Unigram' is not supported", ex.Message);
        var ex2 = Assert.Throws<ModelFormatException>(() => TokenizerJson.Parse("""{"model":{"type":"BPE","vocab":{"a":0},"merges":["a b"]}}"""));
        Assert.Contains("not in the vocabulary", ex2.Message);
        var ex3 = Assert.Throws<ModelFormatException>(() => TokenizerJson.Parse("""{"model":{"type":"BPE","vocab":{"a":0},"merges":[]},"pre_tokenizer":{"type":"Punctuation"}}"""));
        Assert.Contains("pre-tokenizer 'Punctuation' is not supported", ex3.Message);
    }
}

public sealed class NormalizerTests
{
    [Fact]
    public void Nfc_and_nfkc_normalizers_compose_like_unicode_says()
    {
        Assert.Equal("\u00E9", new Normalizer.Unicode(System.Text.NormalizationForm.FormC).Normalize("e\u0301"));
        Assert.Equal("e\u0301", new Normalizer.Unicode(System.Text.NormalizationForm.FormD).Normalize("\u00E9"));
        Assert.Equal("fi2", new Normalizer.Unicode(System.Text.NormalizationForm.FormKC).Normalize("\uFB01\u00B2"));
    }

    [Fact]
    public void Qwen2_style_pipeline_nfc_split_bytelevel_without_bos()
    {
        // A Qwen2-shaped tokenizer.json (NFC, single-digit split, ByteLevel post-processor that adds nothing).
        var vocab = new Dictionary<string, int>();
        foreach (var c in ByteLevelMap.ByteToChar) vocab[c.ToString()] = vocab.Count;
        var json = System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["added_tokens"] = new[] { new { id = 256, content = "<|endoftext|>", special = true, normalized = false, lstrip = false, rstrip = false, single_word = false } },
            ["normalizer"] = new { type = "NFC" },
            ["pre_tokenizer"] = new
            {
                type = "Sequence",
                pretokenizers = new object[]
                {
                    new { type = "Split", pattern = new { Regex = GgufModel.Qwen2Pattern }, behavior = "Isolated", invert = false },
                    new { type = "ByteLevel", add_prefix_space = false, trim_offsets = false, use_regex = false },
                },
            },
            ["post_processor"] = new { type = "ByteLevel", add_prefix_space = false, trim_offsets = false, use_regex = false },
            ["decoder"] = new { type = "ByteLevel", add_prefix_space = false, trim_offsets = false, use_regex = false },
            ["model"] = new Dictionary<string, object> { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = Array.Empty<string>() },
        });
        var tok = TokenizerJson.Parse(json);
        Assert.Equal("ByteLevelBpe", tok.Kind);
        Assert.Null(tok.BosTokenId);
        // "12" splits into single digits; "e\u0301" is composed to é (2 UTF-8 bytes) first.
        var ids = tok.Encode("12e\u0301<|endoftext|>");
        Assert.Equal(new[] { vocab["1"], vocab["2"], vocab[ByteLevelMap.ByteToChar[0xC3].ToString()], vocab[ByteLevelMap.ByteToChar[0xA9].ToString()], 256 }, ids);
        Assert.Equal("12\u00E9", tok.Decode(ids));
    }
}

public sealed class BpeModelTests
{
    [Fact]
    public void Ignore_merges_takes_whole_words_from_the_vocabulary_first()
    {
        var vocab = new Dictionary<string, int> { ["h"] = 0, ["e"] = 1, ["l"] = 2, ["o"] = 3, ["hello"] = 4, ["he"] = 5 };
        var merges = new List<(string, string)> { ("h", "e") };
        var ids = new List<int>();
        new BpeModel(vocab, merges, ignoreMerges: true).Tokenize("hello", ids);
        Assert.Equal(new[] { 4 }, ids);
        ids.Clear();
        new BpeModel(vocab, merges, ignoreMerges: false).Tokenize("hello", ids);
        Assert.Equal(new[] { 5, 2, 2, 3 }, ids);
    }

    [Fact]
    public void Unknown_chars_without_unk_token_are_dropped_like_tokenizers_does()
    {
        var vocab = new Dictionary<string, int> { ["a"] = 0, ["<unk>"] = 1 };
        var ids = new List<int>();
        new BpeModel(vocab, []).Tokenize("axa", ids);
        Assert.Equal(new[] { 0, 0 }, ids);
        ids.Clear();
        new BpeModel(vocab, [], unkToken: "<unk>", fuseUnk: false).Tokenize("axxa", ids);
        Assert.Equal(new[] { 0, 1, 1, 0 }, ids);
        ids.Clear();
        new BpeModel(vocab, [], unkToken: "<unk>", fuseUnk: true).Tokenize("axxa", ids);
        Assert.Equal(new[] { 0, 1, 0 }, ids);
    }
}
