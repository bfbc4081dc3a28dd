using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.InteropServices;
using GpuOps.Core.Hosting;

namespace GpuOps.Core.Native;

/// <summary>The NVIDIA libraries GpuOps binds to.</summary>
public enum NativeLibraryKind
{
    /// <summary>CUDA driver API: libcuda.so.1 / nvcuda.dll.</summary>
    CudaDriver,
    /// <summary>NVIDIA Management Library: libnvidia-ml.so.1 / nvml.dll.</summary>
    Nvml,
    /// <summary>NVRTC runtime compiler: libnvrtc.so.13, then .12 / nvrtc64_*.dll.</summary>
    Nvrtc,
    /// <summary>cuBLASLt: libcublasLt.so.13, then .12 / cublasLt64_*.dll.</summary>
    CublasLt,
}

/// <summary>What was found for one native library (plain data: survives remoting and Export-Csv).</summary>
public sealed record NativeLibraryStatus(
    string Library,
    string Purpose,
    bool Found,
    string? Path,
    string? Version,
    string? Error)
{
    public override string ToString() => Found ? $"{Library} {Version} ({Path})" : $"{Library}: {Error}";
}

/// <summary>A native library that is needed but missing. The message names it and says how to get it.</summary>
public sealed class NativeLibraryNotFoundException : GpuOpsException
{
    public NativeLibraryNotFoundException(NativeLibraryKind kind, string message, string recommendedAction)
        : base("NativeLibraryNotFound", ErrorCategory.NotInstalled, message, kind.ToString(), null, recommendedAction)
    {
        Kind = kind;
    }

    public NativeLibraryKind Kind { get; }
}

/// <summary>
/// The one place where native NVIDIA libraries are found and loaded. Bindings declare
/// <c>[LibraryImport(NativeLibraries.CudaName)]</c> (etc.) and call <see cref="RegisterResolver"/> once for
/// their assembly; <see cref="Require"/> gives a clear error instead of a DllNotFoundException.
/// Environment overrides: GPUOPS_CUDA_LIBRARY, GPUOPS_NVML_LIBRARY, GPUOPS_NVRTC_LIBRARY,
/// GPUOPS_CUBLASLT_LIBRARY (a path; tests point NVML at a fake, or at a missing file).
/// </summary>
public static class NativeLibraries
{
    public const string CudaName = "gpuops-cuda";
    public const string NvmlName = "gpuops-nvml";
    public const string NvrtcName = "gpuops-nvrtc";
    public const string CublasLtName = "gpuops-cublaslt";

    private static readonly ConcurrentDictionary<NativeLibraryKind, Lazy<LoadResult>> Loaded = new();
    private static readonly ConcurrentDictionary<Assembly, bool> Registered = new();

    private sealed record LoadResult(IntPtr Handle, string? Path, string? Error);

    public static string DisplayName(NativeLibraryKind kind) => kind switch
    {
        NativeLibraryKind.CudaDriver => OperatingSystem.IsWindows() ? "nvcuda.dll" : "libcuda.so.1",
        NativeLibraryKind.Nvml => OperatingSystem.IsWindows() ? "nvml.dll" : "libnvidia-ml.so.1",
        NativeLibraryKind.Nvrtc => OperatingSystem.IsWindows() ? "nvrtc64_*.dll" : "libnvrtc.so.13 (or .12)",
        NativeLibraryKind.CublasLt => OperatingSystem.IsWindows() ? "cublasLt64_*.dll" : "libcublasLt.so.13 (or .12)",
        _ => kind.ToString(),
    };

    public static string Purpose(NativeLibraryKind kind) => kind switch
    {
        NativeLibraryKind.CudaDriver => "NVIDIA CUDA driver API",
        NativeLibraryKind.Nvml => "NVIDIA Management Library (telemetry, power)",
        NativeLibraryKind.Nvrtc => "NVRTC runtime compiler (CUDA kernels)",
        NativeLibraryKind.CublasLt => "cuBLASLt (matrix multiplication)",
        _ => kind.ToString(),
    };

