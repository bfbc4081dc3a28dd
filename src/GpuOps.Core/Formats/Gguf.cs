using System.Buffers.Binary;
using System.Text;
using GpuOps.Core.Models;

namespace GpuOps.Core.Formats;

/// <summary>GGUF metadata value types.</summary>
public enum GgufValueType : uint
{
    UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7, String = 8, Array = 9,
    UInt64 = 10, Int64 = 11, Float64 = 12,
}

/// <summary>One tensor of a GGUF file: dims as stored (ne[0] innermost) and its absolute byte range.</summary>
public sealed record GgufTensor(string Name, uint GgmlType, TensorDType DType, long[] Dims, long FileOffset, long ByteLength)
{
    /// <summary>Row-major shape (the reverse of GGUF's ne order), as Hugging Face would write it.</summary>
    public long[] Shape => Enumerable.Reverse(Dims).ToArray();

    public long ElementCount => Dims.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// A memory-mapped GGUF v2/v3 file: header, typed metadata, tensor infos and alignment, read with strict
/// bounds checks (every length is checked against the bytes left before anything is allocated).
/// </summary>
public sealed class GgufFile : IDisposable
{
    public const int MaxArrayNesting = 4;
    public const int MaxNameLength = 1024;
    public const int MaxDims = 4;
    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    private readonly IByteSource _file;
    private readonly string _path;
    private readonly Dictionary<string, object> _metadata;
    private readonly Dictionary<string, GgufTensor> _tensors;

    private GgufFile(IByteSource file, string path, uint version, Dictionary<string, object> metadata, List<GgufTensor> tensors, long alignment, long dataStart)
    {
        _file = file;
        _path = path;
        Version = version;
        _metadata = metadata;
        Tensors = tensors;
        _tensors = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        Alignment = alignment;
        DataStart = dataStart;
    }

    public string Path => _path;
    public long FileLength => _file.Length;
    public uint Version { get; }
    public long Alignment { get; }
    public long DataStart { get; }
    /// <summary>The mapped file (null for an in-memory file).</summary>
    public MappedFile? Mapping => _file as MappedFile;

    /// <summary>The bytes (mapped file or memory).</summary>
    public IByteSource Source => _file;

    /// <summary>Metadata values: byte, sbyte, ushort, short, uint, int, float, bool, string, ulong, long, double, or a typed array (string[], int[], ...).</summary>
    public IReadOnlyDictionary<string, object> Metadata => _metadata;

    public IReadOnlyList<GgufTensor> Tensors { get; }

    public bool TryGetTensor(string name, out GgufTensor tensor) => _tensors.TryGetValue(name, out tensor!);

    public GgufTensor GetTensor(string name) =>
        _tensors.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"{System.IO.Path.GetFileName(Path)}: no tensor named '{name}'.");

    public ReadOnlySpan<byte> GetRaw(GgufTensor t) => _file.Span(t.FileOffset, t.ByteLength);

    public string? GetString(string key) => _metadata.TryGetValue(key, out var v) ? v as string : null;

    /// <summary>An integer metadata value of any integer type (null if absent, not an integer, or out of range).</summary>
    public long? GetInteger(string key) => _metadata.TryGetValue(key, out var v) ? v switch
    {
        byte b => b, sbyte sb => sb, ushort us => us, short s => s, uint ui => ui, int i => i,
        ulong ul when ul <= long.MaxValue => (long)ul, long l => l, _ => null,
    } : null;

    public double? GetFloat(string key) => _metadata.TryGetValue(key, out var v) ? v switch
    {
        float f => f, double d => d, _ => GetInteger(key),
    } : null;

    public bool? GetBool(string key) => _metadata.TryGetValue(key, out var v) && v is bool b ? b : null;

    public T[]? GetArray<T>(string key) => _metadata.TryGetValue(key, out var v) ? v as T[] : null;

