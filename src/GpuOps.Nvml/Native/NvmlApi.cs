using System.Runtime.InteropServices;
using GpuOps.Core.Hosting;
using GpuOps.Core.Native;

namespace GpuOps.Nvml.Native;

/// <summary>nvmlReturn_t values used by GpuOps (nvml.h).</summary>
public enum NvmlReturn
{
    Success = 0, Uninitialized = 1, InvalidArgument = 2, NotSupported = 3, NoPermission = 4, AlreadyInitialized = 5,
    NotFound = 6, InsufficientSize = 7, InsufficientPower = 8, DriverNotLoaded = 9, Timeout = 10, IrqIssue = 11,
    LibraryNotFound = 12, FunctionNotFound = 13, CorruptedInforom = 14, GpuIsLost = 15, ResetRequired = 16,
    OperatingSystem = 17, LibRmVersionMismatch = 18, InUse = 19, Memory = 20, NoData = 21, VgpuEccNotSupported = 22,
    InsufficientResources = 23, FreqNotSupported = 24, ArgumentVersionMismatch = 25, Deprecated = 26, NotReady = 27,
    GpuNotFound = 28, InvalidState = 29, Unknown = 999,
}

/// <summary>An NVML call failed. Terminating by default; the message names the call and NVML's own text.</summary>
public sealed class NvmlException : GpuOpsException
{
    public NvmlException(string errorId, ErrorCategory category, string message, NvmlReturn code, string function, object? target = null, string? recommendedAction = null)
        : base(errorId, category, message, target, null, recommendedAction)
    {
        Code = code;
        Function = function;
    }

    public NvmlReturn Code { get; }
    public string Function { get; }
}

/// <summary>Layouts from NVIDIA's nvml.h (checked against the header; sizes asserted in tests).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct NvmlPciInfo
{
    public fixed byte BusIdLegacy[16];
    public uint Domain, Bus, Device, PciDeviceId, PciSubSystemId;
    public fixed byte BusId[32];
}

/// <summary>nvmlMemory_v2_t: version, total, reserved, free, used (40 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NvmlMemoryV2
{
    public uint Version;
    public ulong Total, Reserved, Free, Used;
    public static uint StructVersion => (uint)Marshal.SizeOf<NvmlMemoryV2>() | (2u << 24);
}

[StructLayout(LayoutKind.Sequential)]
internal struct NvmlMemoryV1
{
    public ulong Total, Free, Used;
}

/// <summary>
/// nvmlProcessInfo_v2_t, the struct that GetComputeRunningProcesses_v3 fills: pid, usedGpuMemory,
/// gpuInstanceId, computeInstanceId (24 bytes). The R535 trap: one 12.2-era nvml.h appended
/// usedGpuCcProtectedMemory to nvmlProcessInfo_t (32 bytes) and was reverted; the driver ABI is 24 bytes.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NvmlProcessInfoV2
{
    public uint Pid;
    public ulong UsedGpuMemory;
    public uint GpuInstanceId;
    public uint ComputeInstanceId;
}

/// <summary>nvmlProcessInfo_v1_t (pid, usedGpuMemory: 16 bytes), for drivers without the _v3/_v2 calls.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NvmlProcessInfoV1
{
    public uint Pid;
    public ulong UsedGpuMemory;
}

/// <summary>nvmlFieldValue_t (40 bytes): fieldId, scopeId, timestamp, latencyUsec, valueType, nvmlReturn, value.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NvmlFieldValue
{
    public uint FieldId;
    public uint ScopeId;
    public long Timestamp;
    public long LatencyUsec;
    public int ValueType;
    public int NvmlReturn;
    public ulong Value; // nvmlValue_t union: read by ValueType

    public double AsDouble() => ValueType switch
    {
        0 => BitConverter.Int64BitsToDouble((long)Value),
        1 => (uint)Value,
        2 or 3 => Value,
        4 => (long)Value,
        5 => (int)(uint)Value,
        6 => (ushort)Value,
        _ => double.NaN,
    };
}

