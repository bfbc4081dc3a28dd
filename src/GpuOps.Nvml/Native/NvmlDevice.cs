using System.Runtime.InteropServices;
using System.Text;
using GpuOps.Core.Hosting;
using GpuOps.Core.Native;

namespace GpuOps.Nvml.Native;

/// <summary>
/// One GPU as NVML sees it: typed calls over <see cref="NvmlApi"/>. Required values throw
/// <see cref="NvmlException"/>; optional ones (<c>Try*</c>) return null when NVML says NOT_SUPPORTED (or the
/// driver lacks the function) and remember it, so a stream does not ask again. GPU_IS_LOST always throws.
/// </summary>
internal sealed unsafe class NvmlDevice
{
    private readonly NvmlApi _api;
    // Unsupported values, remembered so they are not asked again; shared by the sampling and energy-poller threads.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _unsupported = new();
    private string? _uuid;

    private NvmlDevice(NvmlApi api, int index, IntPtr handle)
    {
        _api = api;
        Index = index;
        Handle = handle;
    }

    public int Index { get; }
    public IntPtr Handle { get; }
    public string Uuid => _uuid ??= ReadString(_api.DeviceGetUuid, "nvmlDeviceGetUUID", 96);
    public string Name => ReadString(_api.DeviceGetName, "nvmlDeviceGetName", 96);
    internal NvmlApi Api => _api;

    // ---- discovery ----

    public static int Count()
    {
        var api = NvmlApi.Get();
        uint n = 0;
        Check(api, api.DeviceGetCount(&n), "nvmlDeviceGetCount_v2", null);
        return (int)n;
    }

    public static IReadOnlyList<NvmlDevice> All()
    {
        var api = NvmlApi.Get();
        int n = Count();
        var list = new List<NvmlDevice>(n);
        for (int i = 0; i < n; i++) list.Add(ByIndex(i));
        return list;
    }

    public static NvmlDevice ByIndex(int index)
    {
        var api = NvmlApi.Get();
        int n = Count();
        if (index < 0 || index >= n)
        {
            throw new GpuOpsException("GpuNotFound", ErrorCategory.ObjectNotFound,
                n == 0 ? $"There is no GPU with index {index}: NVML sees no GPUs." : $"There is no GPU with index {index}: valid indices are 0 to {n - 1}.",
                index, null, "List the GPUs with Get-Gpu (gpuops gpu list).");
        }

        IntPtr h;
        Check(api, api.DeviceGetHandleByIndex((uint)index, &h), "nvmlDeviceGetHandleByIndex_v2", index);
        return new NvmlDevice(api, index, h);
    }

    public static NvmlDevice ByUuid(string uuid)
    {
        if (string.IsNullOrWhiteSpace(uuid)) throw GpuOpsException.InvalidArgument("InvalidUuid", "The GPU UUID is empty.", uuid);
        foreach (var d in All())
        {
            if (string.Equals(d.Uuid, uuid.Trim(), StringComparison.OrdinalIgnoreCase)) return d;
        }

        throw new GpuOpsException("GpuNotFound", ErrorCategory.ObjectNotFound, $"There is no GPU with UUID '{uuid}'.", uuid, null,
            "List the GPUs and their UUIDs with Get-Gpu (gpuops gpu list).");
    }

    /// <summary>
    /// The GPUs selected by index and/or UUID (none given: all), in index order, without duplicates. An index or UUID
    /// that names no GPU throws, or, with <paramref name="missing"/> (the read-only operations), is reported there and
    /// the GPUs that exist are still returned.
    /// </summary>
    /// <summary>A warning where every GPU was asked for and NVML sees none (an empty list is otherwise silent).</summary>
    public static void WarnIfNone(GpuOps.Core.Hosting.IOperationHost host, IReadOnlyList<NvmlDevice> devices, IReadOnlyList<int>? indices, IReadOnlyList<string>? uuids)
    {
        if (devices.Count == 0 && indices is null && uuids is null) host.WriteWarning("NVML sees no GPUs (the driver is loaded and reports 0 devices).");
    }

