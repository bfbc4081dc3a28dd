using System.Runtime.InteropServices;
using GpuOps.Core.Hosting;

namespace GpuOps.Core.Compute;

/// <summary>Where a tensor's memory lives: "cpu" or "cuda", with the device ordinal.</summary>
public readonly record struct ComputeDevice(string Kind, int Index)
{
    public static readonly ComputeDevice Cpu = new("cpu", 0);

    public static ComputeDevice Cuda(int index) => new("cuda", index);

    public bool IsCuda => Kind == "cuda";

    public override string ToString() => IsCuda ? $"cuda:{Index}" : "cpu";
}

/// <summary>
/// A typed n-dimensional array owned by a backend (host memory for the CPU backend, device memory for CUDA).
/// Explicit lifetime: <see cref="Dispose"/> frees it; the backend's <see cref="TensorPool"/> tracks every owning
/// tensor and frees whatever is left when the backend is disposed. Views (<see cref="View"/>,
/// <see cref="Transpose"/>, <see cref="Narrow"/>) share the parent's memory and become unusable once it is freed.
/// Strides are in elements.
/// </summary>
public sealed class Tensor : IDisposable
{
    private readonly Tensor? _parent;
    private IntPtr _pointer;
    private int _disposed;

    /// <summary>For backends: a tensor over memory they allocated (parent null) or a view of <paramref name="parent"/>.</summary>
    public Tensor(IComputeBackend backend, DType dtype, int[] shape, long[] strides, IntPtr pointer, long byteLength,
        Tensor? parent, string? name, long id)
    {
        Backend = backend;
        DType = dtype;
        Shape = shape;
        Strides = strides;
        _pointer = pointer;
        ByteLength = byteLength;
        _parent = parent;
        Name = name;
        Id = id;
    }

    public IComputeBackend Backend { get; }

    public DType DType { get; }

    public int[] Shape { get; }

    public long[] Strides { get; }

    /// <summary>Bytes this tensor's elements span (contiguous: its size).</summary>
    public long ByteLength { get; }

    public string? Name { get; }

    /// <summary>Pool id of the owning allocation (views carry their parent's).</summary>
    public long Id { get; }

    public ComputeDevice Device => Backend.Device;

    public int Rank => Shape.Length;

    public long ElementCount => ElementCountOf(Shape);

    public bool OwnsMemory => _parent is null;

    public bool IsDisposed => _disposed != 0 || (_parent?.IsDisposed ?? false);

    /// <summary>Host or device address of element 0. Throws once the memory has been freed.</summary>
    public IntPtr Pointer
    {
        get
        {
            if (IsDisposed) throw new ObjectDisposedException(Describe(), "The tensor (or the tensor it views) was disposed.");
            return _pointer;
        }
    }

    public bool IsContiguous
    {
        get
        {
            long expect = 1;
            for (int i = Rank - 1; i >= 0; i--)
            {
                if (Shape[i] != 1 && Strides[i] != expect) return false;
                expect *= Shape[i];
            }

            return true;
        }
    }

    /// <summary>Size of dimension <paramref name="dim"/> (negative counts from the end).</summary>
    public int Dim(int dim) => Shape[dim < 0 ? Rank + dim : dim];

    public string ShapeText => "[" + string.Join(",", Shape) + "]";

    public string Describe() => $"{Name ?? "tensor"} {DTypes.Name(DType)}{ShapeText} on {Device}";

    public override string ToString() => Describe();

    public static long ElementCountOf(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (var d in shape) n *= d;
        return n;
    }

