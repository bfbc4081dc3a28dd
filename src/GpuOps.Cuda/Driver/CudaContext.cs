using GpuOps.Core.Hosting;
using static GpuOps.Cuda.Driver.CudaApi;

namespace GpuOps.Cuda.Driver;

/// <summary>
/// One GPU: its primary context (retained), a non-blocking stream, device properties, checked memory
/// allocation (refused before allocating when it does not fit), events and graph capture.
/// Call <see cref="Bind"/> on any thread before raw driver calls (the public methods here bind themselves).
/// </summary>
public sealed unsafe class CudaContext : IDisposable
{
    private IntPtr _context;
    private IntPtr _stream;
    private bool _disposed;

    private CudaContext(int ordinal)
    {
        Init();
        int count = DeviceCount();
        if (ordinal < 0 || ordinal >= count)
            throw new GpuOpsException("GpuNotFound", ErrorCategory.ObjectNotFound,
                count == 0 ? "The CUDA driver sees no GPU." : $"There is no CUDA device {ordinal} (the driver sees {count}: 0..{count - 1}).", ordinal);
        Ordinal = ordinal;
        IntPtr ctx;
        Check(cuDevicePrimaryCtxRetain(&ctx, ordinal), "cuDevicePrimaryCtxRetain");
        _context = ctx;
        Bind();
        IntPtr s;
        Check(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
        _stream = s;
        Name = DeviceName(ordinal);
        Uuid = DeviceUuid(ordinal);
        Major = Attribute(ordinal, CuDeviceAttribute.ComputeCapabilityMajor);
        Minor = Attribute(ordinal, CuDeviceAttribute.ComputeCapabilityMinor);
        MultiprocessorCount = Attribute(ordinal, CuDeviceAttribute.MultiprocessorCount);
        L2CacheBytes = Attribute(ordinal, CuDeviceAttribute.L2CacheSize);
        MaxSharedMemoryPerBlockOptin = Attribute(ordinal, CuDeviceAttribute.MaxSharedMemoryPerBlockOptin);
        TotalMemoryBytes = TotalMemory(ordinal);
        DriverVersion = CudaApi.DriverVersion();
    }

    public static CudaContext Open(int ordinal = 0) => new(ordinal);

    public int Ordinal { get; }
    public string Name { get; }
    public string Uuid { get; }
    public int Major { get; }
    public int Minor { get; }
    public int MultiprocessorCount { get; }
    public int L2CacheBytes { get; }
    public int MaxSharedMemoryPerBlockOptin { get; }
    public long TotalMemoryBytes { get; }

    /// <summary>cuDriverGetVersion, e.g. 13000.</summary>
    public int DriverVersion { get; }

    public string DriverVersionText => $"{DriverVersion / 1000}.{DriverVersion % 1000 / 10}";

    public string ComputeCapability => $"{Major}.{Minor}";

    public IntPtr Stream => _stream;

    public void Bind()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Check(cuCtxSetCurrent(_context), "cuCtxSetCurrent");
    }

    public void Synchronize()
    {
        Bind();
        Check(cuStreamSynchronize(_stream), "cuStreamSynchronize");
    }

    public (long Free, long Total) MemoryInfo()
    {
        Bind();
        return CudaApi.MemoryInfo();
    }

    /// <summary>Device memory; refused with the bytes needed and free when it does not fit.</summary>
    public ulong Allocate(long bytes, string what)
    {
        Bind();
        var (free, _) = CudaApi.MemoryInfo();
        if (bytes > free) throw OutOfMemory(bytes, free, what);
        ulong p;
        int rc = cuMemAlloc(&p, (nuint)Math.Max(bytes, 1));
        if (rc == 2) throw OutOfMemory(bytes, CudaApi.MemoryInfo().Free, what);
        Check(rc, $"cuMemAlloc_v2({bytes} bytes for {what})");
        return p;
    }