    public static IReadOnlyList<NvmlDevice> Select(IReadOnlyList<int>? indices, IReadOnlyList<string>? uuids, Action<GpuOpsException>? missing = null)
    {
        bool any = indices is { Count: > 0 } || uuids is { Count: > 0 };
        if (!any) return All();
        var list = new List<NvmlDevice>();
        void Add(Func<NvmlDevice> find)
        {
            try
            {
                list.Add(find());
            }
            catch (GpuOpsException ex) when (missing is not null && ex.ErrorId is "GpuNotFound" or "InvalidUuid")
            {
                missing(ex);
            }
        }

        foreach (var i in indices ?? []) Add(() => ByIndex(i));
        foreach (var u in uuids ?? []) Add(() => ByUuid(u));
        return list.GroupBy(d => d.Index).Select(g => g.First()).OrderBy(d => d.Index).ToList();
    }

    // ---- system ----

    public static string? DriverVersion()
    {
        var api = NvmlApi.Get();
        if (api.SystemGetDriverVersion == null) return null;
        byte* buf = stackalloc byte[96];
        return api.SystemGetDriverVersion(buf, 96) == 0 ? Marshal.PtrToStringUTF8((IntPtr)buf) : null;
    }

    /// <summary>"13.0" from nvmlSystemGetCudaDriverVersion_v2, or null.</summary>
    public static string? CudaDriverVersion()
    {
        var api = NvmlApi.Get();
        if (api.SystemGetCudaDriverVersion == null) return null;
        int v = 0;
        return api.SystemGetCudaDriverVersion(&v) == 0 ? $"{v / 1000}.{v % 1000 / 10}" : null;
    }

    // ---- device values ----

    public string? PciBusId()
    {
        if (Skip("pci", _api.DeviceGetPciInfo == null)) return null;
        NvmlPciInfo pci;
        if (!Opt(_api.DeviceGetPciInfo(Handle, &pci), "pci", "nvmlDeviceGetPciInfo_v3")) return null;
        return Marshal.PtrToStringUTF8((IntPtr)pci.BusId);
    }

    public (ulong Total, ulong Used, ulong Free)? Memory()
    {
        if (_api.DeviceGetMemoryInfoV2 != null && !_unsupported.ContainsKey("mem2"))
        {
            var m = new NvmlMemoryV2 { Version = NvmlMemoryV2.StructVersion };
            int rc = _api.DeviceGetMemoryInfoV2(Handle, &m);
            if (rc == 0) return (m.Total, m.Used, m.Free);
            if (rc is not ((int)NvmlReturn.NotSupported or (int)NvmlReturn.ArgumentVersionMismatch or (int)NvmlReturn.FunctionNotFound))
                Check(_api, rc, "nvmlDeviceGetMemoryInfo_v2", Index);
            _unsupported.TryAdd("mem2", true);
        }

        if (Skip("mem1", _api.DeviceGetMemoryInfo == null)) return null;
        NvmlMemoryV1 m1;
        return Opt(_api.DeviceGetMemoryInfo(Handle, &m1), "mem1", "nvmlDeviceGetMemoryInfo") ? (m1.Total, m1.Used, m1.Free) : null;
    }

    public string? ComputeCapability()
    {
        if (Skip("cc", _api.DeviceGetCudaComputeCapability == null)) return null;
        int major, minor;
        return Opt(_api.DeviceGetCudaComputeCapability(Handle, &major, &minor), "cc", "nvmlDeviceGetCudaComputeCapability") ? $"{major}.{minor}" : null;
    }

