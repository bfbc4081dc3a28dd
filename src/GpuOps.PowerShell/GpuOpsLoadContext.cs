using System.Reflection;
using System.Runtime.Loader;

namespace GpuOps.PowerShell;

/// <summary>
/// The load context that holds GpuOps' own assemblies and their dependencies (module/bin/deps), so that
/// GpuOps imports cleanly beside modules that ship other versions of the same libraries (PowerShell's
/// "resolving dependency conflicts" pattern, as jborean93's PSToml does it). This class uses no
/// PowerShell types so that tests can exercise it without a PowerShell host.
/// </summary>
public sealed class GpuOpsLoadContext : AssemblyLoadContext
{
    private static readonly object Gate = new();
    private static GpuOpsLoadContext? _instance;
    private readonly AssemblyDependencyResolver _resolver;
    private readonly string _depsDir;

    public GpuOpsLoadContext(string depsDir)
        : base("GpuOps", isCollectible: false)
    {
        _depsDir = depsDir;
        _resolver = new AssemblyDependencyResolver(Path.Combine(depsDir, "GpuOps.PowerShell.dll"));
    }

    /// <summary>The assemblies the module's cmdlet assembly references directly; only these are handed to the default context.</summary>
    public static readonly IReadOnlySet<string> EngineAssemblies = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        "GpuOps.Core", "GpuOps.Nvml", "GpuOps.Cuda",
    };

    public string DependencyDirectory => _depsDir;

    /// <summary>Hook the default context once; returns the context.</summary>
    public static GpuOpsLoadContext Install(string depsDir)
    {
        lock (Gate)
        {
            if (_instance is not null) return _instance;
            _instance = new GpuOpsLoadContext(depsDir);
            Default.Resolving += _instance.ResolveForDefault;
            return _instance;
        }
    }

    public static void Uninstall()
    {
        lock (Gate)
        {
            if (_instance is null) return;
            Default.Resolving -= _instance.ResolveForDefault;
            _instance = null;
        }
    }

    /// <summary>Called when the default context cannot find an assembly: answer only for GpuOps' engine assemblies.</summary>
    public Assembly? ResolveForDefault(AssemblyLoadContext context, AssemblyName name)
    {
        if (name.Name is null || !EngineAssemblies.Contains(name.Name)) return null;
        return LoadFromAssemblyName(name);
    }

    protected override Assembly? Load(AssemblyName name)
    {
        // PowerShell's own assemblies and the framework come from the default context.
        if (name.Name is null || name.Name.StartsWith("System.Management.Automation", StringComparison.Ordinal) ||
            name.Name == "GpuOps.PowerShell")
        {
            return null;
        }

        var path = _resolver.ResolveAssemblyToPath(name);
        if (path is null)
        {
            var local = Path.Combine(_depsDir, name.Name + ".dll");
            if (File.Exists(local)) path = local;
        }

        return path is null ? null : LoadFromAssemblyPath(path);
    }

    protected override IntPtr LoadUnmanagedDll(string unmanagedDllName)
    {
        var path = _resolver.ResolveUnmanagedDllToPath(unmanagedDllName);
        return path is null ? IntPtr.Zero : LoadUnmanagedDllFromPath(path);
    }
}
