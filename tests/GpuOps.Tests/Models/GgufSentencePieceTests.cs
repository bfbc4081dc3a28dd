using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using GpuOps.Core.Formats;
using GpuOps.Core.Tokenizers;
using GpuOps.Tests.Support;
using Xunit;

namespace GpuOps.Tests.Models;

/// <summary>
/// tokenizer.ggml.model "llama" (SentencePiece with scores): a GGUF built here from the hand-written Llama-2-style
/// tokenizer.json's vocabulary, with scores that rank the merged pieces in that file's merge order, must tokenize
/// exactly like the tokenizer.json.
/// </summary>
public sealed class GgufSentencePieceTests
{
    private static readonly string JsonPath = Repo.PathOf("tests", "GpuOps.Tests", "Models", "Tokenizers", "spm-llama2-style.tokenizer.json");

    private static byte[] BuildGguf(bool addSpacePrefix = true)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(JsonPath));
        var model = doc.RootElement.GetProperty("model");
        var vocab = model.GetProperty("vocab").EnumerateObject().OrderBy(p => p.Value.GetInt32()).Select(p => p.Name).ToArray();
        var merged = model.GetProperty("merges").EnumerateArray().Select(m => m.GetString()!.Replace(" ", "")).ToList();
        var scores = vocab.Select(t => merged.IndexOf(t) is var r and >= 0 ? -r : -1000f).ToArray();
        var types = vocab.Select((t, i) => i == 0 ? 2 : i <= 2 ? 3 : t.StartsWith("<0x", StringComparison.Ordinal) ? 6 : 1).ToArray();
        var b = new GgufBuilder();
        b.String("general.architecture", "llama");
        b.String("tokenizer.ggml.model", "llama");
        b.StringArray("tokenizer.ggml.tokens", vocab);
        b.FloatArray("tokenizer.ggml.scores", scores);
        b.IntArray("tokenizer.ggml.token_type", types);
        b.UInt32("tokenizer.ggml.bos_token_id", 1);
        b.UInt32("tokenizer.ggml.eos_token_id", 2);
        b.UInt32("tokenizer.ggml.unknown_token_id", 0);
        b.Bool("tokenizer.ggml.add_space_prefix", addSpacePrefix);
        return b.Build();
    }

    [Fact]
    public void Scores_give_the_same_ids_as_the_tokenizer_json()
    {
        var bytes = BuildGguf();
        using var f = GgufFile.FromMemory(bytes, bytes.Length, "spm.gguf");
        var gguf = GgufModel.ReadTokenizer(f);
        var json = TokenizerJson.Load(JsonPath);
        Assert.Equal("SentencePieceBpe", gguf.Kind);
        Assert.Equal(1, gguf.BosTokenId);
        foreach (var text in new[] { "hello world", "hello  world", "hé", "<s>hello", "", "\U0001F680 ell el", " leading", "trailing ", "wor or l" })
        {
            var ids = gguf.Encode(text);
            Assert.Equal(json.Encode(text), ids);
            Assert.Equal(json.Decode(ids), gguf.Decode(ids));
        }

        Assert.Equal(new[] { 1, 271, 274, 262, 266 }, gguf.Encode("hello world"));
    }

    [Fact]
    public void Without_space_prefix_no_leading_marker_is_added()
    {
        var bytes = BuildGguf(addSpacePrefix: false);
        using var f = GgufFile.FromMemory(bytes, bytes.Length, "spm.gguf");
        var tok = GgufModel.ReadTokenizer(f);
        // "hello": h e ll o (no "▁" first, so "▁h..." merges never apply).
        Assert.Equal(new[] { 1, 260, 261, 268, 263 }, tok.Encode("hello"));
        Assert.Equal("hello", tok.Decode(tok.Encode("hello")));
    }

    /// <summary>A minimal GGUF v3 writer for metadata-only test files.</summary>
    private sealed class GgufBuilder
    {
        private readonly MemoryStream _kv = new();
        private int _count;

        private void Key(string key, uint type)
        {
            WriteString(key);
            WriteU32(type);
            _count++;
        }

        private void WriteU32(uint v) { Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(b, v); _kv.Write(b); }
        private void WriteU64(ulong v) { Span<byte> b = stackalloc byte[8]; BinaryPrimitives.WriteUInt64LittleEndian(b, v); _kv.Write(b); }

        private void WriteString(string s)
        {
            var bytes = Encoding.UTF8.GetBytes(s);
            WriteU64((ulong)bytes.Length);
            _kv.Write(bytes);
        }

        public void String(string key, string v) { Key(key, 8); WriteString(v); }
        public void UInt32(string key, uint v) { Key(key, 4); WriteU32(v); }
        public void Bool(string key, bool v) { Key(key, 7); _kv.WriteByte(v ? (byte)1 : (byte)0); }

        public void StringArray(string key, string[] v)
        {
            Key(key, 9); WriteU32(8); WriteU64((ulong)v.Length);
            foreach (var s in v) WriteString(s);
        }

        public void FloatArray(string key, float[] v)
        {
            Key(key, 9); WriteU32(6); WriteU64((ulong)v.Length);
            foreach (var x in v) WriteU32(BitConverter.SingleToUInt32Bits(x));
        }

        public void IntArray(string key, int[] v)
        {
            Key(key, 9); WriteU32(5); WriteU64((ulong)v.Length);
            foreach (var x in v) WriteU32((uint)x);
        }

        public byte[] Build()
        {
            var o = new MemoryStream();
            o.Write("GGUF"u8);
            Span<byte> b = stackalloc byte[8];
            BinaryPrimitives.WriteUInt32LittleEndian(b, 3); o.Write(b[..4]);
            BinaryPrimitives.WriteUInt64LittleEndian(b, 0); o.Write(b);
            BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)_count); o.Write(b);
            _kv.Position = 0;
            _kv.CopyTo(o);
            return o.ToArray();
        }
    }
}
