using System.Text;
using GpuOps.Core.Models;

namespace GpuOps.Core.Tokenizers;

/// <summary>An added token (tokenizer.json "added_tokens").</summary>
public sealed record AddedToken(int Id, string Content, bool Special, bool SingleWord = false, bool LStrip = false, bool RStrip = false, bool Normalized = false);

/// <summary>The post-processor template for a single sequence: special token ids around the sequence.</summary>
public sealed record PostTemplate(IReadOnlyList<int> Prefix, IReadOnlyList<int> Suffix);

/// <summary>
/// A Hugging Face tokenizer pipeline: added tokens → normalizer → pre-tokenizer → BPE → post-processor;
/// decode through the decoder chain. Built from tokenizer.json (<see cref="TokenizerJson"/>) or GGUF metadata.
/// </summary>
public sealed class HfTokenizer : ITokenizer
{
    private readonly AddedToken[] _added;
    private readonly Dictionary<int, AddedToken> _addedById;
    private readonly Dictionary<char, AddedToken[]> _rawByFirstChar;
    private readonly Dictionary<char, AddedToken[]> _normByFirstChar;

    public HfTokenizer(BpeModel model, IEnumerable<AddedToken> added, Normalizer? normalizer, PreTokenizer? preTokenizer,
        PostTemplate? post, Decoder? decoder, string kind, int? bosTokenId, IReadOnlyList<int> eosTokenIds, bool cleanUpTokenizationSpaces = false)
    {
        Model = model;
        _added = added.ToArray();
        _addedById = new Dictionary<int, AddedToken>();
        foreach (var a in _added) _addedById[a.Id] = a;
        _rawByFirstChar = Index(_added.Where(a => !a.Normalized));
        _normByFirstChar = Index(_added.Where(a => a.Normalized));
        Normalizer = normalizer;
        PreTokenizer = preTokenizer;
        Post = post;
        Decoder = decoder;
        Kind = kind;
        BosTokenId = bosTokenId;
        EosTokenIds = eosTokenIds;
        CleanUpTokenizationSpaces = cleanUpTokenizationSpaces;
        int max = Math.Max(model.VocabSize, _added.Length == 0 ? 0 : _added.Max(a => a.Id) + 1);
        VocabSize = max;
    }

    private static Dictionary<char, AddedToken[]> Index(IEnumerable<AddedToken> tokens) =>
        tokens.Where(t => t.Content.Length > 0).GroupBy(t => t.Content[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Content.Length).ToArray());

    public BpeModel Model { get; }
    public Normalizer? Normalizer { get; }
    public PreTokenizer? PreTokenizer { get; }
    public PostTemplate? Post { get; }
    public Decoder? Decoder { get; }
    public IReadOnlyList<AddedToken> AddedTokens => _added;
    public bool CleanUpTokenizationSpaces { get; }

    public int VocabSize { get; }
    public int? BosTokenId { get; }
    public IReadOnlyList<int> EosTokenIds { get; }
    public string Kind { get; }

    public string? IdToToken(int id) => _addedById.TryGetValue(id, out var a) ? a.Content : Model.IdToToken(id);

    public int? TokenToId(string token)
    {
        foreach (var a in _added) if (a.Content == token) return a.Id;
        return Model.TryGetId(token, out var id) ? id : null;
    }

    public bool IsSpecial(int id) => _addedById.TryGetValue(id, out var a) && a.Special;

    public int[] Encode(string text, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 4);
        if (addSpecialTokens && Post is not null) ids.AddRange(Post.Prefix);
        foreach (var (segment, addedId, atStart) in SplitAdded(text, _rawByFirstChar))
        {
            if (addedId >= 0) { ids.Add(addedId); continue; }
            var normalized = Normalizer is null ? segment : Normalizer.Normalize(segment);
            foreach (var (seg2, addedId2, atStart2) in SplitAdded(normalized, _normByFirstChar))
            {
                if (addedId2 >= 0) { ids.Add(addedId2); continue; }
                var pieces = new List<Piece> { new(seg2, atStart && atStart2) };
                if (PreTokenizer is not null) pieces = PreTokenizer.Apply(pieces);
                foreach (var p in pieces) Model.Tokenize(p.Text, ids);
            }
        }

