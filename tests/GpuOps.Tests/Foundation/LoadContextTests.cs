using System.Reflection;
using System.Runtime.Loader;
using GpuOps.PowerShell.Loader;
using GpuOps.Tests.Support;
using Xunit;

namespace GpuOps.Tests.Foundation;

[Trait("Category", "Module")]
public class LoadContextTests
{
    [Fact]
    public void Module_layout_keeps_only_the_loader_beside_the_root_module()
    {
        var bin = Repo.PathOf("module", "bin");
        var top = Directory.GetFiles(bin, "*.dll").Select(Path.GetFileName).ToList();
        Assert.Equal(new[] { "GpuOps.PowerShell.Loader.dll" }, top);
        Assert.True(File.Exists(Repo.PathOf("module", "GpuOps.psm1")));
        Assert.True(File.Exists(Path.Combine(bin, "deps", "GpuOps.PowerShell.dll")));
        Assert.True(File.Exists(Path.Combine(bin, "deps", "GpuOps.Core.dll")));
        Assert.True(File.Exists(Path.Combine(bin, "deps", "Microsoft.Data.Sqlite.dll")));
        Assert.False(File.Exists(Path.Combine(bin, "deps", "System.Management.Automation.dll")), "PowerShell's own assembly must not ship with the module");
    }

    [Fact]
    public void The_loader_references_nothing_but_the_framework()
    {
        // (it enters PowerShell's default context: anything it referenced would load there too)
        var refs = typeof(GpuOpsLoadContext).Assembly.GetReferencedAssemblies().Select(a => a.Name!).ToList();
        Assert.All(refs, r => Assert.True(r.StartsWith("System", StringComparison.Ordinal) || r == "netstandard", $"the loader references {r}"));
    }

    [Fact]
    public void The_cmdlet_assembly_and_its_dependencies_load_in_the_isolated_context()
    {
        var alc = new GpuOpsLoadContext(Metadata.DepsDirectory);
        var module = alc.LoadModuleAssembly();
        Assert.Equal("GpuOps.PowerShell", module.GetName().Name);
        Assert.Same(alc, AssemblyLoadContext.GetLoadContext(module));
        Assert.StartsWith(Metadata.DepsDirectory, module.Location);
        Assert.Same(module, alc.LoadModuleAssembly());

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
    public void A_folder_without_the_cmdlet_assembly_is_refused_with_the_fix()
    {
        var dir = Directory.CreateTempSubdirectory("gpuops-deps-").FullName;
        try
        {
            var e = Assert.Throws<FileNotFoundException>(() => new GpuOpsLoadContext(dir));
            Assert.Contains("GpuOps.PowerShell.dll", e.Message);
            Assert.Contains("dotnet build", e.Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
