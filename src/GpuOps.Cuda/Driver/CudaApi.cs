using System.Runtime.InteropServices;
using GpuOps.Core.Hosting;
using GpuOps.Core.Native;

namespace GpuOps.Cuda.Driver;

/// <summary>A failed CUDA driver call: the message names the operation and the CUDA error (name and text).</summary>
public sealed class CudaException : GpuOpsException
{
    public CudaException(string operation, int code, string name, string description)
        : base(code == 2 ? "CudaOutOfMemory" : "CudaError",
            code == 2 ? ErrorCategory.ResourceUnavailable : ErrorCategory.DeviceError,
            $"{operation} failed: {name} ({description}).", operation)
    {
        Operation = operation;
        Code = code;
        ErrorName = name;
    }

    public string Operation { get; }

    public int Code { get; }

    public string ErrorName { get; }
}

/// <summary>CUDA driver API bindings (libcuda). Every call goes through <see cref="Check"/>.</summary>
public static unsafe partial class CudaApi
{
    public const int CU_EVENT_DEFAULT = 0;
    public const int CU_EVENT_DISABLE_TIMING = 2;
    public const int CU_STREAM_NON_BLOCKING = 1;
    public const int CU_STREAM_CAPTURE_MODE_GLOBAL = 0;
    public const int CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1;
    public const int CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;
    public const int CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES = 3;
    public const int CU_FUNC_ATTRIBUTE_NUM_REGS = 4;

    /// <summary>Throw a <see cref="CudaException"/> naming <paramref name="operation"/> when <paramref name="rc"/> is not CUDA_SUCCESS.</summary>
    public static void Check(int rc, string operation)
    {
        if (rc == 0) return;
        throw new CudaException(operation, rc, ErrorName(rc), ErrorString(rc));
    }

    public static string ErrorName(int rc)
    {
        byte* s = null;
        return cuGetErrorName(rc, &s) == 0 && s != null ? Marshal.PtrToStringUTF8((IntPtr)s) ?? $"CUDA error {rc}" : $"CUDA error {rc}";
    }

    public static string ErrorString(int rc)
    {
        byte* s = null;
        return cuGetErrorString(rc, &s) == 0 && s != null ? Marshal.PtrToStringUTF8((IntPtr)s) ?? "unknown" : "unknown";
    }

    private static int _initialized;

    /// <summary>cuInit once (checked); a missing driver gives the one-line NativeLibraryNotFound error.</summary>
    public static void Init()
    {
        if (Volatile.Read(ref _initialized) == 1) return;
        NativeLibraries.Require(NativeLibraryKind.CudaDriver);
        Check(cuInit(0), "cuInit");
        Volatile.Write(ref _initialized, 1);
    }

    public static int DriverVersion()
    {
        Init();
        int v;
        Check(cuDriverGetVersion(&v), "cuDriverGetVersion");
        return v;
    }

    public static int DeviceCount()
    {
        Init();
        int n;
        Check(cuDeviceGetCount(&n), "cuDeviceGetCount");
        return n;
    }

    public static int Attribute(int device, CuDeviceAttribute attribute)
    {
        int v;
        Check(cuDeviceGetAttribute(&v, (int)attribute, device), $"cuDeviceGetAttribute({attribute})");
        return v;
    }

    public static string DeviceName(int device)
    {
        byte* buf = stackalloc byte[256];
        Check(cuDeviceGetName(buf, 256, device), "cuDeviceGetName");
        return Marshal.PtrToStringUTF8((IntPtr)buf) ?? "?";
    }

    /// <summary>"GPU-xxxxxxxx-xxxx-..." as NVML and nvidia-smi write it.</summary>
    public static string DeviceUuid(int device)
    {
        byte* b = stackalloc byte[16];
        Check(cuDeviceGetUuid_v2(b, device), "cuDeviceGetUuid_v2");
        var h = Convert.ToHexString(new ReadOnlySpan<byte>(b, 16)).ToLowerInvariant();
        return $"GPU-{h[..8]}-{h[8..12]}-{h[12..16]}-{h[16..20]}-{h[20..]}";
    }

    public static long TotalMemory(int device)
    {
        nuint v;
        Check(cuDeviceTotalMem_v2(&v, device), "cuDeviceTotalMem_v2");
        return (long)v;
    }