        if (addSpecialTokens && Post is not null) ids.AddRange(Post.Suffix);
        return ids.ToArray();
    }

    /// <summary>Split on added tokens (leftmost-longest), honoring single_word, lstrip and rstrip.</summary>
    private static IEnumerable<(string Text, int AddedId, bool AtStart)> SplitAdded(string text, Dictionary<char, AddedToken[]> index)
    {
        if (index.Count == 0 || text.Length == 0)
        {
            if (text.Length > 0) yield return (text, -1, true);
            yield break;
        }

        int segmentStart = 0, consumed = 0;
        for (int i = 0; i < text.Length;)
        {
            AddedToken? hit = null;
            if (index.TryGetValue(text[i], out var candidates))
            {
                foreach (var c in candidates)
                {
                    if (i + c.Content.Length > text.Length || string.CompareOrdinal(text, i, c.Content, 0, c.Content.Length) != 0) continue;
                    if (c.SingleWord)
                    {
                        int end = i + c.Content.Length;
                        bool startOk = i == 0 || !IsWordChar(text, i - 1, before: true);
                        bool stopOk = end == text.Length || !IsWordChar(text, end, before: false);
                        if (!startOk || !stopOk) continue;
                    }

                    hit = c;
                    break;
                }
            }

            if (hit is null) { i++; continue; }
            int start = i, stop = i + hit.Content.Length;
            if (hit.LStrip)
            {
                int s = start;
                while (s > consumed && char.IsWhiteSpace(text[s - 1])) s--;
                start = s;
            }

            if (hit.RStrip)
            {
                while (stop < text.Length && char.IsWhiteSpace(text[stop])) stop++;
            }

            if (start > segmentStart) yield return (text[segmentStart..start], -1, segmentStart == 0);
            yield return (text[start..stop], hit.Id, start == 0);
            segmentStart = consumed = i = stop;
        }

        if (segmentStart < text.Length) yield return (text[segmentStart..], -1, segmentStart == 0);
    }

    private static bool IsWordChar(string text, int index, bool before)
    {
        int cp;
        if (before && char.IsLowSurrogate(text[index]) && index > 0 && char.IsHighSurrogate(text[index - 1])) cp = char.ConvertToUtf32(text[index - 1], text[index]);
        else if (!before && char.IsHighSurrogate(text[index]) && index + 1 < text.Length && char.IsLowSurrogate(text[index + 1])) cp = char.ConvertToUtf32(text[index], text[index + 1]);
        else cp = text[index];
        if (cp == '_') return true;
        var cat = System.Globalization.CharUnicodeInfo.GetUnicodeCategory(cp);
        return cat is System.Globalization.UnicodeCategory.UppercaseLetter or System.Globalization.UnicodeCategory.LowercaseLetter
            or System.Globalization.UnicodeCategory.TitlecaseLetter or System.Globalization.UnicodeCategory.ModifierLetter
            or System.Globalization.UnicodeCategory.OtherLetter or System.Globalization.UnicodeCategory.DecimalDigitNumber
            or System.Globalization.UnicodeCategory.LetterNumber or System.Globalization.UnicodeCategory.OtherNumber;
    }

    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = true)
    {
        var tokens = new List<string>(ids.Length);
        foreach (var id in ids)
        {
            if (_addedById.TryGetValue(id, out var a))
            {
                if (skipSpecialTokens && a.Special) continue;
                tokens.Add(a.Content);
                continue;
            }

            var t = Model.IdToToken(id);
            if (t is null) throw new ArgumentOutOfRangeException(nameof(ids), $"token id {id} is outside the vocabulary (size {VocabSize}).");
            tokens.Add(t);
        }

        var text = Decoder is null ? string.Join(" ", tokens) : Decoder.Decode(tokens);
        return CleanUpTokenizationSpaces ? CleanUp(text) : text;
    }

    /// <summary>transformers' clean_up_tokenization.</summary>
    public static string CleanUp(string s) => s.Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",")
        .Replace(" ' ", "'").Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" 's", "'s").Replace(" 've", "'ve").Replace(" 're", "'re");
}
