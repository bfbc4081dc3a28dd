using System.Text;
using System.Text.Json;
using GpuOps.Core.Models;

namespace GpuOps.Core.Formats;

/// <summary>One tensor entry of a safetensors file: metadata plus its byte range in the file.</summary>
public sealed record SafeTensorsEntry(TensorInfo Info, long FileOffset);

/// <summary>
/// One memory-mapped .safetensors file, strictly validated on open: 8-byte header length within the file and
/// at most 100 MB, a well-formed UTF-8 JSON object, known dtypes, non-negative shapes whose byte size
/// (overflow-checked) equals each data_offsets range, ranges inside the file, no overlaps and no holes
/// (as the safetensors library itself requires). Errors name the file and the tensor.
/// </summary>
public sealed class SafeTensorsFile : IDisposable
{
    /// <summary>Largest header accepted (the safetensors library's own limit).</summary>
    public const long MaxHeaderSize = 100_000_000;

    private static readonly UTF8Encoding StrictUtf8 = new(false, true);
    private readonly IByteSource _file;
    private readonly string _path;
    private readonly Dictionary<string, SafeTensorsEntry> _entries;

    private SafeTensorsFile(IByteSource file, string path, Dictionary<string, SafeTensorsEntry> entries, IReadOnlyList<string> order,
        IReadOnlyDictionary<string, string> metadata, long dataStart)
    {
        _file = file;
        _path = path;
        _entries = entries;
        Names = order;
        Metadata = metadata;
        DataStart = dataStart;
    }

    public string Path => _path;

    public long FileLength => _file.Length;

    /// <summary>Byte offset of the data buffer (8 + header length).</summary>
    public long DataStart { get; }

    /// <summary>Tensor names in header order.</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>The optional "__metadata__" string map.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>The mapped file (null for an in-memory file).</summary>
    public MappedFile? Mapping => _file as MappedFile;

    /// <summary>The bytes (mapped file or memory).</summary>
    public IByteSource Source => _file;

    public bool Contains(string name) => _entries.ContainsKey(name);

    public SafeTensorsEntry GetEntry(string name) =>
        _entries.TryGetValue(name, out var e) ? e : throw new KeyNotFoundException($"{System.IO.Path.GetFileName(Path)}: no tensor named '{name}'.");

    public ReadOnlySpan<byte> GetRaw(string name)
    {
        var e = GetEntry(name);
        return _file.Span(e.FileOffset, e.Info.ByteLength);
    }