[StructLayout(LayoutKind.Sequential)]
internal struct NvmlUtilization
{
    public uint Gpu, Memory;
}

/// <summary>
/// The NVML entry points, resolved at run time from the library <see cref="NativeLibraries"/> found (never by
/// file name). Versioned symbols are probed newest first (<c>nvmlInit_v2</c>, <c>..._v3</c> then <c>_v2</c>, ...);
/// optional ones are null when the driver lacks them and the caller treats the value as unsupported.
/// </summary>
internal sealed unsafe class NvmlApi
{
    public const uint FieldPowerAverage = 185; // NVML_FI_DEV_POWER_AVERAGE
    public const uint FieldPowerInstant = 186; // NVML_FI_DEV_POWER_INSTANT

    private static readonly object Gate = new();
    private static NvmlApi? _current;

    private NvmlApi(IntPtr handle)
    {
        Handle = handle;
        Init = (delegate* unmanaged<int>)Pick("nvmlInit_v2", "nvmlInit");
        Shutdown = (delegate* unmanaged<int>)Pick("nvmlShutdown");
        ErrorStringFn = (delegate* unmanaged<int, IntPtr>)Opt("nvmlErrorString");
        SystemGetDriverVersion = (delegate* unmanaged<byte*, uint, int>)Opt("nvmlSystemGetDriverVersion");
        SystemGetCudaDriverVersion = (delegate* unmanaged<int*, int>)Opt("nvmlSystemGetCudaDriverVersion_v2", "nvmlSystemGetCudaDriverVersion");
        DeviceGetCount = (delegate* unmanaged<uint*, int>)Pick("nvmlDeviceGetCount_v2", "nvmlDeviceGetCount");
        DeviceGetHandleByIndex = (delegate* unmanaged<uint, IntPtr*, int>)Pick("nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex");
        DeviceGetHandleByUuid = (delegate* unmanaged<byte*, IntPtr*, int>)Opt("nvmlDeviceGetHandleByUUID");
        DeviceGetName = (delegate* unmanaged<IntPtr, byte*, uint, int>)Opt("nvmlDeviceGetName");
        DeviceGetUuid = (delegate* unmanaged<IntPtr, byte*, uint, int>)Opt("nvmlDeviceGetUUID");
        DeviceGetPciInfo = (delegate* unmanaged<IntPtr, NvmlPciInfo*, int>)Opt("nvmlDeviceGetPciInfo_v3", "nvmlDeviceGetPciInfo_v2");
        DeviceGetMemoryInfoV2 = (delegate* unmanaged<IntPtr, NvmlMemoryV2*, int>)Opt("nvmlDeviceGetMemoryInfo_v2");
        DeviceGetMemoryInfo = (delegate* unmanaged<IntPtr, NvmlMemoryV1*, int>)Opt("nvmlDeviceGetMemoryInfo");
        ProcessesV2Layout = Opt("nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetComputeRunningProcesses_v2") != IntPtr.Zero;
        DeviceGetComputeProcesses = (delegate* unmanaged<IntPtr, uint*, void*, int>)Opt("nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetComputeRunningProcesses_v2", "nvmlDeviceGetComputeRunningProcesses");
        DeviceGetGraphicsProcesses = ProcessesV2Layout
            ? (delegate* unmanaged<IntPtr, uint*, void*, int>)Opt("nvmlDeviceGetGraphicsRunningProcesses_v3", "nvmlDeviceGetGraphicsRunningProcesses_v2")
            : (delegate* unmanaged<IntPtr, uint*, void*, int>)Opt("nvmlDeviceGetGraphicsRunningProcesses");
        DeviceGetFieldValues = (delegate* unmanaged<IntPtr, int, NvmlFieldValue*, int>)Opt("nvmlDeviceGetFieldValues");
        DeviceGetPowerUsage = (delegate* unmanaged<IntPtr, uint*, int>)Opt("nvmlDeviceGetPowerUsage");
        DeviceGetTotalEnergyConsumption = (delegate* unmanaged<IntPtr, ulong*, int>)Opt("nvmlDeviceGetTotalEnergyConsumption");
        DeviceGetPowerLimit = (delegate* unmanaged<IntPtr, uint*, int>)Opt("nvmlDeviceGetPowerManagementLimit");
        DeviceGetPowerLimitConstraints = (delegate* unmanaged<IntPtr, uint*, uint*, int>)Opt("nvmlDeviceGetPowerManagementLimitConstraints");
        DeviceGetPowerDefaultLimit = (delegate* unmanaged<IntPtr, uint*, int>)Opt("nvmlDeviceGetPowerManagementDefaultLimit");
        DeviceGetEnforcedPowerLimit = (delegate* unmanaged<IntPtr, uint*, int>)Opt("nvmlDeviceGetEnforcedPowerLimit");
        DeviceSetPowerLimit = (delegate* unmanaged<IntPtr, uint, int>)Opt("nvmlDeviceSetPowerManagementLimit");
        DeviceGetClockInfo = (delegate* unmanaged<IntPtr, int, uint*, int>)Opt("nvmlDeviceGetClockInfo");
        DeviceGetMaxClockInfo = (delegate* unmanaged<IntPtr, int, uint*, int>)Opt("nvmlDeviceGetMaxClockInfo");
        DeviceGetClockEventReasons = (delegate* unmanaged<IntPtr, ulong*, int>)Opt("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons");
        DeviceGetTemperature = (delegate* unmanaged<IntPtr, int, uint*, int>)Opt("nvmlDeviceGetTemperature");
        DeviceGetUtilizationRates = (delegate* unmanaged<IntPtr, NvmlUtilization*, int>)Opt("nvmlDeviceGetUtilizationRates");
        DeviceGetPersistenceMode = (delegate* unmanaged<IntPtr, uint*, int>)Opt("nvmlDeviceGetPersistenceMode");
        DeviceGetMigMode = (delegate* unmanaged<IntPtr, uint*, uint*, int>)Opt("nvmlDeviceGetMigMode");
        DeviceGetEccMode = (delegate* unmanaged<IntPtr, uint*, uint*, int>)Opt("nvmlDeviceGetEccMode");
        DeviceGetCudaComputeCapability = (delegate* unmanaged<IntPtr, int*, int*, int>)Opt("nvmlDeviceGetCudaComputeCapability");
    }

