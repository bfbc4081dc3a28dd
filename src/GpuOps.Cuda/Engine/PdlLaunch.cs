using System.Runtime.InteropServices;
using GpuOps.Core.Native;
using GpuOps.Cuda.Driver;

namespace GpuOps.Cuda.Engine;

/// <summary>
/// cuLaunchKernelEx with CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION: the kernel may start while the previous
/// kernel on the stream still runs (it waits in griddepcontrol.wait before reading what that kernel wrote). Captured into
/// a graph this becomes a programmatic dependency edge.
/// </summary>
internal static unsafe partial class PdlLaunch
{
    private const int CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION = 6;

    [StructLayout(LayoutKind.Sequential)]
    private struct LaunchAttribute
    {
        public int Id;
        public int Pad;
        public fixed byte Value[64];
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct LaunchConfig
    {
        public uint GridX, GridY, GridZ, BlockX, BlockY, BlockZ, SharedBytes;
        public IntPtr Stream;
        public LaunchAttribute* Attributes;
        public uint AttributeCount;
    }

    [LibraryImport(NativeLibraries.CudaName)]
    private static partial int cuLaunchKernelEx(LaunchConfig* config, IntPtr function, void** kernelParams, void** extra);

    public static void Launch(IntPtr function, string name, IntPtr stream, (int X, int Y, int Z) grid, int block, int sharedBytes, KernelArg[] args)
    {
        if (grid.X <= 0 || grid.Y <= 0 || grid.Z <= 0) return;
        int n = args.Length;
        ulong* vals = stackalloc ulong[Math.Max(1, n)];
        void** ptrs = stackalloc void*[Math.Max(1, n)];
        for (int i = 0; i < n; i++)
        {
            vals[i] = args[i].Bits;
            ptrs[i] = &vals[i];
        }

        LaunchAttribute attr = default;
        attr.Id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
        *(int*)attr.Value = 1;
        var cfg = new LaunchConfig
        {
            GridX = (uint)grid.X, GridY = (uint)grid.Y, GridZ = (uint)grid.Z, BlockX = (uint)block, BlockY = 1, BlockZ = 1,
            SharedBytes = (uint)sharedBytes, Stream = stream, Attributes = &attr, AttributeCount = 1,
        };
        CudaApi.Check(cuLaunchKernelEx(&cfg, function, ptrs, null), $"cuLaunchKernelEx({name}, grid {grid.X}x{grid.Y}x{grid.Z}, block {block}, programmatic)");
    }
}
