using System.Collections.Concurrent;
using System.Text;

namespace GpuOps.Core.Tokenizers;

/// <summary>
/// The BPE model of Hugging Face tokenizers: initial symbols per char (with byte fallback to &lt;0xNN&gt; tokens,
/// or the unk token, fused if asked), then merges by rank, lowest rank and leftmost position first, exactly as
/// tokenizers' Word::merge_all does.
/// </summary>
public sealed class BpeModel
{
    private readonly Dictionary<string, int> _vocab;
    private readonly string[] _idToToken;
    private readonly Dictionary<long, (int Rank, int NewId)> _merges;
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    private readonly int[] _byteTokens;

    public BpeModel(Dictionary<string, int> vocab, IReadOnlyList<(string A, string B)> merges, string? unkToken = null,
        bool byteFallback = false, bool fuseUnk = false, bool ignoreMerges = false,
        string? continuingSubwordPrefix = null, string? endOfWordSuffix = null)
    {
        _vocab = vocab;
        int size = vocab.Count == 0 ? 0 : vocab.Values.Max() + 1;
        _idToToken = new string[size];
        foreach (var (t, id) in vocab)
        {
            if (id < 0) throw new ArgumentException($"token '{t}' has negative id {id}.");
            _idToToken[id] = t;
        }

        UnkToken = unkToken;
        ByteFallback = byteFallback;
        FuseUnk = fuseUnk;
        IgnoreMerges = ignoreMerges;
        ContinuingSubwordPrefix = continuingSubwordPrefix;
        EndOfWordSuffix = endOfWordSuffix;
        _merges = new Dictionary<long, (int, int)>(merges.Count);
        int prefixLength = continuingSubwordPrefix?.Length ?? 0;
        for (int rank = 0; rank < merges.Count; rank++)
        {
            var (a, b) = merges[rank];
            if (!vocab.TryGetValue(a, out var ia) || !vocab.TryGetValue(b, out var ib))
                throw new ArgumentException($"merge {rank} ('{a}' '{b}') uses a token that is not in the vocabulary.");
            var merged = a + (prefixLength > 0 && b.StartsWith(continuingSubwordPrefix!, StringComparison.Ordinal) ? b[prefixLength..] : b);
            if (!vocab.TryGetValue(merged, out var id))
                throw new ArgumentException($"merge {rank} ('{a}' '{b}') makes '{merged}', which is not in the vocabulary.");
            _merges.TryAdd(Key(ia, ib), (rank, id));
        }

        _byteTokens = new int[256];
        for (int b = 0; b < 256; b++) _byteTokens[b] = vocab.TryGetValue($"<0x{b:X2}>", out var id) ? id : -1;
    }

    public string? UnkToken { get; }
    public bool ByteFallback { get; }
    public bool FuseUnk { get; }
    public bool IgnoreMerges { get; }
    public string? ContinuingSubwordPrefix { get; }
    public string? EndOfWordSuffix { get; }
    public int MergeCount => _merges.Count;

    public IReadOnlyDictionary<string, int> Vocab => _vocab;

    public int VocabSize => _idToToken.Length;

    public string? IdToToken(int id) => id >= 0 && id < _idToToken.Length ? _idToToken[id] : null;

    public bool TryGetId(string token, out int id) => _vocab.TryGetValue(token, out id);

    private static long Key(int a, int b) => ((long)a << 32) | (uint)b;

    public void Tokenize(string word, List<int> output)
    {
        if (word.Length == 0) return;
        if (_cache.TryGetValue(word, out var cached))
        {
            output.AddRange(cached);
            return;
        }

        var ids = TokenizeUncached(word);
        if (_cache.Count > 20000) _cache.Clear();
        _cache.TryAdd(word, ids);
        output.AddRange(ids);
    }

    private int[] TokenizeUncached(string word)
    {
        if (IgnoreMerges && _vocab.TryGetValue(word, out var whole)) return [whole];
        var symbols = new List<int>(word.Length);
        int? unkId = null;
        bool pendingUnk = false;
        int? unk = UnkToken is not null && _vocab.TryGetValue(UnkToken, out var u) ? u : null;
        for (int i = 0; i < word.Length;)
        {
            int len = char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1]) ? 2 : 1;
            bool first = i == 0, last = i + len >= word.Length;
            string s = word.Substring(i, len);
            i += len;
            if (!first && ContinuingSubwordPrefix is not null) s = ContinuingSubwordPrefix + s;
            if (last && EndOfWordSuffix is not null) s += EndOfWordSuffix;
            if (_vocab.TryGetValue(s, out var id))
            {
                if (pendingUnk) { symbols.Add(unkId!.Value); pendingUnk = false; }
                symbols.Add(id);
                continue;
            }

            if (ByteFallback)
            {
                var bytes = Encoding.UTF8.GetBytes(s);
                if (bytes.All(b => _byteTokens[b] >= 0))
                {
                    // tokenizers adds byte tokens without flushing a pending unk first.
                    foreach (var b in bytes) symbols.Add(_byteTokens[b]);
                    continue;
                }
            }

            if (unk is { } uid)
            {
                if (pendingUnk && !FuseUnk) symbols.Add(uid);
                unkId = uid;
                pendingUnk = true;
            }
        }

        if (pendingUnk) symbols.Add(unkId!.Value);
        return MergeAll(symbols);
    }

    private int[] MergeAll(List<int> ids)
    {
        int n = ids.Count;
        if (n < 2) return ids.ToArray();
        var c = ids.ToArray();
        var prev = new int[n];
        var next = new int[n];
        var alive = new bool[n];
        for (int i = 0; i < n; i++) { prev[i] = i - 1; next[i] = i + 1 < n ? i + 1 : -1; alive[i] = true; }
        var queue = new PriorityQueue<(int Pos, int NewId), (int Rank, int Pos)>();
        for (int i = 0; i + 1 < n; i++)
        {
            if (_merges.TryGetValue(Key(c[i], c[i + 1]), out var m)) queue.Enqueue((i, m.NewId), (m.Rank, i));
        }

        while (queue.TryDequeue(out var top, out _))
        {
            int pos = top.Pos;
            if (!alive[pos] || next[pos] == -1) continue;
            int right = next[pos];
            if (!_merges.TryGetValue(Key(c[pos], c[right]), out var cur) || cur.NewId != top.NewId) continue;
            c[pos] = top.NewId;
            alive[right] = false;
            next[pos] = next[right];
            if (next[pos] != -1) prev[next[pos]] = pos;
            if (prev[pos] >= 0 && _merges.TryGetValue(Key(c[prev[pos]], c[pos]), out var pm))
                queue.Enqueue((prev[pos], pm.NewId), (pm.Rank, prev[pos]));
            if (next[pos] != -1 && _merges.TryGetValue(Key(c[pos], c[next[pos]]), out var nm))
                queue.Enqueue((pos, nm.NewId), (nm.Rank, pos));
        }

        var result = new List<int>(n);
        for (int i = 0; i != -1; i = next[i]) result.Add(c[i]);
        return result.ToArray();
    }
}
