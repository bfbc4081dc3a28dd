using System.Reflection;
using System.Runtime.Loader;

namespace GpuOps.PowerShell.Loader;

/// <summary>
/// The load context that holds the module's cmdlet assembly and all it depends on (module/bin/deps), so that GpuOps
/// imports cleanly beside modules that ship other versions of the same libraries (PowerShell's "resolving dependency
/// conflicts" pattern, as jborean93's PSToml does it). module/GpuOps.psm1 adds this assembly to the default context,
/// calls <see cref="Initialize"/> and imports the assembly it returns: PowerShell then finds the cmdlets' types, their
/// attributes and everything they reference through this context, before any cmdlet runs. PowerShell's own assemblies
/// and the framework still come from the default context.
/// </summary>
public sealed class GpuOpsLoadContext : AssemblyLoadContext
{
    /// <summary>The cmdlet assembly's simple name (module/bin/deps/GpuOps.PowerShell.dll).</summary>
    public const string ModuleAssemblyName = "GpuOps.PowerShell";

    private static readonly object Gate = new();
    private static GpuOpsLoadContext? _instance;
    private readonly AssemblyDependencyResolver _resolver;
    private readonly string _depsDir;

    public GpuOpsLoadContext(string depsDir)
        : base("GpuOps", isCollectible: false)
    {
        _depsDir = Path.GetFullPath(depsDir);
        var entry = Path.Combine(_depsDir, ModuleAssemblyName + ".dll");
        if (!File.Exists(entry))
        {
            throw new FileNotFoundException(
                $"GpuOps is not built: '{entry}' is missing. Run 'dotnet build' in the repository root (or reinstall the module).", entry);
        }

        _resolver = new AssemblyDependencyResolver(entry);
    }

    public string DependencyDirectory => _depsDir;

    /// <summary>The process's one context (module/bin/deps beside this assembly), created on first use.</summary>
    public static GpuOpsLoadContext Instance
    {
        get
        {
            lock (Gate)
            {
                if (_instance is null)
                {
                    var dir = Path.GetDirectoryName(typeof(GpuOpsLoadContext).Assembly.Location)
                              ?? throw new InvalidOperationException("The GpuOps loader assembly has no location.");
                    _instance = new GpuOpsLoadContext(Path.Combine(dir, "deps"));
                }

                return _instance;
            }
        }
    }

    /// <summary>The cmdlet assembly, loaded in the process's context (the same assembly on every call: Import-Module -Force re-imports it).</summary>
    public static Assembly Initialize() => Instance.LoadModuleAssembly();

    /// <summary>The cmdlet assembly, loaded in this context.</summary>
    public Assembly LoadModuleAssembly() => LoadFromAssemblyName(new AssemblyName(ModuleAssemblyName));

    protected override Assembly? Load(AssemblyName name)
    {
        // PowerShell's own assemblies and the framework come from the default context.
        if (name.Name is null || name.Name.StartsWith("System.Management.Automation", StringComparison.Ordinal) ||
            name.Name.StartsWith("Microsoft.PowerShell.", StringComparison.Ordinal))
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