    public static SafeTensorsFile Open(string path)
    {
        var file = new MappedFile(path);
        try
        {
            var (entries, order, metadata, dataStart) = Parse(path, file);
            return new SafeTensorsFile(file, file.Path, entries, order, metadata, dataStart);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Parse a safetensors file held in memory (same validation as <see cref="Open"/>).</summary>
    public static SafeTensorsFile FromMemory(byte[] data, int length, string name = "memory.safetensors")
    {
        var src = new MemorySource(data, length);
        var (entries, order, metadata, dataStart) = Parse(name, src);
        return new SafeTensorsFile(src, name, entries, order, metadata, dataStart);
    }

    /// <summary>Read only the header (no mapping): used by model info.</summary>
    public static IReadOnlyList<TensorInfo> ReadHeader(string path, out IReadOnlyDictionary<string, string> metadata)
    {
        using var file = new MappedFile(path);
        var (entries, order, md, _) = Parse(path, file);
        metadata = md;
        return order.Select(n => entries[n].Info).ToList();
    }

    private static (Dictionary<string, SafeTensorsEntry>, List<string>, Dictionary<string, string>, long) Parse(
        string path, IByteSource file)
    {
        if (file.Length < 8) throw new ModelFormatException(path, $"file is {file.Length} bytes, too short for a safetensors header (truncated?).");
        ulong n = BitConverter.ToUInt64(file.Span(0, 8));
        if (n > MaxHeaderSize) throw new ModelFormatException(path, $"header length {n} exceeds the {MaxHeaderSize}-byte limit (not a safetensors file, or corrupt).");
        if ((long)n > file.Length - 8) throw new ModelFormatException(path, $"header length {n} runs past the end of the {file.Length}-byte file (truncated?).");
        if (n < 2) throw new ModelFormatException(path, $"header length {n} is too short for a JSON object.");
        long dataStart = 8 + (long)n;
        long dataLength = file.Length - dataStart;
        var headerBytes = file.Span(8, (long)n);
        if (headerBytes[0] != (byte)'{') throw new ModelFormatException(path, "header does not start with '{'.");

        JsonDocument doc;
        try
        {
            StrictUtf8.GetCharCount(headerBytes);
        }
        catch (DecoderFallbackException ex)
        {
            throw new ModelFormatException(path, $"header is not valid UTF-8 JSON (invalid UTF-8 at byte {8 + ex.Index}).", ex);
        }

        try
        {
            doc = JsonDocument.Parse(headerBytes.ToArray(), new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException ex)
        {
            throw new ModelFormatException(path, $"header is not valid UTF-8 JSON ({ex.Message}).", ex);
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new ModelFormatException(path, "header is not a JSON object.");
            var entries = new Dictionary<string, SafeTensorsEntry>(StringComparer.Ordinal);
            var order = new List<string>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var ranges = new List<(long Begin, long End, string Name)>();
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                string name = prop.Name;
                if (name == "__metadata__")
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object) throw new ModelFormatException(path, "__metadata__ is not an object.");
                    foreach (var m in prop.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String) throw new ModelFormatException(path, $"__metadata__ value '{m.Name}' is not a string.");
                        metadata[m.Name] = m.Value.GetString()!;
                    }

                    continue;
                }

                if (entries.ContainsKey(name)) throw new ModelFormatException(path, $"tensor '{name}' appears twice in the header.");
                var v = prop.Value;
                if (v.ValueKind != JsonValueKind.Object) throw new ModelFormatException(path, $"tensor '{name}': entry is not an object.");
                if (!v.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String)
                    throw new ModelFormatException(path, $"tensor '{name}': missing dtype.");
                var dtName = dt.GetString()!;
                if (!DTypes.TryParseSafeTensors(dtName, out var dtype))
                    throw new ModelFormatException(path, $"tensor '{name}': unknown dtype '{Truncate(dtName)}'.", unsupported: false);
                if (!v.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array)
                    throw new ModelFormatException(path, $"tensor '{name}': missing shape.");
                var shape = new long[sh.GetArrayLength()];
                if (shape.Length > 8) throw new ModelFormatException(path, $"tensor '{name}': {shape.Length} dimensions (at most 8 supported).");
                int k = 0;
                long elements = 1;
                bool overflow = false;
                foreach (var d in sh.EnumerateArray())
                {
                    if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var dim) || dim < 0)
                        throw new ModelFormatException(path, $"tensor '{name}': shape entry {d.GetRawText()} is not a non-negative integer.");
                    shape[k++] = dim;
                    if (!overflow)
                    {
                        try { elements = checked(elements * dim); }
                        catch (OverflowException) { overflow = true; }
                    }
                }

                if (!v.TryGetProperty("data_offsets", out var offs) || offs.ValueKind != JsonValueKind.Array || offs.GetArrayLength() != 2)
                    throw new ModelFormatException(path, $"tensor '{name}': data_offsets must be [begin, end].");
                if (!offs[0].TryGetInt64(out var begin) || !offs[1].TryGetInt64(out var end) || begin < 0 || end < begin)
                    throw new ModelFormatException(path, $"tensor '{name}': invalid data_offsets [{offs[0].GetRawText()}, {offs[1].GetRawText()}].");
                long bytes = 0;
                if (!overflow)
                {
                    try { bytes = checked(elements * DTypes.ElementSize(dtype)); }
                    catch (OverflowException) { overflow = true; }
                }

                if (overflow) throw new ModelFormatException(path, $"tensor '{name}': shape [{string.Join(", ", shape)}] overflows a 64-bit byte count.");
                if (end - begin != bytes)
                    throw new ModelFormatException(path, $"tensor '{name}': shape [{string.Join(", ", shape)}] × {dtName} is {bytes} bytes but data_offsets span {end - begin}.");
                if (end > dataLength)
                    throw new ModelFormatException(path, $"tensor '{name}': data_offsets [{begin}, {end}] run past the {dataLength}-byte data buffer (truncated?).");
                var info = new TensorInfo(name, dtype, shape, bytes);
                entries[name] = new SafeTensorsEntry(info, dataStart + begin);
                order.Add(name);
                ranges.Add((begin, end, name));
            }

            ranges.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
            long expected = 0;
            foreach (var r in ranges)
            {
                if (r.Begin < expected)
                    throw new ModelFormatException(path, $"tensor '{r.Name}': data_offsets [{r.Begin}, {r.End}] overlap the previous tensor.");
                if (r.Begin > expected)
                    throw new ModelFormatException(path, $"tensor '{r.Name}': a gap of {r.Begin - expected} bytes precedes it in the data buffer.");
                expected = r.End;
            }

            if (expected != dataLength)
                throw new ModelFormatException(path, $"the data buffer is {dataLength} bytes but the tensors cover {expected}.");
            return (entries, order, metadata, dataStart);
        }
    }

    private static string Truncate(string s) => s.Length <= 40 ? s : s[..40] + "…";

    public void Dispose() => (_file as IDisposable)?.Dispose();
}