    public uint? PowerLimitMilliwatts() => U32(_api.DeviceGetPowerLimit, "limit", "nvmlDeviceGetPowerManagementLimit");
    public uint? DefaultPowerLimitMilliwatts() => U32(_api.DeviceGetPowerDefaultLimit, "default", "nvmlDeviceGetPowerManagementDefaultLimit");
    public uint? EnforcedPowerLimitMilliwatts() => U32(_api.DeviceGetEnforcedPowerLimit, "enforced", "nvmlDeviceGetEnforcedPowerLimit");
    public uint? PowerUsageMilliwatts() => U32(_api.DeviceGetPowerUsage, "usage", "nvmlDeviceGetPowerUsage");

    public (uint Min, uint Max)? PowerLimitConstraintsMilliwatts()
    {
        if (Skip("constraints", _api.DeviceGetPowerLimitConstraints == null)) return null;
        uint min, max;
        return Opt(_api.DeviceGetPowerLimitConstraints(Handle, &min, &max), "constraints", "nvmlDeviceGetPowerManagementLimitConstraints") ? (min, max) : null;
    }

    public void SetPowerLimitMilliwatts(uint milliwatts)
    {
        if (_api.DeviceSetPowerLimit == null)
        {
            throw new GpuOpsException("NotSupported", ErrorCategory.NotImplemented, $"GPU {Index}: this NVML has no nvmlDeviceSetPowerManagementLimit.", Index);
        }

        int rc = _api.DeviceSetPowerLimit(Handle, milliwatts);
        if (rc == (int)NvmlReturn.NoPermission)
        {
            throw new NvmlException("PowerLimitPermissionDenied", ErrorCategory.PermissionDenied,
                $"GPU {Index}: setting the power limit needs administrator rights (NVML: {_api.ErrorString(rc)}).",
                NvmlReturn.NoPermission, "nvmlDeviceSetPowerManagementLimit", Index,
                "Run as root (Linux) or Administrator (Windows); in a container add the SYS_ADMIN capability; enable persistence mode (nvidia-smi -pm 1) so the limit survives when no process holds the GPU.");
        }

        Check(_api, rc, "nvmlDeviceSetPowerManagementLimit", Index);
    }

    /// <summary>Total energy since the driver loaded, in millijoules (Volta and newer).</summary>
    public ulong? EnergyMillijoules()
    {
        if (Skip("energy", _api.DeviceGetTotalEnergyConsumption == null)) return null;
        ulong mj;
        return Opt(_api.DeviceGetTotalEnergyConsumption(Handle, &mj), "energy", "nvmlDeviceGetTotalEnergyConsumption") ? mj : null;
    }

    /// <summary>Instant (NVML_FI_DEV_POWER_INSTANT) and averaged (NVML_FI_DEV_POWER_AVERAGE) power in one call, in milliwatts.</summary>
    public (double? Instant, double? Average) PowerFields()
    {
        if (Skip("fields", _api.DeviceGetFieldValues == null)) return (null, null);
        NvmlFieldValue* v = stackalloc NvmlFieldValue[2];
        v[0] = new NvmlFieldValue { FieldId = NvmlApi.FieldPowerInstant };
        v[1] = new NvmlFieldValue { FieldId = NvmlApi.FieldPowerAverage };
        if (!Opt(_api.DeviceGetFieldValues(Handle, 2, v), "fields", "nvmlDeviceGetFieldValues")) return (null, null);
        double? instant = v[0].NvmlReturn == 0 ? v[0].AsDouble() : null;
        double? average = v[1].NvmlReturn == 0 ? v[1].AsDouble() : null;
        if (v[0].NvmlReturn == (int)NvmlReturn.GpuIsLost || v[1].NvmlReturn == (int)NvmlReturn.GpuIsLost)
            Check(_api, (int)NvmlReturn.GpuIsLost, "nvmlDeviceGetFieldValues", Index);
        if (instant is null && average is null) _unsupported.TryAdd("fields", true);
        return (instant, average);
    }

    public uint? ClockMHz(int type) => type switch
    {
        1 => Clock(_api.DeviceGetClockInfo, 1, "clk.sm", "nvmlDeviceGetClockInfo"),
        2 => Clock(_api.DeviceGetClockInfo, 2, "clk.mem", "nvmlDeviceGetClockInfo"),
        _ => null,
    };

