using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using GpuOps.Core.Models;

namespace GpuOps.Core.Formats;

/// <summary>A tensor to be written: name, dtype and row-major shape.</summary>
public sealed record TensorDeclaration(string Name, TensorDType DType, long[] Shape)
{
    public long ByteLength
    {
        get
        {
            long n = DTypes.ElementSize(DType);
            if (n == 0) throw new ArgumentException($"{DType} cannot be stored in safetensors.");
            foreach (var d in Shape)
            {
                if (d < 0) throw new ArgumentException($"tensor '{Name}': negative dimension {d}.");
                n = checked(n * d);
            }

            return n;
        }
    }
}

/// <summary>
/// Streaming safetensors writer: the tensors are declared up front (so the header with every data_offsets range
/// is written first), then their bytes are appended in declaration order, in as many pieces as the caller likes,
/// so no tensor has to be in memory whole. The file is written under a temporary name and renamed by
/// <see cref="Complete"/>; disposing without completing deletes it.
/// </summary>
public sealed class SafeTensorsWriter : IDisposable
{
    private readonly FileStream _stream;
    private readonly string _path;
    private readonly string _tempPath;
    private readonly TensorDeclaration[] _tensors;
    private readonly long[] _lengths;
    private int _current;
    private long _writtenInCurrent;
    private bool _completed;

    public SafeTensorsWriter(string path, IEnumerable<TensorDeclaration> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        _path = Path.GetFullPath(path);
        _tensors = tensors.ToArray();
        _lengths = _tensors.Select(t => t.ByteLength).ToArray();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in _tensors)
        {
            if (t.Name == "__metadata__" || !names.Add(t.Name)) throw new ArgumentException($"tensor name '{t.Name}' is reserved or used twice.", nameof(tensors));
        }

        var header = BuildHeader(_tensors, _lengths, metadata);
        _tempPath = _path + ".partial";
        Directory.CreateDirectory(Path.GetDirectoryName(_path)!);
        _stream = new FileStream(_tempPath, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
        _stream.Write(len);
        _stream.Write(header);
        SkipEmpty();
    }

    public string OutputPath => _path;

    /// <summary>Total file size once complete.</summary>
    public long TotalBytes => _lengths.Sum();

    /// <summary>The tensor the next <see cref="Write"/> appends to (null when all are written).</summary>
    public string? CurrentTensor => _current < _tensors.Length ? _tensors[_current].Name : null;

    private static byte[] BuildHeader(TensorDeclaration[] tensors, long[] lengths, IReadOnlyDictionary<string, string>? metadata)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }

            long offset = 0;
            for (int i = 0; i < tensors.Length; i++)
            {
                var t = tensors[i];
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", DTypes.SafeTensorsName(t.DType));
                w.WriteStartArray("shape");
                foreach (var d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + lengths[i]);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += lengths[i];
            }

            w.WriteEndObject();
        }

        // Pad with spaces to a multiple of 8 so the data buffer is aligned (as the safetensors library does).
        int pad = (int)((8 - ms.Length % 8) % 8);
        for (int i = 0; i < pad; i++) ms.WriteByte((byte)' ');
        return ms.ToArray();
    }

    /// <summary>Append bytes of the current tensor (moves on to the next tensor when one is full).</summary>
    public void Write(ReadOnlySpan<byte> data)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        while (data.Length > 0)
        {
            if (_current >= _tensors.Length) throw new InvalidOperationException($"{data.Length} bytes more than the declared tensors hold.");
            long room = _lengths[_current] - _writtenInCurrent;
            int n = (int)Math.Min(room, data.Length);
            _stream.Write(data[..n]);
            _writtenInCurrent += n;
            data = data[n..];
            if (_writtenInCurrent == _lengths[_current])
            {
                _current++;
                _writtenInCurrent = 0;
                SkipEmpty();
            }
        }
    }

    /// <summary>Append float32 values converted to the current tensor's dtype (F32, F16 or BF16).</summary>
    public void WriteFloat32(ReadOnlySpan<float> values)
    {
        if (_current >= _tensors.Length) throw new InvalidOperationException("all declared tensors are already written.");
        var dtype = _tensors[_current].DType;
        const int chunk = 1 << 16;
        var buffer = new byte[chunk * 4];
        for (int i = 0; i < values.Length; i += chunk)
        {
            var part = values.Slice(i, Math.Min(chunk, values.Length - i));
            int bytes;
            switch (dtype)
            {
                case TensorDType.F32:
                    for (int j = 0; j < part.Length; j++) BinaryPrimitives.WriteSingleLittleEndian(buffer.AsSpan(j * 4), part[j]);
                    bytes = part.Length * 4;
                    break;
                case TensorDType.F16:
                    for (int j = 0; j < part.Length; j++) BinaryPrimitives.WriteHalfLittleEndian(buffer.AsSpan(j * 2), (Half)part[j]);
                    bytes = part.Length * 2;
                    break;
                case TensorDType.BF16:
                    for (int j = 0; j < part.Length; j++) BinaryPrimitives.WriteUInt16LittleEndian(buffer.AsSpan(j * 2), DTypes.SingleToBF16(part[j]));
                    bytes = part.Length * 2;
                    break;
                default:
                    throw new InvalidOperationException($"tensor '{_tensors[_current].Name}' is {dtype}; write its bytes with Write.");
            }

            Write(buffer.AsSpan(0, bytes));
        }
    }

    private void SkipEmpty()
    {
        while (_current < _tensors.Length && _lengths[_current] == 0) _current++;
    }

    /// <summary>Check every declared byte was written, flush, and move the file into place.</summary>
    public void Complete()
    {
        if (_completed) return;
        if (_current < _tensors.Length)
            throw new InvalidOperationException($"tensor '{_tensors[_current].Name}' has {_writtenInCurrent} of its {_lengths[_current]} bytes; {_tensors.Length - _current} tensor(s) unfinished.");
        _stream.Flush(flushToDisk: false);
        _stream.Dispose();
        File.Move(_tempPath, _path, overwrite: true);
        _completed = true;
    }

    public void Dispose()
    {
        if (_completed) return;
        _stream.Dispose();
        try { File.Delete(_tempPath); } catch (IOException) { }
        _completed = true;
    }

    /// <summary>Write whole tensors held in memory.</summary>
    public static void WriteFile(string path, IEnumerable<(TensorDeclaration Tensor, byte[] Data)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.ToList();
        using var w = new SafeTensorsWriter(path, list.Select(t => t.Tensor), metadata);
        foreach (var (t, data) in list)
        {
            if (data.Length != t.ByteLength) throw new ArgumentException($"tensor '{t.Name}' needs {t.ByteLength} bytes; got {data.Length}.");
            w.Write(data);
        }

        w.Complete();
    }
}