    public IntPtr Handle { get; }
    public bool Initialized { get; private set; }

    /// <summary>True when the process-list calls use the 24-byte nvmlProcessInfo_v2_t (the _v3/_v2 calls).</summary>
    public bool ProcessesV2Layout { get; }

    public readonly delegate* unmanaged<int> Init;
    public readonly delegate* unmanaged<int> Shutdown;
    public readonly delegate* unmanaged<int, IntPtr> ErrorStringFn;
    public readonly delegate* unmanaged<byte*, uint, int> SystemGetDriverVersion;
    public readonly delegate* unmanaged<int*, int> SystemGetCudaDriverVersion;
    public readonly delegate* unmanaged<uint*, int> DeviceGetCount;
    public readonly delegate* unmanaged<uint, IntPtr*, int> DeviceGetHandleByIndex;
    public readonly delegate* unmanaged<byte*, IntPtr*, int> DeviceGetHandleByUuid;
    public readonly delegate* unmanaged<IntPtr, byte*, uint, int> DeviceGetName;
    public readonly delegate* unmanaged<IntPtr, byte*, uint, int> DeviceGetUuid;
    public readonly delegate* unmanaged<IntPtr, NvmlPciInfo*, int> DeviceGetPciInfo;
    public readonly delegate* unmanaged<IntPtr, NvmlMemoryV2*, int> DeviceGetMemoryInfoV2;
    public readonly delegate* unmanaged<IntPtr, NvmlMemoryV1*, int> DeviceGetMemoryInfo;
    public readonly delegate* unmanaged<IntPtr, uint*, void*, int> DeviceGetComputeProcesses;
    public readonly delegate* unmanaged<IntPtr, uint*, void*, int> DeviceGetGraphicsProcesses;
    public readonly delegate* unmanaged<IntPtr, int, NvmlFieldValue*, int> DeviceGetFieldValues;
    public readonly delegate* unmanaged<IntPtr, uint*, int> DeviceGetPowerUsage;
    public readonly delegate* unmanaged<IntPtr, ulong*, int> DeviceGetTotalEnergyConsumption;
    public readonly delegate* unmanaged<IntPtr, uint*, int> DeviceGetPowerLimit;
    public readonly delegate* unmanaged<IntPtr, uint*, uint*, int> DeviceGetPowerLimitConstraints;
    public readonly delegate* unmanaged<IntPtr, uint*, int> DeviceGetPowerDefaultLimit;
    public readonly delegate* unmanaged<IntPtr, uint*, int> DeviceGetEnforcedPowerLimit;
    public readonly delegate* unmanaged<IntPtr, uint, int> DeviceSetPowerLimit;
    public readonly delegate* unmanaged<IntPtr, int, uint*, int> DeviceGetClockInfo;
    public readonly delegate* unmanaged<IntPtr, int, uint*, int> DeviceGetMaxClockInfo;
    public readonly delegate* unmanaged<IntPtr, ulong*, int> DeviceGetClockEventReasons;
    public readonly delegate* unmanaged<IntPtr, int, uint*, int> DeviceGetTemperature;
    public readonly delegate* unmanaged<IntPtr, NvmlUtilization*, int> DeviceGetUtilizationRates;
    public readonly delegate* unmanaged<IntPtr, uint*, int> DeviceGetPersistenceMode;
    public readonly delegate* unmanaged<IntPtr, uint*, uint*, int> DeviceGetMigMode;
    public readonly delegate* unmanaged<IntPtr, uint*, uint*, int> DeviceGetEccMode;
    public readonly delegate* unmanaged<IntPtr, int*, int*, int> DeviceGetCudaComputeCapability;