    public uint? MaxClockMHz(int type) => type switch
    {
        1 => Clock(_api.DeviceGetMaxClockInfo, 1, "max.sm", "nvmlDeviceGetMaxClockInfo"),
        2 => Clock(_api.DeviceGetMaxClockInfo, 2, "max.mem", "nvmlDeviceGetMaxClockInfo"),
        _ => null,
    };

    public ulong? ClockEventReasons()
    {
        if (Skip("reasons", _api.DeviceGetClockEventReasons == null)) return null;
        ulong r;
        return Opt(_api.DeviceGetClockEventReasons(Handle, &r), "reasons", "nvmlDeviceGetCurrentClocksEventReasons") ? r : null;
    }

    public uint? TemperatureC()
    {
        if (Skip("temp", _api.DeviceGetTemperature == null)) return null;
        uint t;
        return Opt(_api.DeviceGetTemperature(Handle, 0, &t), "temp", "nvmlDeviceGetTemperature") ? t : null;
    }

    public (uint Gpu, uint Memory)? Utilization()
    {
        if (Skip("util", _api.DeviceGetUtilizationRates == null)) return null;
        NvmlUtilization u;
        return Opt(_api.DeviceGetUtilizationRates(Handle, &u), "util", "nvmlDeviceGetUtilizationRates") ? (u.Gpu, u.Memory) : null;
    }

    public bool? PersistenceMode() => Mode(_api.DeviceGetPersistenceMode, "persist", "nvmlDeviceGetPersistenceMode");

    public bool? MigMode()
    {
        if (Skip("mig", _api.DeviceGetMigMode == null)) return null;
        uint c, p;
        return Opt(_api.DeviceGetMigMode(Handle, &c, &p), "mig", "nvmlDeviceGetMigMode") ? c != 0 : null;
    }

    public bool? EccEnabled()
    {
        if (Skip("ecc", _api.DeviceGetEccMode == null)) return null;
        uint c, p;
        return Opt(_api.DeviceGetEccMode(Handle, &c, &p), "ecc", "nvmlDeviceGetEccMode") ? c != 0 : null;
    }

    /// <summary>Running processes (compute and graphics): pid, bytes used, MIG instance ids (null when MIG is off).</summary>
    public IReadOnlyList<(uint Pid, ulong? UsedBytes, uint? GpuInstanceId, uint? ComputeInstanceId, string Type)> Processes()
    {
        var list = new List<(uint, ulong?, uint?, uint?, string)>();
        Collect(_api.DeviceGetComputeProcesses, "Compute", "nvmlDeviceGetComputeRunningProcesses_v3", list);
        Collect(_api.DeviceGetGraphicsProcesses, "Graphics", "nvmlDeviceGetGraphicsRunningProcesses_v3", list);
        return list;
    }

    private void Collect(delegate* unmanaged<IntPtr, uint*, void*, int> fn, string type, string name, List<(uint, ulong?, uint?, uint?, string)> list)
    {
        if (fn == null) return;
        uint count = 0;
        for (int attempt = 0; attempt < 4; attempt++)
        {
            int rc;
            int stride = _api.ProcessesV2Layout ? sizeof(NvmlProcessInfoV2) : sizeof(NvmlProcessInfoV1);
            uint capacity = Math.Max(count, 1) + 8;
            var managed = new byte[capacity * stride];
            fixed (byte* p = managed)
            {
                count = capacity;
                rc = fn(Handle, &count, p);
                if (rc == (int)NvmlReturn.InsufficientSize) continue;
                if (rc == (int)NvmlReturn.NotSupported) return;
                Check(_api, rc, name, Index);
                for (int i = 0; i < count; i++)
                {
                    if (_api.ProcessesV2Layout)
                    {
                        var e = ((NvmlProcessInfoV2*)p)[i];
                        list.Add((e.Pid, Bytes(e.UsedGpuMemory), e.GpuInstanceId == uint.MaxValue ? null : e.GpuInstanceId,
                            e.ComputeInstanceId == uint.MaxValue ? null : e.ComputeInstanceId, type));
                    }
                    else
                    {
                        var e = ((NvmlProcessInfoV1*)p)[i];
                        list.Add((e.Pid, Bytes(e.UsedGpuMemory), null, null, type));
                    }
                }

                return;
            }
        }
    }

