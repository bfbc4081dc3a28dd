using System.Runtime.InteropServices;
using GpuOps.Core.Hosting;
using GpuOps.Core.Native;

namespace GpuOps.Cuda.Compile;

/// <summary>NVRTC bindings (libnvrtc).</summary>
public static unsafe partial class Nvrtc
{
    [LibraryImport(NativeLibraries.NvrtcName)] public static partial int nvrtcVersion(int* major, int* minor);
    [LibraryImport(NativeLibraries.NvrtcName)] public static partial IntPtr nvrtcGetErrorString(int result);
    [LibraryImport(NativeLibraries.NvrtcName)]
    public static partial int nvrtcCreateProgram(IntPtr* prog, byte* src, byte* name, int numHeaders, byte** headers, byte** includeNames);
    [LibraryImport(NativeLibraries.NvrtcName)] public static partial int nvrtcCompileProgram(IntPtr prog, int numOptions, byte** options);
    [LibraryImport(NativeLibraries.NvrtcName)] public static partial int nvrtcGetProgramLogSize(IntPtr prog, nuint* size);
    [LibraryImport(NativeLibraries.NvrtcName)] public static partial int nvrtcGetProgramLog(IntPtr prog, byte* log);
    [LibraryImport(NativeLibraries.NvrtcName)] public static partial int nvrtcGetCUBINSize(IntPtr prog, nuint* size);
    [LibraryImport(NativeLibraries.NvrtcName)] public static partial int nvrtcGetCUBIN(IntPtr prog, byte* cubin);
    [LibraryImport(NativeLibraries.NvrtcName)] public static partial int nvrtcDestroyProgram(IntPtr* prog);

    public static string Version()
    {
        NativeLibraries.Require(NativeLibraryKind.Nvrtc);
        int a, b;
        Check(nvrtcVersion(&a, &b), "nvrtcVersion");
        return $"{a}.{b}";
    }

    public static void Check(int rc, string operation)
    {
        if (rc == 0) return;
        var s = Marshal.PtrToStringUTF8(nvrtcGetErrorString(rc)) ?? $"NVRTC error {rc}";
        throw new GpuOpsException("NvrtcError", ErrorCategory.InvalidResult, $"{operation} failed: {s}.", operation);
    }

    /// <summary>Compile CUDA C++ to a cubin; on failure the exception carries NVRTC's log (file:line: error).</summary>
    public static byte[] CompileToCubin(string source, string fileName, IReadOnlyList<string> options)
    {
        NativeLibraries.Require(NativeLibraryKind.Nvrtc);
        IntPtr prog;
        var src = Utf8Z(source);
        var name = Utf8Z(fileName);
        fixed (byte* s = src)
        fixed (byte* n = name)
            Check(nvrtcCreateProgram(&prog, s, n, 0, null, null), $"nvrtcCreateProgram({fileName})");
        var handles = options.Select(o => GCHandle.Alloc(Utf8Z(o), GCHandleType.Pinned)).ToList();
        try
        {
            byte** opts = stackalloc byte*[Math.Max(1, handles.Count)];
            for (int i = 0; i < handles.Count; i++) opts[i] = (byte*)handles[i].AddrOfPinnedObject();
            int rc = nvrtcCompileProgram(prog, handles.Count, opts);
            string log = Log(prog);
            if (rc != 0)
            {
                var first = log.Split('\n').FirstOrDefault(l => l.Contains("error", StringComparison.OrdinalIgnoreCase))?.Trim() ?? log.Trim();
                throw new GpuOpsException("KernelCompileFailed", ErrorCategory.InvalidData,
                    $"NVRTC could not compile {fileName} ({string.Join(' ', options)}): {first}{Environment.NewLine}{log.TrimEnd()}",
                    fileName, null, "Fix the kernel source at the file and line NVRTC names.");
            }

            nuint size;
            Check(nvrtcGetCUBINSize(prog, &size), "nvrtcGetCUBINSize");
            var cubin = new byte[(int)size];
            fixed (byte* c = cubin) Check(nvrtcGetCUBIN(prog, c), "nvrtcGetCUBIN");
            return cubin;
        }
        finally
        {
            foreach (var h in handles) h.Free();
            nvrtcDestroyProgram(&prog);
        }
    }

    private static string Log(IntPtr prog)
    {
        nuint size;
        if (nvrtcGetProgramLogSize(prog, &size) != 0 || size <= 1) return string.Empty;
        var buf = new byte[(int)size];
        fixed (byte* b = buf) nvrtcGetProgramLog(prog, b);
        return System.Text.Encoding.UTF8.GetString(buf, 0, buf.Length - 1);
    }

    private static byte[] Utf8Z(string s) => System.Text.Encoding.UTF8.GetBytes(s + "\0");
}