    /// <summary>
    /// The initialized API for the NVML library currently resolved (a missing library throws
    /// <see cref="NativeLibraryNotFoundException"/> naming it). NVML stays initialized for the process.
    /// </summary>
    public static NvmlApi Get()
    {
        var handle = NativeLibraries.Require(NativeLibraryKind.Nvml);
        var api = _current;
        if (api is not null && api.Handle == handle && api.Initialized) return api;
        lock (Gate)
        {
            if (_current is null || _current.Handle != handle) _current = new NvmlApi(handle);
            if (!_current.Initialized)
            {
                int rc = _current.Init();
                if (rc != 0)
                {
                    var code = (NvmlReturn)rc;
                    throw new NvmlException("NvmlInitFailed", code == NvmlReturn.NoPermission ? ErrorCategory.PermissionDenied : ErrorCategory.ResourceUnavailable,
                        $"NVML ({NativeLibraries.DisplayName(NativeLibraryKind.Nvml)}) could not start: {_current.ErrorString(rc)}.", code, "nvmlInit_v2", null,
                        code == NvmlReturn.DriverNotLoaded ? "Load the NVIDIA kernel driver (is a GPU present? try nvidia-smi)." : null);
                }

                _current.Initialized = true;
            }

            return _current;
        }
    }

    /// <summary>nvmlErrorString's static text for a code.</summary>
    public string ErrorString(int rc)
    {
        if (ErrorStringFn != null)
        {
            var p = ErrorStringFn(rc);
            if (p != IntPtr.Zero) return Marshal.PtrToStringUTF8(p) ?? ((NvmlReturn)rc).ToString();
        }

        return ((NvmlReturn)rc).ToString();
    }

    private IntPtr Pick(params string[] symbols)
    {
        var p = Opt(symbols);
        if (p != IntPtr.Zero) return p;
        return NativeLibraries.RequireExport(NativeLibraryKind.Nvml, symbols[0]);
    }

    private IntPtr Opt(params string[] symbols)
    {
        foreach (var s in symbols)
        {
            if (NativeLibrary.TryGetExport(Handle, s, out var p)) return p;
        }

        return IntPtr.Zero;
    }
}
