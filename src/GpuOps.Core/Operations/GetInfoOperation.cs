using System.Reflection;
using System.Runtime.InteropServices;
using GpuOps.Core.Hosting;
using GpuOps.Core.Native;

namespace GpuOps.Core.Operations;

/// <summary>What GpuOps is running on: versions, native libraries found, GPUs (plain data).</summary>
public sealed record GpuOpsInfo(
    string GpuOpsVersion,
    string DotNetVersion,
    string OperatingSystem,
    string ProcessArchitecture,
    string? DriverVersion,
    string? CudaDriverVersion,
    int GpuCount,
    IReadOnlyList<CudaDeviceSummary> Gpus,
    IReadOnlyList<NativeLibraryStatus> Libraries,
    string Backend);

/// <summary><c>Get-GpuOpsInfo</c> / <c>gpuops info</c>.</summary>
public sealed class GetInfoOperation : IOperation
{
    public void Execute(IOperationHost host)
    {
        var libs = Enum.GetValues<NativeLibraryKind>().Select(NativeProbe.Probe).ToList();
        foreach (var l in libs)
        {
            host.WriteVerbose(l.Found ? $"{l.Library}: {l.Path} {l.Version}" : $"{l.Library}: not found ({l.Error})");
        }

        var gpus = NativeProbe.CudaDevices(out var gpuError);
        if (gpuError is not null) host.WriteVerbose($"GPU enumeration: {gpuError}");
        var version = typeof(GetInfoOperation).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";
        int plus = version.IndexOf('+');
        if (plus > 0) version = version[..plus];
        host.WriteObject(new GpuOpsInfo(
            version,
            RuntimeInformation.FrameworkDescription,
            RuntimeInformation.OSDescription,
            RuntimeInformation.ProcessArchitecture.ToString(),
            libs.First(l => l.Library == NativeLibraries.DisplayName(NativeLibraryKind.Nvml)).Version,
            libs.First(l => l.Library == NativeLibraries.DisplayName(NativeLibraryKind.CudaDriver)).Version,
            gpus.Count,
            gpus,
            libs,
            gpus.Count > 0 ? "cuda" : "cpu"));
    }
}