    public GpuOpsException OutOfMemory(long needed, long free, string what) =>
        new("OutOfDeviceMemory", ErrorCategory.ResourceUnavailable,
            $"Allocating {what} needs {Format(needed)} but GPU {Ordinal} ({Name}) has {Format(free)} free.",
            $"cuda:{Ordinal}", null, "Free tensors (their pool's FreeAll), close other GPU programs, or use a smaller size.");

    public void Free(ulong pointer)
    {
        Bind();
        Check(cuMemFree(pointer), "cuMemFree_v2");
    }

    public CudaEvent CreateEvent(bool timing = true)
    {
        Bind();
        return new CudaEvent(timing);
    }

    /// <summary>Capture what <paramref name="body"/> launches on <see cref="Stream"/> into an instantiated graph.</summary>
    public CudaGraph Capture(Action body)
    {
        Bind();
        Check(cuStreamBeginCapture(_stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), "cuStreamBeginCapture_v2");
        IntPtr graph = IntPtr.Zero;
        try
        {
            body();
        }
        finally
        {
            int rc = cuStreamEndCapture(_stream, &graph);
            if (rc != 0 && graph == IntPtr.Zero) Check(rc, "cuStreamEndCapture");
        }

        IntPtr exec;
        try
        {
            Check(cuGraphInstantiateWithFlags(&exec, graph, 0), "cuGraphInstantiateWithFlags");
        }
        finally
        {
            cuGraphDestroy(graph);
        }

        return new CudaGraph(this, exec);
    }

    public void Dispose()
    {
        if (_disposed) return;
        Check(cuCtxSetCurrent(_context), "cuCtxSetCurrent");
        if (_stream != IntPtr.Zero) Check(cuStreamDestroy(_stream), "cuStreamDestroy_v2");
        _stream = IntPtr.Zero;
        Check(cuDevicePrimaryCtxRelease(Ordinal), "cuDevicePrimaryCtxRelease_v2");
        _context = IntPtr.Zero;
        _disposed = true;
    }

    public static string Format(long bytes) => bytes >= 1L << 30 ? $"{bytes / (double)(1L << 30):0.00} GiB" : $"{bytes / (double)(1L << 20):0.0} MiB";
}

/// <summary>A CUDA event (timing by default).</summary>
public sealed unsafe class CudaEvent : IDisposable
{
    private IntPtr _event;

    internal CudaEvent(bool timing)
    {
        IntPtr e;
        Check(cuEventCreate(&e, timing ? (uint)CU_EVENT_DEFAULT : CU_EVENT_DISABLE_TIMING), "cuEventCreate");
        _event = e;
    }

    public IntPtr Handle => _event;

    public void Record(IntPtr stream) => Check(cuEventRecord(_event, stream), "cuEventRecord");

    public void Synchronize() => Check(cuEventSynchronize(_event), "cuEventSynchronize");

    /// <summary>Milliseconds from <paramref name="start"/> to <paramref name="end"/> (both recorded and complete).</summary>
    public static float Elapsed(CudaEvent start, CudaEvent end)
    {
        float ms;
        Check(cuEventElapsedTime(&ms, start._event, end._event), "cuEventElapsedTime");
        return ms;
    }

    public void Dispose()
    {
        if (_event == IntPtr.Zero) return;
        Check(cuEventDestroy(_event), "cuEventDestroy_v2");
        _event = IntPtr.Zero;
    }
}

/// <summary>An instantiated CUDA graph (from <see cref="CudaContext.Capture"/>).</summary>
public sealed class CudaGraph : IDisposable
{
    private readonly CudaContext _context;
    private IntPtr _exec;

    internal CudaGraph(CudaContext context, IntPtr exec)
    {
        _context = context;
        _exec = exec;
    }

    public void Launch() => Launch(_context.Stream);

    public void Launch(IntPtr stream) => Check(cuGraphLaunch(_exec, stream), "cuGraphLaunch");

    public void Dispose()
    {
        if (_exec == IntPtr.Zero) return;
        _context.Bind();
        Check(cuGraphExecDestroy(_exec), "cuGraphExecDestroy");
        _exec = IntPtr.Zero;
    }
}

