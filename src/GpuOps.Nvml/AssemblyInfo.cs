// NVML bindings live in this assembly; its [LibraryImport(NativeLibraries.NvmlName)] go through GpuOps.Core's resolver.
namespace GpuOps.Nvml;

internal static class NvmlAssembly
{
    [System.Runtime.CompilerServices.ModuleInitializer]
    internal static void Init() => GpuOps.Core.Native.NativeLibraries.RegisterResolver(typeof(NvmlAssembly).Assembly);
}