/// <summary>
/// An <see cref="IWeightSource"/> over one safetensors file or a sharded checkpoint (model.safetensors.index.json).
/// Names are the file's own (Hugging Face names); q/k weights are in <see cref="RopeLayout.RotateHalf"/>.
/// </summary>
public sealed class SafeTensorsWeightSource : IMappedWeightSource
{
    private readonly List<SafeTensorsFile> _files;
    private readonly Dictionary<string, SafeTensorsFile> _byName = new(StringComparer.Ordinal);
    private readonly List<string> _names = new();

    private SafeTensorsWeightSource(List<SafeTensorsFile> files)
    {
        _files = files;
        foreach (var f in files)
        {
            foreach (var n in f.Names)
            {
                if (!_byName.TryAdd(n, f))
                    throw new ModelFormatException(f.Path, $"tensor '{n}' is also stored in {System.IO.Path.GetFileName(_byName[n].Path)}.");
                _names.Add(n);
            }
        }
    }

    public IReadOnlyList<SafeTensorsFile> Files => _files;

    /// <summary>A weight source over files already opened (e.g. <see cref="SafeTensorsFile.FromMemory"/>); it owns them.</summary>
    public static SafeTensorsWeightSource FromFiles(params SafeTensorsFile[] files) => new(files.ToList());

    public IReadOnlyCollection<string> Names => _names;

    public RopeLayout RopeLayout => RopeLayout.RotateHalf;

    public long TotalBytes => _files.Sum(f => f.FileLength);

    /// <summary>Open a .safetensors file, a model.safetensors.index.json, or a directory holding either.</summary>
    public static SafeTensorsWeightSource Open(string path)
    {
        var files = ResolveFiles(path);
        var opened = new List<SafeTensorsFile>();
        try
        {
            foreach (var f in files.Files) opened.Add(SafeTensorsFile.Open(f));
            var source = new SafeTensorsWeightSource(opened);
            if (files.WeightMap is not null)
            {
                foreach (var (tensor, shard) in files.WeightMap)
                {
                    if (!source._byName.TryGetValue(tensor, out var f) || !string.Equals(System.IO.Path.GetFileName(f.Path), shard, StringComparison.Ordinal))
                        throw new ModelFormatException(files.IndexPath!, $"weight_map says tensor '{tensor}' is in {shard}, but it is not there.");
                }
            }

            return source;
        }
        catch
        {
            foreach (var f in opened) f.Dispose();
            throw;
        }
    }

    /// <summary>The shard files of a checkpoint (single file or index), validated, without opening them.</summary>
    public static (IReadOnlyList<string> Files, IReadOnlyDictionary<string, string>? WeightMap, string? IndexPath) ResolveFiles(string path)
    {
        if (Directory.Exists(path))
        {
            var index = System.IO.Path.Combine(path, "model.safetensors.index.json");
            var single = System.IO.Path.Combine(path, "model.safetensors");
            if (File.Exists(index)) path = index;
            else if (File.Exists(single)) path = single;
            else
            {
                var any = Directory.GetFiles(path, "*.safetensors").OrderBy(p => p, StringComparer.Ordinal).ToList();
                if (any.Count == 1) path = any[0];
                else throw new Hosting.GpuOpsException("ModelFileNotFound", Hosting.ErrorCategory.ObjectNotFound,
                    $"{path}: no model.safetensors or model.safetensors.index.json in this directory.", path);
            }
        }

        if (!path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) return (new[] { System.IO.Path.GetFullPath(path) }, null, null);

        var dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        Dictionary<string, string> map = new(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            if (!doc.RootElement.TryGetProperty("weight_map", out var wm) || wm.ValueKind != JsonValueKind.Object)
                throw new ModelFormatException(path, "no \"weight_map\" object.");
            foreach (var p in wm.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.String) throw new ModelFormatException(path, $"weight_map entry '{p.Name}' is not a file name.");
                var shard = p.Value.GetString()!;
                if (shard.Length == 0 || shard != System.IO.Path.GetFileName(shard) || shard is "." or "..")
                    throw new ModelFormatException(path, $"weight_map entry '{p.Name}' names '{shard}', which is not a plain file name in the checkpoint's directory.");
                map[p.Name] = shard;
            }
        }
        catch (JsonException ex)
        {
            throw new ModelFormatException(path, $"not valid JSON ({ex.Message}).", ex);
        }
        catch (FileNotFoundException ex)
        {
            throw new Hosting.GpuOpsException("ModelFileNotFound", Hosting.ErrorCategory.ObjectNotFound, $"{path}: file not found.", path, ex);
        }