    public static string HowToGet(NativeLibraryKind kind) => kind switch
    {
        NativeLibraryKind.CudaDriver => "Install the NVIDIA GPU driver (it ships the CUDA driver library), or set GPUOPS_CUDA_LIBRARY to its path.",
        NativeLibraryKind.Nvml => "Install the NVIDIA GPU driver (it ships NVML), or set GPUOPS_NVML_LIBRARY to its path.",
        NativeLibraryKind.Nvrtc => "Install the CUDA toolkit 12 or 13 (or the nvidia-cuda-nvrtc package) and put its lib64 folder on the loader path, or set GPUOPS_NVRTC_LIBRARY.",
        NativeLibraryKind.CublasLt => "Install the CUDA toolkit 12 or 13 (or the nvidia-cublas package) and put its lib64 folder on the loader path, or set GPUOPS_CUBLASLT_LIBRARY.",
        _ => string.Empty,
    };

    public static string EnvironmentVariable(NativeLibraryKind kind) => kind switch
    {
        NativeLibraryKind.CudaDriver => "GPUOPS_CUDA_LIBRARY",
        NativeLibraryKind.Nvml => "GPUOPS_NVML_LIBRARY",
        NativeLibraryKind.Nvrtc => "GPUOPS_NVRTC_LIBRARY",
        NativeLibraryKind.CublasLt => "GPUOPS_CUBLASLT_LIBRARY",
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>File names tried in order (the loader's search path first, then the CUDA toolkit's folders).</summary>
    public static IReadOnlyList<string> Candidates(NativeLibraryKind kind)
    {
        string[] names;
        if (OperatingSystem.IsWindows())
        {
            names = kind switch
            {
                NativeLibraryKind.CudaDriver => ["nvcuda.dll"],
                NativeLibraryKind.Nvml => ["nvml.dll", System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.ProgramFiles), "NVIDIA Corporation", "NVSMI", "nvml.dll")],
                NativeLibraryKind.Nvrtc => ["nvrtc64_130_0.dll", "nvrtc64_120_0.dll"],
                NativeLibraryKind.CublasLt => ["cublasLt64_13.dll", "cublasLt64_12.dll"],
                _ => [],
            };
            return names;
        }

        names = kind switch
        {
            NativeLibraryKind.CudaDriver => ["libcuda.so.1"],
            NativeLibraryKind.Nvml => ["libnvidia-ml.so.1"],
            NativeLibraryKind.Nvrtc => ["libnvrtc.so.13", "libnvrtc.so.12"],
            NativeLibraryKind.CublasLt => ["libcublasLt.so.13", "libcublasLt.so.12"],
            _ => [],
        };
        if (kind is NativeLibraryKind.Nvrtc or NativeLibraryKind.CublasLt)
        {
            var dirs = new List<string>();
            foreach (var env in new[] { "CUDA_HOME", "CUDA_PATH" })
            {
                var v = Environment.GetEnvironmentVariable(env);
                if (!string.IsNullOrEmpty(v)) dirs.Add(System.IO.Path.Combine(v, "lib64"));
            }
            dirs.Add("/usr/local/cuda/lib64");
            dirs.Add("/usr/local/cuda/targets/x86_64-linux/lib");
            var list = new List<string>(names);
            foreach (var d in dirs)
                foreach (var n in names)
                    list.Add(System.IO.Path.Combine(d, n));
            return list;
        }

