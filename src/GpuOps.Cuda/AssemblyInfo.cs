namespace GpuOps.Cuda;

internal static class CudaAssembly
{
    [System.Runtime.CompilerServices.ModuleInitializer]
    internal static void Init() => GpuOps.Core.Native.NativeLibraries.RegisterResolver(typeof(CudaAssembly).Assembly);
}
