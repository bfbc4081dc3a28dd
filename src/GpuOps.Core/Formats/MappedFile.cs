using System.IO.MemoryMappedFiles;

namespace GpuOps.Core.Formats;

/// <summary>A read-only memory-mapped file; spans over it are zero-copy views.</summary>
public sealed unsafe class MappedFile : IByteSource, IDisposable
{
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private byte* _pointer;
    private int _disposed;

    public MappedFile(string path)
    {
        Path = System.IO.Path.GetFullPath(path);
        try
        {
            using var fs = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.Read);
            Length = fs.Length;
            if (Length > 0)
            {
                _map = MemoryMappedFile.CreateFromFile(fs, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
                _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
                _view.SafeMemoryMappedViewHandle.AcquirePointer(ref _pointer);
                _pointer += _view.PointerOffset;
            }
        }
        catch (FileNotFoundException ex)
        {
            throw new Hosting.GpuOpsException("ModelFileNotFound", Hosting.ErrorCategory.ObjectNotFound, $"{path}: file not found.", path, ex);
        }
        catch (DirectoryNotFoundException ex)
        {
            throw new Hosting.GpuOpsException("ModelFileNotFound", Hosting.ErrorCategory.ObjectNotFound, $"{path}: file not found.", path, ex);
        }
        catch (IOException ex)
        {
            Dispose();
            throw new Hosting.GpuOpsException("ModelFileOpenFailed", Hosting.ErrorCategory.OpenError, $"{path}: cannot map the file ({ex.Message}).", path, ex);
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new Hosting.GpuOpsException("ModelFileOpenFailed", Hosting.ErrorCategory.PermissionDenied, $"{path}: access denied.", path, ex);
        }
    }

    public string Path { get; }

    public long Length { get; }

    /// <summary>Base address of the mapping (null for an empty file). Valid until disposed.</summary>
    public byte* Pointer
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed != 0, this);
            return _pointer;
        }
    }

    /// <summary>A zero-copy view of [offset, offset+length). Bounds are checked.</summary>
    public ReadOnlySpan<byte> Span(long offset, long length)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (offset < 0 || length < 0 || offset > Length || length > Length - offset)
            throw new ArgumentOutOfRangeException(nameof(offset), $"range [{offset}, {offset}+{length}) outside the {Length}-byte file {Path}.");
        if (length > int.MaxValue)
            throw new NotSupportedException($"a {length}-byte view does not fit one span; read it in parts (Pointer/offset).");
        return length == 0 ? ReadOnlySpan<byte>.Empty : new ReadOnlySpan<byte>(_pointer + offset, (int)length);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        if (_view is not null)
        {
            if (_pointer != null) _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }

        _map?.Dispose();
        _pointer = null;
    }
}

/// <summary>Bytes a reader parses: a mapped file, or memory (tests, embedded files).</summary>
public interface IByteSource
{
    long Length { get; }

    /// <summary>A bounds-checked view of [offset, offset+length).</summary>
    ReadOnlySpan<byte> Span(long offset, long length);
}

/// <summary>An in-memory <see cref="IByteSource"/> over the first <paramref name="length"/> bytes of an array.</summary>
public sealed class MemorySource(byte[] data, int length) : IByteSource
{
    public MemorySource(byte[] data) : this(data, data.Length) { }

    public long Length => length;

    public ReadOnlySpan<byte> Span(long offset, long count)
    {
        if (offset < 0 || count < 0 || offset > length || count > length - offset)
            throw new ArgumentOutOfRangeException(nameof(offset), $"range [{offset}, {offset}+{count}) outside the {length}-byte buffer.");
        return data.AsSpan((int)offset, (int)count);
    }
}
