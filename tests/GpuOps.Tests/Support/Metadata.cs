using System.Reflection;
using System.Runtime.InteropServices;

namespace GpuOps.Tests.Support;

/// <summary>
/// The module's cmdlet assembly and PowerShell's reference assembly, opened with MetadataLoadContext:
/// their metadata is inspected without loading PowerShell (which cannot be installed here).
/// </summary>
public static class Metadata
{
    private static readonly Lazy<MetadataLoadContext> Context = new(() =>
    {
        var paths = new List<string>();
        paths.AddRange(Directory.GetFiles(RuntimeEnvironment.GetRuntimeDirectory(), "*.dll"));
        paths.Add(PowerShellReferencePath);
        paths.AddRange(Directory.GetFiles(DepsDirectory, "*.dll").Where(p => !p.EndsWith("GpuOps.PowerShell.dll", StringComparison.Ordinal)));
        paths.Add(CmdletAssemblyPath);
        return new MetadataLoadContext(new PathAssemblyResolver(paths), "System.Private.CoreLib");
    });

    public static string PowerShellReferencePath => Path.Combine(AppContext.BaseDirectory, "psref", "System.Management.Automation.dll");

    public static string CmdletAssemblyPath => Repo.PathOf("module", "bin", "deps", "GpuOps.PowerShell.dll");

    public static string DepsDirectory => Repo.PathOf("module", "bin", "deps");

    public static MetadataLoadContext Load => Context.Value;

    public static Assembly CmdletAssembly => Load.LoadFromAssemblyPath(CmdletAssemblyPath);

    public static Type PowerShellType(string fullName) =>
        Load.LoadFromAssemblyPath(PowerShellReferencePath).GetType(fullName, throwOnError: true)!;

    public static Type? FindType(string fullName)
    {
        foreach (var dll in Directory.GetFiles(DepsDirectory, "GpuOps.*.dll"))
        {
            var t = Load.LoadFromAssemblyPath(dll).GetType(fullName, throwOnError: false);
            if (t is not null) return t;
        }

        return null;
    }

    /// <summary>Named argument of a custom attribute, or the default.</summary>
    public static T Named<T>(CustomAttributeData a, string name, T fallback)
    {
        foreach (var n in a.NamedArguments)
        {
            if (n.MemberName == name) return (T)n.TypedValue.Value!;
        }

        return fallback;
    }
}