    public static long[] ContiguousStrides(ReadOnlySpan<int> shape)
    {
        var s = new long[shape.Length];
        long acc = 1;
        for (int i = shape.Length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]; }
        return s;
    }

    /// <summary>The same contiguous elements with another shape (one dimension may be -1).</summary>
    public Tensor View(params int[] shape)
    {
        if (!IsContiguous) throw GpuOpsException.InvalidArgument("TensorNotContiguous", $"{Describe()} is not contiguous: copy it before reshaping.");
        shape = (int[])shape.Clone();
        int infer = Array.IndexOf(shape, -1);
        if (infer >= 0)
        {
            long rest = 1;
            for (int i = 0; i < shape.Length; i++) if (i != infer) rest *= shape[i];
            shape[infer] = rest == 0 ? 0 : (int)(ElementCount / rest);
        }

        if (ElementCountOf(shape) != ElementCount)
            throw GpuOpsException.InvalidArgument("ShapeMismatch", $"Cannot view {Describe()} as [{string.Join(",", shape)}]: element counts differ.");
        return new Tensor(Backend, DType, shape, ContiguousStrides(shape), Pointer, ByteLength, _parent ?? this, Name, Id);
    }

    /// <summary>A strided view with two dimensions swapped (use the backend's Copy to make it contiguous).</summary>
    public Tensor Transpose(int dim0, int dim1)
    {
        if (DType == DType.I4) throw GpuOpsException.InvalidArgument("UnsupportedDType", "Packed int4 tensors cannot be viewed with strides.");
        dim0 = dim0 < 0 ? Rank + dim0 : dim0;
        dim1 = dim1 < 0 ? Rank + dim1 : dim1;
        var shape = (int[])Shape.Clone();
        var strides = (long[])Strides.Clone();
        (shape[dim0], shape[dim1]) = (shape[dim1], shape[dim0]);
        (strides[dim0], strides[dim1]) = (strides[dim1], strides[dim0]);
        return new Tensor(Backend, DType, shape, strides, Pointer, ByteLength, _parent ?? this, Name, Id);
    }

    /// <summary>Elements <paramref name="start"/> .. start+count-1 of dimension <paramref name="dim"/> (a view).</summary>
    public Tensor Narrow(int dim, int start, int count)
    {
        dim = dim < 0 ? Rank + dim : dim;
        if (start < 0 || count < 0 || start + count > Shape[dim])
            throw GpuOpsException.InvalidArgument("IndexOutOfRange", $"Narrow({dim}, {start}, {count}) is outside {Describe()}.");
        if (DType == DType.I4 && (Strides[dim] * start) % 2 != 0)
            throw GpuOpsException.InvalidArgument("UnsupportedDType", "A packed int4 view must start on a byte boundary.");
        var shape = (int[])Shape.Clone();
        shape[dim] = count;
        long offsetBytes = DTypes.ByteCount(DType, Strides[dim] * start);
        return new Tensor(Backend, DType, shape, (long[])Strides.Clone(), Pointer + (nint)offsetBytes,
            ByteLength - offsetBytes, _parent ?? this, Name, Id);
    }

    /// <summary>Copy host values in (contiguous tensors; <typeparamref name="T"/> must match the element size or be byte).</summary>
    public void CopyFrom<T>(ReadOnlySpan<T> source) where T : unmanaged => Backend.Upload(this, MemoryMarshal.AsBytes(source));

    public void CopyFrom<T>(T[] source) where T : unmanaged => CopyFrom((ReadOnlySpan<T>)source);

    /// <summary>Copy the elements out to host memory.</summary>
    public void CopyTo<T>(Span<T> destination) where T : unmanaged => Backend.Download(this, MemoryMarshal.AsBytes(destination));

    public byte[] ToBytes()
    {
        var r = new byte[DTypes.ByteCount(DType, ElementCount)];
        Backend.Download(this, r);
        return r;
    }

    /// <summary>Every element converted to float (any dtype).</summary>
    public float[] ToFloatArray() => DTypes.ToFloats(DType, ToBytes(), ElementCount);

    /// <summary>Store floats, rounded to this tensor's dtype as the kernels round.</summary>
    public void CopyFromFloats(ReadOnlySpan<float> values)
    {
        if (values.Length != ElementCount)
            throw GpuOpsException.InvalidArgument("ShapeMismatch", $"{values.Length} values given for {Describe()} ({ElementCount} elements).");
        Backend.Upload(this, DTypes.FromFloats(DType, values));
    }

    public int[] ToInt32Array()
    {
        if (DType != DType.I32) throw GpuOpsException.InvalidArgument("DTypeMismatch", $"{Describe()} is not i32.");
        var r = new int[ElementCount];
        CopyTo<int>(r);
        return r;
    }

    public void Dispose()
    {
        if (_parent is not null) return; // views own nothing
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        Backend.Free(this, _pointer);
        _pointer = IntPtr.Zero;
    }
}

/// <summary>One live allocation, as <see cref="TensorPool.Report"/> lists it (plain data).</summary>
public sealed record TensorAllocation(long Id, string? Name, string DType, string Shape, long Bytes, string Device, DateTime AllocatedUtc);

/// <summary>
/// Every owning tensor a backend has handed out and not yet freed: report them, count bytes, free them all.
/// </summary>
public sealed class TensorPool
{
    private readonly Dictionary<long, (Tensor Tensor, DateTime At)> _live = new();
    private long _nextId;

    public long BytesInUse { get; private set; }

    public long PeakBytes { get; private set; }

    public int Count { get { lock (_live) return _live.Count; } }

    /// <summary>For backends: the id of the next allocation.</summary>
    public long NextId() => Interlocked.Increment(ref _nextId);

    /// <summary>For backends: track a new owning tensor.</summary>
    public void Add(Tensor t)
    {
        lock (_live)
        {
            _live[t.Id] = (t, DateTime.UtcNow);
            BytesInUse += t.ByteLength;
            PeakBytes = Math.Max(PeakBytes, BytesInUse);
        }
    }

    /// <summary>For backends: forget a freed tensor.</summary>
    public void Remove(Tensor t)
    {
        lock (_live)
        {
            if (_live.Remove(t.Id)) BytesInUse -= t.ByteLength;
        }
    }

    public IReadOnlyList<TensorAllocation> Report()
    {
        lock (_live)
        {
            return _live.Values.OrderBy(v => v.Tensor.Id)
                .Select(v => new TensorAllocation(v.Tensor.Id, v.Tensor.Name, DTypes.Name(v.Tensor.DType), v.Tensor.ShapeText,
                    v.Tensor.ByteLength, v.Tensor.Device.ToString(), v.At))
                .ToList();
        }
    }

    /// <summary>Free every tensor still alive; returns how many were freed.</summary>
    public int FreeAll()
    {
        List<Tensor> all;
        lock (_live) all = _live.Values.Select(v => v.Tensor).ToList();
        foreach (var t in all) t.Dispose();
        return all.Count;
    }
}
