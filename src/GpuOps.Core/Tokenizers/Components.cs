using System.Globalization;
using System.Text;

namespace GpuOps.Core.Tokenizers;

/// <summary>A piece of text during pre-tokenization; <see cref="AtStart"/> = it begins at offset 0 of the input.</summary>
public readonly record struct Piece(string Text, bool AtStart);

/// <summary>Hugging Face normalizers (the subset real LLM tokenizers use).</summary>
public abstract class Normalizer
{
    public abstract string Normalize(string text);

    public sealed class Sequence(IReadOnlyList<Normalizer> items) : Normalizer
    {
        public override string Normalize(string text)
        {
            foreach (var n in items) text = n.Normalize(text);
            return text;
        }
    }

    /// <summary>Prepend: adds the prefix to non-empty text.</summary>
    public sealed class Prepend(string prefix) : Normalizer
    {
        public override string Normalize(string text) => text.Length == 0 ? text : prefix + text;
    }

    public sealed class Replace(string? literal, CodePointRegex? regex, string content) : Normalizer
    {
        public override string Normalize(string text) => Splitting.ReplaceAll(text, literal, regex, content);
    }

    public sealed class Unicode(NormalizationForm form) : Normalizer
    {
        public override string Normalize(string text) => text.IsNormalized(form) ? text : text.Normalize(form);
    }

    public sealed class Lowercase : Normalizer
    {
        public override string Normalize(string text) => text.ToLowerInvariant();
    }

    /// <summary>Strip: removes leading/trailing whitespace.</summary>
    public sealed class Strip(bool left, bool right) : Normalizer
    {
        public override string Normalize(string text) => left && right ? text.Trim() : left ? text.TrimStart() : right ? text.TrimEnd() : text;
    }
}

/// <summary>Hugging Face pre-tokenizers.</summary>
public abstract class PreTokenizer
{
    public abstract void Split(Piece piece, List<Piece> output);

    public List<Piece> Apply(List<Piece> pieces)
    {
        var output = new List<Piece>(pieces.Count * 2);
        foreach (var p in pieces) Split(p, output);
        return output;
    }

    public sealed class Sequence(IReadOnlyList<PreTokenizer> items) : PreTokenizer
    {
        public IReadOnlyList<PreTokenizer> Items => items;

        public override void Split(Piece piece, List<Piece> output)
        {
            var current = new List<Piece> { piece };
            foreach (var p in items) current = p.Apply(current);
            output.AddRange(current);
        }
    }

    public enum Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous }

    /// <summary>Split on a string or regex with one of HF's delimiter behaviors.</summary>
    public sealed class SplitPattern(string? literal, CodePointRegex? regex, Behavior behavior, bool invert) : PreTokenizer
    {
        public override void Split(Piece piece, List<Piece> output)
        {
            var spans = Splitting.Spans(piece.Text, literal, regex, invert);
            var parts = Splitting.ApplyBehavior(piece.Text, spans, behavior);
            Splitting.Emit(piece, parts, output);
        }
    }

    /// <summary>ByteLevel: optional prefix space, optional GPT-2 regex split, then bytes to printable chars.</summary>
    public sealed class ByteLevel(bool addPrefixSpace, bool useRegex) : PreTokenizer
    {
        public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
        private static readonly Lazy<CodePointRegex> Gpt2 = new(() => new CodePointRegex(Gpt2Pattern));

        public override void Split(Piece piece, List<Piece> output)
        {
            var text = piece.Text;
            if (addPrefixSpace && !text.StartsWith(' ')) text = " " + text;
            if (!useRegex)
            {
                output.Add(piece with { Text = ByteLevelMap.Encode(text) });
                return;
            }

            bool first = true;
            foreach (var (s, l) in Gpt2.Value.Matches(text))
            {
                output.Add(new Piece(ByteLevelMap.Encode(text.Substring(s, l)), piece.AtStart && first && s == 0));
                first = false;
            }
        }
    }

    /// <summary>Metaspace: spaces to the replacement char (▁), prefix by scheme, optional split before each ▁.</summary>
    public sealed class Metaspace(char replacement, string prependScheme, bool split) : PreTokenizer
    {
        public override void Split(Piece piece, List<Piece> output)
        {
            var text = piece.Text.Replace(' ', replacement);
            bool prepend = prependScheme switch { "always" => true, "first" => piece.AtStart, _ => false };
            if (prepend && !text.StartsWith(replacement)) text = replacement + text;
            if (!split)
            {
                output.Add(piece with { Text = text });
                return;
            }

            var spans = Splitting.Spans(text, replacement.ToString(), null, false);
            Splitting.Emit(piece with { Text = text }, Splitting.ApplyBehavior(text, spans, Behavior.MergedWithNext), output);
        }
    }

    /// <summary>Digits: isolates runs of digits (or each digit).</summary>
    public sealed class Digits(bool individual) : PreTokenizer
    {
        private static readonly CodePointRegex Run = new(@"\p{Nd}+");
        private static readonly CodePointRegex One = new(@"\p{Nd}");

        public override void Split(Piece piece, List<Piece> output)
        {
            var spans = Splitting.Spans(piece.Text, null, individual ? One : Run, false);
            Splitting.Emit(piece, Splitting.ApplyBehavior(piece.Text, spans, Behavior.Isolated), output);
        }
    }

    /// <summary>WhitespaceSplit: splits on whitespace, dropping it.</summary>
    public sealed class WhitespaceSplit : PreTokenizer
    {
        private static readonly CodePointRegex Ws = new(@"\s+");

        public override void Split(Piece piece, List<Piece> output)
        {
            var spans = Splitting.Spans(piece.Text, null, Ws, false);
            Splitting.Emit(piece, Splitting.ApplyBehavior(piece.Text, spans, Behavior.Removed), output);
        }
    }
}

