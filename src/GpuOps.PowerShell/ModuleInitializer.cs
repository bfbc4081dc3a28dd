using System.Management.Automation;

namespace GpuOps.PowerShell;

/// <summary>Runs on Import-Module: installs the isolated load context before any cmdlet runs.</summary>
public sealed class GpuOpsModuleInitializer : IModuleAssemblyInitializer, IModuleAssemblyCleanup
{
    public void OnImport()
    {
        var dir = Path.GetDirectoryName(typeof(GpuOpsModuleInitializer).Assembly.Location)!;
        GpuOpsLoadContext.Install(Path.Combine(dir, "deps"));
    }

    public void OnRemove(PSModuleInfo psModuleInfo) => GpuOpsLoadContext.Uninstall();
}