/// <summary>Page-locked host memory (cuMemAllocHost) for fast, asynchronous copies.</summary>
public sealed unsafe class PinnedBuffer : IDisposable
{
    private void* _p;

    public PinnedBuffer(CudaContext context, long bytes)
    {
        context.Bind();
        void* p;
        Check(cuMemAllocHost(&p, (nuint)Math.Max(1, bytes)), $"cuMemAllocHost_v2({bytes} bytes)");
        _p = p;
        Bytes = bytes;
    }

    public IntPtr Pointer => (IntPtr)_p;

    public long Bytes { get; }

    public Span<byte> AsSpan() => new(_p, (int)Math.Min(Bytes, int.MaxValue));

    public void Dispose()
    {
        if (_p == null) return;
        Check(cuMemFreeHost(_p), "cuMemFreeHost");
        _p = null;
    }
}

/// <summary>A loaded module (cubin) and its functions.</summary>
public sealed unsafe class CudaModule : IDisposable
{
    private readonly Dictionary<string, IntPtr> _functions = new();
    private IntPtr _module;

    public CudaModule(CudaContext context, byte[] image, string name)
    {
        context.Bind();
        Name = name;
        IntPtr m;
        fixed (byte* p = image) Check(cuModuleLoadData(&m, p), $"cuModuleLoadData({name})");
        _module = m;
    }

    public string Name { get; }

    public IntPtr Function(string name)
    {
        lock (_functions)
        {
            if (_functions.TryGetValue(name, out var f)) return f;
            var bytes = System.Text.Encoding.UTF8.GetBytes(name + "\0");
            fixed (byte* n = bytes) Check(cuModuleGetFunction(&f, _module, n), $"cuModuleGetFunction({Name}:{name})");
            _functions[name] = f;
            return f;
        }
    }

    /// <summary>A module-scope __device__ variable (extern "C" name): its device address and size in bytes.</summary>
    public (ulong Address, long Bytes) Global(string name)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(name + "\0");
        ulong p;
        nuint n;
        fixed (byte* b = bytes) Check(cuModuleGetGlobal(&p, &n, _module, b), $"cuModuleGetGlobal({Name}:{name})");
        return (p, (long)n);
    }

    public void Dispose()
    {
        if (_module == IntPtr.Zero) return;
        Check(cuModuleUnload(_module), $"cuModuleUnload({Name})");
        _module = IntPtr.Zero;
    }
}

/// <summary>One kernel argument: 8 bytes, passed by address to cuLaunchKernel.</summary>
public readonly struct KernelArg
{
    public readonly ulong Bits;

    private KernelArg(ulong bits) => Bits = bits;

    public static implicit operator KernelArg(ulong v) => new(v);
    public static implicit operator KernelArg(long v) => new((ulong)v);
    public static implicit operator KernelArg(int v) => new((uint)v);
    public static implicit operator KernelArg(float v) => new(BitConverter.SingleToUInt32Bits(v));
    public static implicit operator KernelArg(IntPtr v) => new((ulong)(long)v);
}

public static unsafe class Launcher
{
    /// <summary>cuLaunchKernel with the arguments (each read by the kernel from its 8-byte slot), checked.</summary>
    public static void Launch(IntPtr function, string name, IntPtr stream, (int X, int Y, int Z) grid, int block, int sharedBytes, params KernelArg[] args)
    {
        int n = args.Length;
        ulong* vals = stackalloc ulong[Math.Max(1, n)];
        void** ptrs = stackalloc void*[Math.Max(1, n)];
        for (int i = 0; i < n; i++) { vals[i] = args[i].Bits; ptrs[i] = &vals[i]; }
        if (grid.X <= 0 || grid.Y <= 0 || grid.Z <= 0) return; // nothing to do
        Check(cuLaunchKernel(function, (uint)grid.X, (uint)grid.Y, (uint)grid.Z, (uint)block, 1, 1, (uint)sharedBytes, stream, ptrs, null),
            $"cuLaunchKernel({name}, grid {grid.X}x{grid.Y}x{grid.Z}, block {block})");
    }
}