internal static class Splitting
{
    /// <summary>Cover the text with (start, length, isMatch) spans.</summary>
    public static List<(int Start, int Length, bool Match)> Spans(string text, string? literal, CodePointRegex? regex, bool invert)
    {
        var matches = new List<(int, int)>();
        if (regex is not null) matches = regex.Matches(text);
        else if (!string.IsNullOrEmpty(literal))
        {
            for (int i = text.IndexOf(literal, StringComparison.Ordinal); i >= 0; i = text.IndexOf(literal, i + literal.Length, StringComparison.Ordinal))
                matches.Add((i, literal.Length));
        }

        var spans = new List<(int, int, bool)>();
        int pos = 0;
        foreach (var (s, l) in matches)
        {
            if (s > pos) spans.Add((pos, s - pos, invert));
            spans.Add((s, l, !invert));
            pos = s + l;
        }

        if (pos < text.Length) spans.Add((pos, text.Length - pos, invert));
        return spans;
    }

    public static List<(int Start, int Length)> ApplyBehavior(string text, List<(int Start, int Length, bool Match)> spans, PreTokenizer.Behavior behavior)
    {
        var parts = new List<(int Start, int Length)>();
        switch (behavior)
        {
            case PreTokenizer.Behavior.Isolated:
                foreach (var s in spans) parts.Add((s.Start, s.Length));
                break;
            case PreTokenizer.Behavior.Removed:
                foreach (var s in spans) if (!s.Match) parts.Add((s.Start, s.Length));
                break;
            case PreTokenizer.Behavior.MergedWithPrevious:
            {
                bool previousMatch = false;
                foreach (var s in spans)
                {
                    if (s.Match && !previousMatch && parts.Count > 0)
                    {
                        var last = parts[^1];
                        parts[^1] = (last.Start, last.Length + s.Length);
                    }
                    else parts.Add((s.Start, s.Length));
                    previousMatch = s.Match;
                }

                break;
            }
            case PreTokenizer.Behavior.MergedWithNext:
            {
                bool previousMatch = false;
                foreach (var s in spans)
                {
                    if (!s.Match && previousMatch && parts.Count > 0)
                    {
                        var last = parts[^1];
                        parts[^1] = (last.Start, last.Length + s.Length);
                    }
                    else parts.Add((s.Start, s.Length));
                    previousMatch = s.Match;
                }

                break;
            }
            case PreTokenizer.Behavior.Contiguous:
            {
                bool previousMatch = false;
                foreach (var s in spans)
                {
                    if (s.Match && previousMatch && parts.Count > 0)
                    {
                        var last = parts[^1];
                        parts[^1] = (last.Start, last.Length + s.Length);
                    }
                    else parts.Add((s.Start, s.Length));
                    previousMatch = s.Match;
                }

                break;
            }
        }

        return parts;
    }

    public static void Emit(Piece piece, List<(int Start, int Length)> parts, List<Piece> output)
    {
        foreach (var (s, l) in parts)
        {
            if (l > 0) output.Add(new Piece(piece.Text.Substring(s, l), piece.AtStart && s == 0));
        }
    }

    public static string ReplaceAll(string text, string? literal, CodePointRegex? regex, string content)
    {
        if (regex is null) return string.IsNullOrEmpty(literal) ? text : text.Replace(literal, content, StringComparison.Ordinal);
        var sb = new StringBuilder(text.Length);
        int pos = 0;
        foreach (var (s, l) in regex.Matches(text))
        {
            sb.Append(text, pos, s - pos).Append(content);
            pos = s + l;
        }

        sb.Append(text, pos, text.Length - pos);
        return sb.ToString();
    }
}