        var shards = map.Values.Distinct(StringComparer.Ordinal).OrderBy(s => s, StringComparer.Ordinal)
            .Select(s => System.IO.Path.Combine(dir, s)).ToList();
        foreach (var s in shards)
        {
            if (!File.Exists(s)) throw new Hosting.GpuOpsException("ModelFileNotFound", Hosting.ErrorCategory.ObjectNotFound,
                $"{System.IO.Path.GetFileName(path)}: shard {System.IO.Path.GetFileName(s)} is missing.", s);
        }

        return (shards, map, System.IO.Path.GetFullPath(path));
    }

    public bool Contains(string name) => _byName.ContainsKey(name);

    public TensorInfo GetInfo(string name) => FileOf(name).GetEntry(name).Info;

    public ReadOnlySpan<byte> GetRaw(string name) => FileOf(name).GetRaw(name);

    public WeightLocation GetLocation(string name)
    {
        var f = FileOf(name);
        var e = f.GetEntry(name);
        return new WeightLocation(f.Mapping ?? throw new InvalidOperationException("in-memory file"), e.FileOffset, e.Info.ByteLength);
    }

    public void ReadFloat32(string name, Span<float> destination)
    {
        var f = FileOf(name);
        var e = f.GetEntry(name);
        if (destination.Length != e.Info.ElementCount)
            throw new ArgumentException($"tensor '{name}' has {e.Info.ElementCount} elements; the destination holds {destination.Length}.", nameof(destination));
        int size = DTypes.ElementSize(e.Info.DType);
        // Convert in chunks so tensors over 2 GB work too.
        long chunk = (1L << 30) / size;
        for (long start = 0; start < destination.Length; start += chunk)
        {
            int count = (int)Math.Min(chunk, destination.Length - start);
            DTypes.ToFloat32(e.Info.DType, f.Source.Span(e.FileOffset + start * size, (long)count * size), destination.Slice((int)start, count));
        }
    }

    /// <summary>Convert rows [rowStart, rowStart+rowCount) of a 2-D tensor to float32 without touching the other rows.</summary>
    public void ReadFloat32Rows(string name, long rowStart, int rowCount, Span<float> destination)
    {
        var f = FileOf(name);
        var e = f.GetEntry(name);
        if (e.Info.Shape.Length != 2) throw new ArgumentException($"tensor '{name}' is not 2-D.", nameof(name));
        long rows = e.Info.Shape[0], cols = e.Info.Shape[1];
        if (rowStart < 0 || rowCount < 0 || rowStart + rowCount > rows) throw new ArgumentOutOfRangeException(nameof(rowStart), $"rows [{rowStart}, {rowStart + rowCount}) outside the {rows} rows of '{name}'.");
        if (destination.Length != rowCount * cols) throw new ArgumentException($"{rowCount} rows of {cols} need {rowCount * cols} floats; the destination holds {destination.Length}.", nameof(destination));
        int size = DTypes.ElementSize(e.Info.DType);
        DTypes.ToFloat32(e.Info.DType, f.Source.Span(e.FileOffset + rowStart * cols * size, rowCount * cols * size), destination);
    }

    private SafeTensorsFile FileOf(string name) =>
        _byName.TryGetValue(name, out var f) ? f : throw new KeyNotFoundException($"no tensor named '{name}' in the checkpoint.");

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
    }
}
