using System.Security.Cryptography;
using System.Text;
using GpuOps.Core.Hosting;
using GpuOps.Cuda.Driver;

namespace GpuOps.Cuda.Compile;

/// <summary>
/// Compiles kernels/*.cu with NVRTC for the GPU present and keeps the cubins on disk, keyed by a hash of the
/// source (with its #include "..." files expanded), the options, the target architecture and the NVRTC and
/// driver versions. Cache folder: GPUOPS_KERNEL_CACHE, else $XDG_CACHE_HOME/gpuops/kernels (~/.cache/...).
/// Kernel folder: GPUOPS_KERNELS_DIR, else "kernels" beside this assembly, else the repository's kernels/.
/// </summary>
public sealed class KernelCache
{
    private readonly Dictionary<string, byte[]> _memory = new();
    private long _diskHits, _memoryHits, _compiles;

    public KernelCache(string? cacheDirectory = null, string? kernelDirectory = null)
    {
        CacheDirectory = cacheDirectory ?? DefaultCacheDirectory();
        KernelDirectory = kernelDirectory ?? DefaultKernelDirectory();
    }

    public static KernelCache Shared { get; } = new();

    public string CacheDirectory { get; }

    public string KernelDirectory { get; }

    public long DiskHits => Interlocked.Read(ref _diskHits);

    public long MemoryHits => Interlocked.Read(ref _memoryHits);

    public long Compiles => Interlocked.Read(ref _compiles);

    public static string DefaultCacheDirectory()
    {
        var env = Environment.GetEnvironmentVariable("GPUOPS_KERNEL_CACHE");
        if (!string.IsNullOrWhiteSpace(env)) return env;
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        if (OperatingSystem.IsWindows())
            return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData), "GpuOps", "kernels");
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return Path.Combine(string.IsNullOrEmpty(xdg) ? Path.Combine(string.IsNullOrEmpty(home) ? Path.GetTempPath() : home, ".cache") : xdg, "gpuops", "kernels");
    }

    public static string DefaultKernelDirectory()
    {
        var env = Environment.GetEnvironmentVariable("GPUOPS_KERNELS_DIR");
        if (!string.IsNullOrWhiteSpace(env)) return env;
        var here = Path.GetDirectoryName(typeof(KernelCache).Assembly.Location);
        foreach (var start in new[] { here, AppContext.BaseDirectory })
        {
            if (string.IsNullOrEmpty(start)) continue;
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
            {
                var k = Path.Combine(d.FullName, "kernels");
                if (File.Exists(Path.Combine(k, "common.cuh"))) return k;
            }
        }

        return Path.Combine(here ?? AppContext.BaseDirectory, "kernels");
    }

    /// <summary>The target: sm_XY, or sm_XYa when Hopper-only instructions are asked for and the GPU has them.</summary>
    public static string Architecture(int major, int minor, bool archSpecific) =>
        $"sm_{major}{minor}" + (archSpecific && major >= 9 ? "a" : string.Empty);

    /// <summary>The source with its #include "..." files inlined (and #line markers, so errors name the right file and line).</summary>
    public string ExpandedSource(string file)
    {
        var path = Path.Combine(KernelDirectory, file);
        if (!File.Exists(path))
            throw new GpuOpsException("KernelSourceNotFound", ErrorCategory.ObjectNotFound,
                $"Kernel source {path} does not exist.", path, null, "Set GPUOPS_KERNELS_DIR to the folder that holds GpuOps' kernels/*.cu.");
        var sb = new StringBuilder();
        Expand(path, file, sb, new HashSet<string>(StringComparer.Ordinal));
        return sb.ToString();
    }

    private void Expand(string path, string display, StringBuilder sb, HashSet<string> seen)
    {
        if (!seen.Add(display)) return;
        sb.Append("#line 1 \"").Append(display).Append("\"\n");
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            var t = line.TrimStart();
            if (t.StartsWith("#include \"", StringComparison.Ordinal))
            {
                var inc = t[10..t.IndexOf('"', 10)];
                Expand(Path.Combine(Path.GetDirectoryName(path)!, inc), inc, sb, seen);
                sb.Append("#line ").Append(lineNo + 1).Append(" \"").Append(display).Append("\"\n");
                continue;
            }

            sb.Append(line).Append('\n');
        }
    }

    /// <summary>The cubin of kernels/<paramref name="file"/> for compute capability major.minor (compiled once, then from disk).</summary>
    public byte[] GetCubin(string file, int major, int minor, bool archSpecific = false, IReadOnlyList<string>? extraOptions = null)
    {
        var source = ExpandedSource(file);
        var arch = Architecture(major, minor, archSpecific);
        var options = new List<string> { $"--gpu-architecture={arch}", "-std=c++17", "--device-as-default-execution-space" };
        if (extraOptions is not null) options.AddRange(extraOptions);
        string nvrtc = Nvrtc.Version();
        string driver = CudaApi.DriverVersion().ToString(System.Globalization.CultureInfo.InvariantCulture);
        var keyText = string.Join("\n", source, string.Join(' ', options), "nvrtc " + nvrtc, "driver " + driver);
        var hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(keyText))).ToLowerInvariant()[..20];
        var key = $"{Path.GetFileNameWithoutExtension(file)}-{arch}-{hash}";
        lock (_memory)
        {
            if (_memory.TryGetValue(key, out var cached))
            {
                Interlocked.Increment(ref _memoryHits);
                return cached;
            }
        }

        var cachePath = Path.Combine(CacheDirectory, key + ".cubin");
        byte[]? cubin = null;
        if (File.Exists(cachePath))
        {
            try
            {
                cubin = File.ReadAllBytes(cachePath);
                if (cubin.Length == 0) cubin = null;
                else Interlocked.Increment(ref _diskHits);
            }
            catch (IOException)
            {
                cubin = null;
            }
        }

        if (cubin is null)
        {
            cubin = Nvrtc.CompileToCubin(source, file, options);
            Interlocked.Increment(ref _compiles);
            try
            {
                Directory.CreateDirectory(CacheDirectory);
                var tmp = cachePath + "." + Environment.ProcessId + ".tmp";
                File.WriteAllBytes(tmp, cubin);
                File.Move(tmp, cachePath, overwrite: true);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // A read-only cache folder only costs a recompile next time.
            }
        }

        lock (_memory) _memory[key] = cubin;
        return cubin;
    }

    /// <summary>Forget the in-memory copies (the next request reads the disk cache).</summary>
    public void ClearMemory()
    {
        lock (_memory) _memory.Clear();
    }
}