        return names;
    }

    /// <summary>True when the library can be loaded.</summary>
    public static bool IsAvailable(NativeLibraryKind kind) => Load(kind).Handle != IntPtr.Zero;

    /// <summary>The library's handle, or a <see cref="NativeLibraryNotFoundException"/> naming it.</summary>
    public static IntPtr Require(NativeLibraryKind kind)
    {
        var r = Load(kind);
        if (r.Handle != IntPtr.Zero) return r.Handle;
        throw new NativeLibraryNotFoundException(kind,
            $"{DisplayName(kind)} ({Purpose(kind)}) was not found: {r.Error}",
            HowToGet(kind));
    }

    /// <summary>Where the library was loaded from, or null.</summary>
    public static string? LoadedPath(NativeLibraryKind kind) => Load(kind).Path;

    /// <summary>An exported function's address, or a clear error naming the library and symbol.</summary>
    public static IntPtr RequireExport(NativeLibraryKind kind, string symbol)
    {
        var h = Require(kind);
        if (NativeLibrary.TryGetExport(h, symbol, out var p)) return p;
        throw new GpuOpsException("NativeSymbolNotFound", ErrorCategory.NotInstalled,
            $"{DisplayName(kind)} at {LoadedPath(kind)} has no function '{symbol}': the library is too old for GpuOps.", kind.ToString());
    }

    public static bool TryGetExport(NativeLibraryKind kind, string symbol, out IntPtr address)
    {
        address = IntPtr.Zero;
        var r = Load(kind);
        return r.Handle != IntPtr.Zero && NativeLibrary.TryGetExport(r.Handle, symbol, out address);
    }

    /// <summary>
    /// Route <c>[LibraryImport]</c>s of <paramref name="assembly"/> that name <see cref="CudaName"/>,
    /// <see cref="NvmlName"/>, <see cref="NvrtcName"/> or <see cref="CublasLtName"/> through this class.
    /// </summary>
    public static void RegisterResolver(Assembly assembly)
    {
        if (!Registered.TryAdd(assembly, true)) return;
        NativeLibrary.SetDllImportResolver(assembly, (name, _, _) =>
        {
            NativeLibraryKind? kind = name switch
            {
                CudaName => NativeLibraryKind.CudaDriver,
                NvmlName => NativeLibraryKind.Nvml,
                NvrtcName => NativeLibraryKind.Nvrtc,
                CublasLtName => NativeLibraryKind.CublasLt,
                _ => null,
            };
            return kind is null ? IntPtr.Zero : Require(kind.Value);
        });
    }

    /// <summary>Forget cached load results (tests that switch GPUOPS_*_LIBRARY between cases).</summary>
    internal static void ResetForTests() => Loaded.Clear();

    private static LoadResult Load(NativeLibraryKind kind) =>
        Loaded.GetOrAdd(kind, k => new Lazy<LoadResult>(() => TryLoad(k))).Value;

    private static LoadResult TryLoad(NativeLibraryKind kind)
    {
        var overridePath = Environment.GetEnvironmentVariable(EnvironmentVariable(kind));
        if (!string.IsNullOrWhiteSpace(overridePath))
        {
            if (NativeLibrary.TryLoad(overridePath, out var h)) return new LoadResult(h, overridePath, null);
            return new LoadResult(IntPtr.Zero, null,
                File.Exists(overridePath)
                    ? $"{EnvironmentVariable(kind)}={overridePath} exists but could not be loaded (wrong architecture or missing dependencies)."
                    : $"{EnvironmentVariable(kind)}={overridePath} does not exist.");
        }

        var tried = Candidates(kind);
        foreach (var name in tried)
        {
            if (NativeLibrary.TryLoad(name, out var h))
            {
                return new LoadResult(h, ResolvePath(h, name), null);
            }
        }

        return new LoadResult(IntPtr.Zero, null, $"tried {string.Join(", ", tried.Where(t => !t.Contains('/') || File.Exists(t)).DefaultIfEmpty(tried[0]))}.");
    }

    private static string ResolvePath(IntPtr handle, string name)
    {
        if (!OperatingSystem.IsLinux()) return name;
        try
        {
            // The loader's view: the first mapped file whose name starts with the soname.
            var stem = System.IO.Path.GetFileName(name);
            foreach (var line in File.ReadLines("/proc/self/maps"))
            {
                int slash = line.IndexOf('/');
                if (slash < 0) continue;
                var path = line[slash..];
                if (System.IO.Path.GetFileName(path).StartsWith(stem.Split(".so")[0] + ".so", StringComparison.Ordinal))
                    return path;
            }
        }
        catch (IOException)
        {
        }

        return name;
    }
}