    /// <summary>(free, total) bytes on the current context's device.</summary>
    public static (long Free, long Total) MemoryInfo()
    {
        nuint f, t;
        Check(cuMemGetInfo_v2(&f, &t), "cuMemGetInfo_v2");
        return ((long)f, (long)t);
    }

    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuGetErrorName(int error, byte** name);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuGetErrorString(int error, byte** text);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuInit(uint flags);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuDriverGetVersion(int* version);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuDeviceGetCount(int* count);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuDeviceGet(int* device, int ordinal);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuDeviceGetName(byte* name, int len, int device);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuDeviceGetAttribute(int* value, int attribute, int device);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuDeviceTotalMem_v2(nuint* bytes, int device);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuDeviceGetUuid_v2(byte* uuid, int device);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuDevicePrimaryCtxRetain(IntPtr* context, int device);
    [LibraryImport(NativeLibraries.CudaName, EntryPoint = "cuDevicePrimaryCtxRelease_v2")] public static partial int cuDevicePrimaryCtxRelease(int device);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuCtxSetCurrent(IntPtr context);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuCtxGetCurrent(IntPtr* context);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuCtxSynchronize();
    [LibraryImport(NativeLibraries.CudaName, EntryPoint = "cuMemGetInfo_v2")] public static partial int cuMemGetInfo_v2(nuint* free, nuint* total);
    [LibraryImport(NativeLibraries.CudaName, EntryPoint = "cuMemAlloc_v2")] public static partial int cuMemAlloc(ulong* dptr, nuint bytes);
    [LibraryImport(NativeLibraries.CudaName, EntryPoint = "cuMemFree_v2")] public static partial int cuMemFree(ulong dptr);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuMemAllocAsync(ulong* dptr, nuint bytes, IntPtr stream);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuMemFreeAsync(ulong dptr, IntPtr stream);
    [LibraryImport(NativeLibraries.CudaName, EntryPoint = "cuMemAllocHost_v2")] public static partial int cuMemAllocHost(void** ptr, nuint bytes);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuMemFreeHost(void* ptr);
    [LibraryImport(NativeLibraries.CudaName, EntryPoint = "cuMemcpyHtoD_v2")] public static partial int cuMemcpyHtoD(ulong dst, void* src, nuint bytes);
    [LibraryImport(NativeLibraries.CudaName, EntryPoint = "cuMemcpyDtoH_v2")] public static partial int cuMemcpyDtoH(void* dst, ulong src, nuint bytes);
    [LibraryImport(NativeLibraries.CudaName, EntryPoint = "cuMemcpyHtoDAsync_v2")] public static partial int cuMemcpyHtoDAsync(ulong dst, void* src, nuint bytes, IntPtr stream);
    [LibraryImport(NativeLibraries.CudaName, EntryPoint = "cuMemcpyDtoHAsync_v2")] public static partial int cuMemcpyDtoHAsync(void* dst, ulong src, nuint bytes, IntPtr stream);
    [LibraryImport(NativeLibraries.CudaName, EntryPoint = "cuMemcpyDtoDAsync_v2")] public static partial int cuMemcpyDtoDAsync(ulong dst, ulong src, nuint bytes, IntPtr stream);
    [LibraryImport(NativeLibraries.CudaName, EntryPoint = "cuMemsetD8Async")] public static partial int cuMemsetD8Async(ulong dst, byte value, nuint count, IntPtr stream);
    [LibraryImport(NativeLibraries.CudaName, EntryPoint = "cuMemsetD32Async")] public static partial int cuMemsetD32Async(ulong dst, uint value, nuint count, IntPtr stream);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuStreamCreate(IntPtr* stream, uint flags);
    [LibraryImport(NativeLibraries.CudaName, EntryPoint = "cuStreamDestroy_v2")] public static partial int cuStreamDestroy(IntPtr stream);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuStreamSynchronize(IntPtr stream);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuEventCreate(IntPtr* ev, uint flags);
    [LibraryImport(NativeLibraries.CudaName, EntryPoint = "cuEventDestroy_v2")] public static partial int cuEventDestroy(IntPtr ev);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuEventRecord(IntPtr ev, IntPtr stream);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuEventSynchronize(IntPtr ev);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuEventElapsedTime(float* ms, IntPtr start, IntPtr end);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuModuleLoadData(IntPtr* module, void* image);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuModuleUnload(IntPtr module);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuModuleGetFunction(IntPtr* function, IntPtr module, byte* name);
    [LibraryImport(NativeLibraries.CudaName, EntryPoint = "cuModuleGetGlobal_v2")] public static partial int cuModuleGetGlobal(ulong* dptr, nuint* bytes, IntPtr module, byte* name);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuFuncSetAttribute(IntPtr function, int attribute, int value);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuFuncGetAttribute(int* value, int attribute, IntPtr function);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuOccupancyMaxActiveBlocksPerMultiprocessor(int* numBlocks, IntPtr function, int blockSize, nuint dynamicSMemSize);
    [LibraryImport(NativeLibraries.CudaName)]
    public static partial int cuLaunchKernel(IntPtr f, uint gx, uint gy, uint gz, uint bx, uint by, uint bz,
        uint sharedBytes, IntPtr stream, void** kernelParams, void** extra);
    [LibraryImport(NativeLibraries.CudaName, EntryPoint = "cuStreamBeginCapture_v2")] public static partial int cuStreamBeginCapture(IntPtr stream, int mode);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuStreamEndCapture(IntPtr stream, IntPtr* graph);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuGraphInstantiateWithFlags(IntPtr* exec, IntPtr graph, ulong flags);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuGraphLaunch(IntPtr exec, IntPtr stream);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuGraphExecDestroy(IntPtr exec);
    [LibraryImport(NativeLibraries.CudaName)] public static partial int cuGraphDestroy(IntPtr graph);
}

/// <summary>The device attributes GpuOps reads (values of CUdevice_attribute).</summary>
public enum CuDeviceAttribute
{
    MaxThreadsPerBlock = 1,
    MaxSharedMemoryPerBlock = 8,
    WarpSize = 10,
    ClockRateKHz = 13,
    MultiprocessorCount = 16,
    MemoryClockRateKHz = 36,
    GlobalMemoryBusWidth = 37,
    L2CacheSize = 38,
    MaxThreadsPerMultiprocessor = 39,
    PciBusId = 33,
    ComputeCapabilityMajor = 75,
    ComputeCapabilityMinor = 76,
    MaxSharedMemoryPerBlockOptin = 97,
}