    /// <summary>An integer array stored as int32, uint32 or any other integer type (null if absent or not integers).</summary>
    public int[]? GetIntArray(string key)
    {
        if (!_metadata.TryGetValue(key, out var v)) return null;
        switch (v)
        {
            case int[] i: return i;
            case uint[] u when u.All(x => x <= int.MaxValue): return u.Select(x => (int)x).ToArray();
            case object[] o when o.All(x => x is byte or sbyte or short or ushort or long or ulong):
                try { return o.Select(x => checked((int)Convert.ToInt64(x, System.Globalization.CultureInfo.InvariantCulture))).ToArray(); }
                catch (OverflowException) { return null; }
            default: return null;
        }
    }

    public static GgufFile Open(string path)
    {
        var file = new MappedFile(path);
        try
        {
            return new Reader(file, file.Path).Parse();
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Parse a GGUF file held in memory (same validation as <see cref="Open"/>).</summary>
    public static GgufFile FromMemory(byte[] data, int length, string name = "memory.gguf") => new Reader(new MemorySource(data, length), name).Parse();

    public void Dispose() => (_file as IDisposable)?.Dispose();

    private ref struct Cursor
    {
        public ReadOnlySpan<byte> Data;
        public long Pos;
        public string Path;

        public readonly long Left => Data.Length - Pos;

        private ReadOnlySpan<byte> Take(long n, string what)
        {
            if (n < 0 || n > Left) throw new ModelFormatException(Path, $"{what} at byte {Pos} needs {n} bytes but only {Left} remain (truncated?).");
            var s = Data.Slice((int)Pos, (int)n);
            Pos += n;
            return s;
        }

        public uint U32(string what) => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, what));
        public ulong U64(string what) => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, what));

        public string Str(string what, int maxLength = int.MaxValue)
        {
            ulong n = U64(what + " length");
            if (n > (ulong)Left) throw new ModelFormatException(Path, $"{what} at byte {Pos - 8} claims {n} bytes but only {Left} remain.");
            if (n > (ulong)maxLength) throw new ModelFormatException(Path, $"{what} at byte {Pos - 8} is {n} bytes long (at most {maxLength} allowed).");
            var bytes = Take((long)n, what);
            try
            {
                return StrictUtf8.GetString(bytes);
            }
            catch (DecoderFallbackException)
            {
                throw new ModelFormatException(Path, $"{what} at byte {Pos - (long)n} is not valid UTF-8.");
            }
        }

        public object Value(GgufValueType type, string key, int depth)
        {
            switch (type)
            {
                case GgufValueType.UInt8: return Take(1, key)[0];
                case GgufValueType.Int8: return (sbyte)Take(1, key)[0];
                case GgufValueType.UInt16: return BinaryPrimitives.ReadUInt16LittleEndian(Take(2, key));
                case GgufValueType.Int16: return BinaryPrimitives.ReadInt16LittleEndian(Take(2, key));
                case GgufValueType.UInt32: return BinaryPrimitives.ReadUInt32LittleEndian(Take(4, key));
                case GgufValueType.Int32: return BinaryPrimitives.ReadInt32LittleEndian(Take(4, key));
                case GgufValueType.Float32: return BinaryPrimitives.ReadSingleLittleEndian(Take(4, key));
                case GgufValueType.Bool:
                {
                    byte b = Take(1, key)[0];
                    if (b > 1) throw new ModelFormatException(Path, $"metadata '{key}': bool byte {b} is neither 0 nor 1.");
                    return b == 1;
                }

                case GgufValueType.String: return Str($"metadata '{key}' string");
                case GgufValueType.UInt64: return BinaryPrimitives.ReadUInt64LittleEndian(Take(8, key));
                case GgufValueType.Int64: return BinaryPrimitives.ReadInt64LittleEndian(Take(8, key));
                case GgufValueType.Float64: return BinaryPrimitives.ReadDoubleLittleEndian(Take(8, key));
                case GgufValueType.Array:
                {
                    if (depth >= MaxArrayNesting) throw new ModelFormatException(Path, $"metadata '{key}': arrays nested deeper than {MaxArrayNesting}.");
                    var et = (GgufValueType)U32($"metadata '{key}' array type");
                    ulong n = U64($"metadata '{key}' array length");
                    long min = MinSize(et, key);
                    if (n > (ulong)(Left / min))
                        throw new ModelFormatException(Path, $"metadata '{key}': array of {n} {et} values cannot fit in the {Left} bytes left.");
                    int count = (int)n;
                    switch (et)
                    {
                        case GgufValueType.String:
                        {
                            var a = new string[count];
                            for (int i = 0; i < count; i++) a[i] = Str($"metadata '{key}'[{i}]");
                            return a;
                        }

                        case GgufValueType.Int32:
                        {
                            var a = new int[count];
                            for (int i = 0; i < count; i++) a[i] = BinaryPrimitives.ReadInt32LittleEndian(Take(4, key));
                            return a;
                        }

                        case GgufValueType.UInt32:
                        {
                            var a = new uint[count];
                            for (int i = 0; i < count; i++) a[i] = BinaryPrimitives.ReadUInt32LittleEndian(Take(4, key));
                            return a;
                        }

                        case GgufValueType.Float32:
                        {
                            var a = new float[count];
                            for (int i = 0; i < count; i++) a[i] = BinaryPrimitives.ReadSingleLittleEndian(Take(4, key));
                            return a;
                        }

                        default:
                        {
                            var a = new object[count];
                            for (int i = 0; i < count; i++) a[i] = Value(et, key, depth + 1);
                            return a;
                        }
                    }
                }

                default:
                    throw new ModelFormatException(Path, $"metadata '{key}': unknown value type {(uint)type}.");
            }
        }

        private readonly long MinSize(GgufValueType t, string key) => t switch
        {
            GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
            GgufValueType.UInt16 or GgufValueType.Int16 => 2,
            GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
            GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 or GgufValueType.String => 8,
            GgufValueType.Array => 12,
            _ => throw new ModelFormatException(Path, $"metadata '{key}': unknown array element type {(uint)t}."),
        };
    }

    private sealed class Reader(IByteSource file, string path)
    {
        public unsafe GgufFile Parse()
        {
            if (file.Length < 24) throw new ModelFormatException(path, $"file is {file.Length} bytes, too short for a GGUF header (truncated?).");
            // The header and tensor infos are parsed from a bounded view (at most 2 GB: far beyond any real header).
            var view = file.Span(0, Math.Min(file.Length, int.MaxValue));
            var c = new Cursor { Data = view, Pos = 0, Path = path };
            uint magic = c.U32("magic");
            if (magic != 0x46554747) throw new ModelFormatException(path, "not a GGUF file (bad magic).");
            uint version = c.U32("version");
            if (version is not (2 or 3)) throw new ModelFormatException(path, $"GGUF version {version} is not supported (2 and 3 are).", unsupported: version > 3);
            ulong nTensors = c.U64("tensor count");
            ulong nKv = c.U64("metadata count");
            // Each metadata entry takes at least 8 (key length) + 4 (type) + 1 bytes; each tensor info at least 8 + 4 + 4 + 8.
            if (nKv > (ulong)(c.Left / 13)) throw new ModelFormatException(path, $"metadata count {nKv} cannot fit in the file.");
            if (nTensors > (ulong)(c.Left / 24)) throw new ModelFormatException(path, $"tensor count {nTensors} cannot fit in the file.");

            var metadata = new Dictionary<string, object>(StringComparer.Ordinal);
            for (ulong i = 0; i < nKv; i++)
            {
                string key = c.Str($"metadata key {i}", 65535);
                var type = (GgufValueType)c.U32($"metadata '{key}' type");
                var value = c.Value(type, key, 0);
                if (!metadata.TryAdd(key, value)) throw new ModelFormatException(path, $"metadata key '{key}' appears twice.");
            }

            long alignment = 32;
            if (metadata.TryGetValue("general.alignment", out var al))
            {
                if (al is not uint a || a == 0 || (a & (a - 1)) != 0 || a > (1 << 20))
                    throw new ModelFormatException(path, $"general.alignment {al} is not a power of two (as uint32).");
                alignment = a;
            }

            var infos = new List<(string Name, uint Type, TensorDType DType, long[] Dims, ulong Offset, long Bytes)>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (ulong i = 0; i < nTensors; i++)
            {
                string name = c.Str($"tensor {i} name", MaxNameLength);
                if (!seen.Add(name)) throw new ModelFormatException(path, $"tensor '{name}' appears twice.");
                uint nDims = c.U32($"tensor '{name}' dimension count");
                if (nDims == 0 || nDims > MaxDims) throw new ModelFormatException(path, $"tensor '{name}': {nDims} dimensions (1 to {MaxDims} allowed).");
                var dims = new long[nDims];
                long elements = 1;
                for (int d = 0; d < nDims; d++)
                {
                    ulong v = c.U64($"tensor '{name}' dimension");
                    if (v > long.MaxValue) throw new ModelFormatException(path, $"tensor '{name}': dimension {v} is out of range.");
                    dims[d] = (long)v;
                    try { elements = checked(elements * dims[d]); }
                    catch (OverflowException) { throw new ModelFormatException(path, $"tensor '{name}': dimensions [{string.Join(", ", dims.Take(d + 1))}] overflow a 64-bit element count."); }
                }

                uint type = c.U32($"tensor '{name}' type");
                if (!GgmlQuants.TryMap(type, out var dtype))
                    throw new ModelFormatException(path, $"tensor '{name}': ggml type {GgmlQuants.GgmlName(type)} is not supported (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K, MXFP4 are).", unsupported: type < 64);
                ulong offset = c.U64($"tensor '{name}' offset");
                var (qk, blockBytes) = GgmlQuants.BlockSize(dtype);
                if (dims[0] % qk != 0) throw new ModelFormatException(path, $"tensor '{name}': row length {dims[0]} is not a multiple of the {qk}-element {dtype} block.");
                long bytes;
                try { bytes = checked(elements / qk * blockBytes); }
                catch (OverflowException) { throw new ModelFormatException(path, $"tensor '{name}': byte size overflows."); }
                if (offset % (ulong)alignment != 0) throw new ModelFormatException(path, $"tensor '{name}': offset {offset} is not a multiple of the alignment {alignment}.");
                infos.Add((name, type, dtype, dims, offset, bytes));
            }

            long dataStart = (c.Pos + alignment - 1) / alignment * alignment;
            if (dataStart > file.Length && infos.Count > 0) throw new ModelFormatException(path, "the tensor data section is missing (truncated?).");
            long dataLength = Math.Max(0, file.Length - dataStart);
            var tensors = new List<GgufTensor>(infos.Count);
            foreach (var t in infos)
            {
                if (t.Offset > (ulong)dataLength || t.Bytes > dataLength - (long)t.Offset)
                    throw new ModelFormatException(path, $"tensor '{t.Name}': data [{t.Offset}, {t.Offset}+{t.Bytes}) runs past the {dataLength}-byte data section (truncated?).");
                tensors.Add(new GgufTensor(t.Name, t.Type, t.DType, t.Dims, dataStart + (long)t.Offset, t.Bytes));
            }

            var sorted = tensors.OrderBy(t => t.FileOffset).ToList();
            for (int i = 1; i < sorted.Count; i++)
            {
                var prev = sorted[i - 1];
                if (sorted[i].FileOffset < prev.FileOffset + prev.ByteLength && sorted[i].ByteLength > 0 && prev.ByteLength > 0)
                    throw new ModelFormatException(path, $"tensor '{sorted[i].Name}' overlaps tensor '{prev.Name}'.");
            }

            return new GgufFile(file, path, version, metadata, tensors, alignment, dataStart);
        }
    }
}