/// <summary>GPT-2's bytes_to_unicode table: every byte maps to a printable char.</summary>
public static class ByteLevelMap
{
    public static readonly char[] ByteToChar = Build();
    public static readonly Dictionary<char, byte> CharToByte = ByteToChar.Select((c, i) => (c, (byte)i)).ToDictionary(x => x.c, x => x.Item2);

    private static char[] Build()
    {
        var map = new char[256];
        int n = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? (char)b : (char)(256 + n++);
        }

        return map;
    }

    public static string Encode(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        var chars = new char[bytes.Length];
        for (int i = 0; i < bytes.Length; i++) chars[i] = ByteToChar[bytes[i]];
        return new string(chars);
    }
}

/// <summary>Hugging Face decoders (decode_chain semantics: tokens in, tokens out, joined at the end).</summary>
public abstract class Decoder
{
    public abstract List<string> DecodeChain(List<string> tokens);

    public string Decode(List<string> tokens) => string.Concat(DecodeChain(tokens));

    public sealed class Sequence(IReadOnlyList<Decoder> items) : Decoder
    {
        public override List<string> DecodeChain(List<string> tokens)
        {
            foreach (var d in items) tokens = d.DecodeChain(tokens);
            return tokens;
        }
    }

    /// <summary>ByteLevel: chars back to bytes, lossy UTF-8 (a token with a char outside the map keeps its own UTF-8).</summary>
    public sealed class ByteLevel : Decoder
    {
        public override List<string> DecodeChain(List<string> tokens)
        {
            var bytes = new List<byte>();
            foreach (var t in tokens)
            {
                bool all = true;
                foreach (var ch in t)
                {
                    if (!ByteLevelMap.CharToByte.ContainsKey(ch)) { all = false; break; }
                }

                if (all) foreach (var ch in t) bytes.Add(ByteLevelMap.CharToByte[ch]);
                else bytes.AddRange(Encoding.UTF8.GetBytes(t));
            }

            return [Utf8.Lossy(bytes.ToArray())];
        }
    }

    public sealed class Replace(string? literal, CodePointRegex? regex, string content) : Decoder
    {
        public override List<string> DecodeChain(List<string> tokens) =>
            tokens.Select(t => Splitting.ReplaceAll(t, literal, regex, content)).ToList();
    }

    /// <summary>ByteFallback: runs of &lt;0xNN&gt; tokens become their UTF-8 text, or one U+FFFD per byte if invalid.</summary>
    public sealed class ByteFallback : Decoder
    {
        public override List<string> DecodeChain(List<string> tokens)
        {
            var result = new List<string>(tokens.Count);
            var pending = new List<byte>();
            void Flush()
            {
                if (pending.Count == 0) return;
                if (Utf8.TryStrict(pending.ToArray(), out var s)) result.Add(s);
                else for (int i = 0; i < pending.Count; i++) result.Add("\uFFFD");
                pending.Clear();
            }

            foreach (var t in tokens)
            {
                if (t.Length == 6 && t.StartsWith("<0x", StringComparison.Ordinal) && t[5] == '>' &&
                    byte.TryParse(t.AsSpan(3, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var b))
                {
                    pending.Add(b);
                }
                else
                {
                    Flush();
                    result.Add(t);
                }
            }

            Flush();
            return result;
        }
    }

    public sealed class Fuse : Decoder
    {
        public override List<string> DecodeChain(List<string> tokens) => [string.Concat(tokens)];
    }

    /// <summary>Strip: removes up to start/stop occurrences of a char at each token's ends.</summary>
    public sealed class Strip(char content, int start, int stop) : Decoder
    {
        public override List<string> DecodeChain(List<string> tokens) => tokens.Select(t =>
        {
            int s = 0, e = t.Length;
            for (int i = 0; i < start && s < e && t[s] == content; i++) s++;
            for (int i = 0; i < stop && e > s && t[e - 1] == content; i++) e--;
            return t[s..e];
        }).ToList();
    }

    public sealed class Metaspace(char replacement, string prependScheme) : Decoder
    {
        public override List<string> DecodeChain(List<string> tokens) => tokens.Select((t, i) =>
        {
            var s = t.Replace(replacement, ' ');
            if (i == 0 && prependScheme != "never" && s.StartsWith(' ')) s = s[1..];
            return s;
        }).ToList();
    }
}

internal static class Utf8
{
    private static readonly UTF8Encoding Strict = new(false, true);

    /// <summary>Like Rust's String::from_utf8_lossy (one U+FFFD per maximal invalid subsequence, as .NET's decoder does).</summary>
    public static string Lossy(byte[] bytes) => Encoding.UTF8.GetString(bytes);

    public static bool TryStrict(byte[] bytes, out string text)
    {
        try
        {
            text = Strict.GetString(bytes);
            return true;
        }
        catch (DecoderFallbackException)
        {
            text = string.Empty;
            return false;
        }
    }
}
