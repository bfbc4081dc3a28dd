using System.Reflection;
using System.Runtime.Loader;
using GpuOps.PowerShell;
using GpuOps.Tests.Support;
using Xunit;

namespace GpuOps.Tests.Foundation;

[Trait("Category", "Module")]
public class LoadContextTests
{
    [Fact]
    public void Module_layout_keeps_only_the_entry_assembly_beside_the_manifest_path()
    {
        var bin = Repo.PathOf("module", "bin");
        var top = Directory.GetFiles(bin, "*.dll").Select(Path.GetFileName).ToList();
        Assert.Equal(new[] { "GpuOps.PowerShell.dll" }, top);
        Assert.True(File.Exists(Path.Combine(bin, "deps", "GpuOps.Core.dll")));
        Assert.True(File.Exists(Path.Combine(bin, "deps", "Microsoft.Data.Sqlite.dll")));
        Assert.False(File.Exists(Path.Combine(bin, "deps", "System.Management.Automation.dll")), "PowerShell's own assembly must not ship with the module");
    }

    [Fact]
    public void Engine_assemblies_and_their_dependencies_load_in_the_isolated_context()
    {
        var alc = new GpuOpsLoadContext(Metadata.DepsDirectory);
        var core = alc.LoadFromAssemblyName(new AssemblyName("GpuOps.Core"));
        Assert.Same(alc, AssemblyLoadContext.GetLoadContext(core));
        Assert.NotSame(typeof(GpuOps.Core.Hosting.IOperationHost).Assembly, core);
        Assert.StartsWith(Metadata.DepsDirectory, core.Location);

        var sqlite = alc.LoadFromAssemblyName(new AssemblyName("Microsoft.Data.Sqlite"));
        Assert.Same(alc, AssemblyLoadContext.GetLoadContext(sqlite));

        // Framework assemblies still come from the default context.
        var runtime = alc.LoadFromAssemblyName(new AssemblyName("System.Runtime"));
        Assert.Same(AssemblyLoadContext.Default, AssemblyLoadContext.GetLoadContext(runtime));
    }

    [Fact]
    public void The_default_context_hook_answers_only_for_engine_assemblies()
    {
        var alc = new GpuOpsLoadContext(Metadata.DepsDirectory);
        Assert.Null(alc.ResolveForDefault(AssemblyLoadContext.Default, new AssemblyName("Microsoft.Data.Sqlite")));
        Assert.Null(alc.ResolveForDefault(AssemblyLoadContext.Default, new AssemblyName("Newtonsoft.Json")));
        var nvml = alc.ResolveForDefault(AssemblyLoadContext.Default, new AssemblyName("GpuOps.Nvml"));
        Assert.NotNull(nvml);
        Assert.Same(alc, AssemblyLoadContext.GetLoadContext(nvml!));
    }
}
