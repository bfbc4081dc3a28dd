using System.Runtime.InteropServices;
using System.Text;

namespace GpuOps.Core.Native;

/// <summary>A GPU as the CUDA driver sees it (plain data).</summary>
public sealed record CudaDeviceSummary(
    int Index,
    string Name,
    string ComputeCapability,
    int MultiprocessorCount,
    long MemoryTotalBytes);

/// <summary>
/// Version and device queries that need no bindings project: a few exported functions called through
/// function pointers, so <c>gpuops info</c> works even when a library is the wrong version for the full
/// bindings. Every failure becomes text in the result, never an exception.
/// </summary>
public static unsafe class NativeProbe
{
    public static NativeLibraryStatus Probe(NativeLibraryKind kind)
    {
        string display = NativeLibraries.DisplayName(kind);
        string purpose = NativeLibraries.Purpose(kind);
        try
        {
            NativeLibraries.Require(kind);
        }
        catch (NativeLibraryNotFoundException ex)
        {
            return new NativeLibraryStatus(display, purpose, false, null, null, ex.Message);
        }

        string? version = null;
        string? error = null;
        try
        {
            version = kind switch
            {
                NativeLibraryKind.CudaDriver => CudaDriverVersion(),
                NativeLibraryKind.Nvrtc => NvrtcVersion(),
                NativeLibraryKind.CublasLt => CublasLtVersion(),
                NativeLibraryKind.Nvml => NvmlDriverVersion(),
                _ => null,
            };
        }
        catch (Exception ex)
        {
            error = ex.Message;
        }

        return new NativeLibraryStatus(display, purpose, true, NativeLibraries.LoadedPath(kind), version, error);
    }

    /// <summary>"13.0" from cuDriverGetVersion, or null.</summary>
    public static string? CudaDriverVersion()
    {
        if (!NativeLibraries.TryGetExport(NativeLibraryKind.CudaDriver, "cuDriverGetVersion", out var p)) return null;
        int v = 0;
        int rc = ((delegate* unmanaged<int*, int>)p)(&v);
        return rc == 0 ? $"{v / 1000}.{v % 1000 / 10}" : null;
    }

    public static string? NvrtcVersion()
    {
        if (!NativeLibraries.TryGetExport(NativeLibraryKind.Nvrtc, "nvrtcVersion", out var p)) return null;
        int major = 0, minor = 0;
        int rc = ((delegate* unmanaged<int*, int*, int>)p)(&major, &minor);
        return rc == 0 ? $"{major}.{minor}" : null;
    }

    public static string? CublasLtVersion()
    {
        if (!NativeLibraries.TryGetExport(NativeLibraryKind.CublasLt, "cublasLtGetVersion", out var p)) return null;
        nuint v = ((delegate* unmanaged<nuint>)p)();
        ulong u = v;
        return $"{u / 10000}.{u / 100 % 100}.{u % 100}";
    }

    /// <summary>The driver version string NVML reports (e.g. "580.159.04"), or null.</summary>
    public static string? NvmlDriverVersion()
    {
        if (!NativeLibraries.TryGetExport(NativeLibraryKind.Nvml, "nvmlInit_v2", out var init) ||
            !NativeLibraries.TryGetExport(NativeLibraryKind.Nvml, "nvmlSystemGetDriverVersion", out var get) ||
            !NativeLibraries.TryGetExport(NativeLibraryKind.Nvml, "nvmlShutdown", out var shutdown))
        {
            return null;
        }

        int initRc = ((delegate* unmanaged<int>)init)();
        if (initRc != 0)
        {
            // (found but not usable: say why, as Get-Gpu would; e.g. "Driver Not Loaded")
            string? why = NativeLibraries.TryGetExport(NativeLibraryKind.Nvml, "nvmlErrorString", out var es)
                ? Marshal.PtrToStringUTF8(((delegate* unmanaged<int, IntPtr>)es)(initRc))
                : null;
            throw new InvalidOperationException($"nvmlInit_v2 failed: {why ?? "NVML error " + initRc} ({initRc}).");
        }

        try
        {
            byte* buf = stackalloc byte[96];
            int rc = ((delegate* unmanaged<byte*, uint, int>)get)(buf, 96);
            return rc == 0 ? Marshal.PtrToStringUTF8((IntPtr)buf) : null;
        }
        finally
        {
            ((delegate* unmanaged<int>)shutdown)();
        }
    }

    /// <summary>The GPUs the CUDA driver sees; empty when there is no driver or no device.</summary>
    public static IReadOnlyList<CudaDeviceSummary> CudaDevices(out string? error)
    {
        error = null;
        var list = new List<CudaDeviceSummary>();
        if (!NativeLibraries.IsAvailable(NativeLibraryKind.CudaDriver))
        {
            error = $"{NativeLibraries.DisplayName(NativeLibraryKind.CudaDriver)} not found";
            return list;
        }

        try
        {
            var init = (delegate* unmanaged<uint, int>)NativeLibraries.RequireExport(NativeLibraryKind.CudaDriver, "cuInit");
            var count = (delegate* unmanaged<int*, int>)NativeLibraries.RequireExport(NativeLibraryKind.CudaDriver, "cuDeviceGetCount");
            var get = (delegate* unmanaged<int*, int, int>)NativeLibraries.RequireExport(NativeLibraryKind.CudaDriver, "cuDeviceGet");
            var name = (delegate* unmanaged<byte*, int, int, int>)NativeLibraries.RequireExport(NativeLibraryKind.CudaDriver, "cuDeviceGetName");
            var mem = (delegate* unmanaged<nuint*, int, int>)NativeLibraries.RequireExport(NativeLibraryKind.CudaDriver, "cuDeviceTotalMem_v2");
            var attr = (delegate* unmanaged<int*, int, int, int>)NativeLibraries.RequireExport(NativeLibraryKind.CudaDriver, "cuDeviceGetAttribute");
            int rc = init(0);
            if (rc != 0)
            {
                error = $"cuInit failed with CUDA error {rc}" + (rc == 100 ? " (CUDA_ERROR_NO_DEVICE)" : string.Empty);
                return list;
            }

            int n = 0;
            if (count(&n) != 0) return list;
            byte* buf = stackalloc byte[256];
            for (int i = 0; i < n; i++)
            {
                int dev = 0;
                if (get(&dev, i) != 0) continue;
                buf[0] = 0;
                name(buf, 256, dev);
                nuint total = 0;
                mem(&total, dev);
                int major = 0, minor = 0, sms = 0;
                attr(&major, 75, dev); // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
                attr(&minor, 76, dev); // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR
                attr(&sms, 16, dev);   // CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT
                list.Add(new CudaDeviceSummary(i, Marshal.PtrToStringUTF8((IntPtr)buf) ?? "?", $"{major}.{minor}", sms, (long)total));
            }
        }
        catch (Exception ex)
        {
            error = ex.Message;
        }

        return list;
    }
}