    // NVML_VALUE_NOT_AVAILABLE (WDDM) is ~0ULL.
    private static ulong? Bytes(ulong v) => v == ulong.MaxValue ? null : v;

    // ---- helpers ----

    private uint? U32(delegate* unmanaged<IntPtr, uint*, int> fn, string key, string name)
    {
        if (Skip(key, fn == null)) return null;
        uint v;
        return Opt(fn(Handle, &v), key, name) ? v : null;
    }

    private uint? Clock(delegate* unmanaged<IntPtr, int, uint*, int> fn, int type, string key, string name)
    {
        if (Skip(key, fn == null)) return null;
        uint v;
        return Opt(fn(Handle, type, &v), key, name) ? v : null;
    }

    private bool? Mode(delegate* unmanaged<IntPtr, uint*, int> fn, string key, string name)
    {
        if (Skip(key, fn == null)) return null;
        uint v;
        return Opt(fn(Handle, &v), key, name) ? v != 0 : null;
    }

    private bool Skip(string key, bool missing)
    {
        if (missing) return true;
        return _unsupported.ContainsKey(key);
    }

    /// <summary>True on success; false (remembered) when not supported; throws otherwise.</summary>
    private bool Opt(int rc, string key, string function)
    {
        if (rc == 0) return true;
        if (rc is (int)NvmlReturn.NotSupported or (int)NvmlReturn.FunctionNotFound or (int)NvmlReturn.NoPermission or (int)NvmlReturn.NoData)
        {
            if (rc != (int)NvmlReturn.NoData) _unsupported.TryAdd(key, true);
            return false;
        }

        Check(_api, rc, function, Index);
        return true;
    }

    private string ReadString(delegate* unmanaged<IntPtr, byte*, uint, int> fn, string function, int size)
    {
        if (fn == null) return string.Empty;
        byte* buf = stackalloc byte[size];
        Check(_api, fn(Handle, buf, (uint)size), function, Index);
        return Marshal.PtrToStringUTF8((IntPtr)buf) ?? string.Empty;
    }

    internal static void Check(NvmlApi api, int rc, string function, object? target)
    {
        if (rc == 0) return;
        var code = Enum.IsDefined(typeof(NvmlReturn), rc) ? (NvmlReturn)rc : NvmlReturn.Unknown;
        string where = target is int i ? $"GPU {i}: " : string.Empty;
        string text = api.ErrorString(rc);
        throw code switch
        {
            NvmlReturn.GpuIsLost => new NvmlException("GpuLost", ErrorCategory.DeviceError,
                $"{where}the GPU has fallen off the bus ({function}: {text}).", code, function, target,
                "Check the GPU with nvidia-smi and the kernel log (dmesg: Xid errors); it needs a reset or a reboot."),
            NvmlReturn.NoPermission => new NvmlException("NvmlPermissionDenied", ErrorCategory.PermissionDenied,
                $"{where}{function} needs more rights ({text}).", code, function, target, "Run as root/Administrator."),
            NvmlReturn.InvalidArgument => new NvmlException("NvmlInvalidArgument", ErrorCategory.InvalidArgument,
                $"{where}{function} refused its arguments ({text}).", code, function, target),
            NvmlReturn.NotSupported => new NvmlException("NotSupported", ErrorCategory.NotImplemented,
                $"{where}{function} is not supported on this GPU ({text}).", code, function, target),
            _ => new NvmlException("NvmlError", ErrorCategory.DeviceError, $"{where}{function} failed: {text} ({rc}).", code, function, target),
        };
    }
}
