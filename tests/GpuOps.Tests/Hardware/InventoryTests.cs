using System.Runtime.InteropServices;
using GpuOps.Core.Hosting;
using GpuOps.Core.Native;
using GpuOps.Nvml;
using GpuOps.Nvml.Native;
using Xunit;

namespace GpuOps.Tests.Hardware;

public class NvmlLayoutTests
{
    [Fact]
    public void Struct_layouts_match_nvml_h()
    {
        Assert.Equal(68, Marshal.SizeOf<NvmlPciInfo>());
        Assert.Equal(36, (int)Marshal.OffsetOf<NvmlPciInfo>(nameof(NvmlPciInfo.BusId)));
        Assert.Equal(40, Marshal.SizeOf<NvmlMemoryV2>());
        Assert.Equal(8, (int)Marshal.OffsetOf<NvmlMemoryV2>(nameof(NvmlMemoryV2.Total)));
        Assert.Equal(40u | (2u << 24), NvmlMemoryV2.StructVersion);
        // The R535 trap: GetComputeRunningProcesses_v3 fills 24-byte nvmlProcessInfo_v2_t entries
        // (pid, usedGpuMemory, gpuInstanceId, computeInstanceId), not 32-byte ones with usedGpuCcProtectedMemory.
        Assert.Equal(24, Marshal.SizeOf<NvmlProcessInfoV2>());
        Assert.Equal(8, (int)Marshal.OffsetOf<NvmlProcessInfoV2>(nameof(NvmlProcessInfoV2.UsedGpuMemory)));
        Assert.Equal(16, (int)Marshal.OffsetOf<NvmlProcessInfoV2>(nameof(NvmlProcessInfoV2.GpuInstanceId)));
        Assert.Equal(16, Marshal.SizeOf<NvmlProcessInfoV1>());
        Assert.Equal(40, Marshal.SizeOf<NvmlFieldValue>());
        Assert.Equal(24, (int)Marshal.OffsetOf<NvmlFieldValue>(nameof(NvmlFieldValue.ValueType)));
        Assert.Equal(28, (int)Marshal.OffsetOf<NvmlFieldValue>(nameof(NvmlFieldValue.NvmlReturn)));
        Assert.Equal(32, (int)Marshal.OffsetOf<NvmlFieldValue>(nameof(NvmlFieldValue.Value)));
        Assert.Equal(8, Marshal.SizeOf<NvmlUtilization>());
    }

    [Fact]
    public void Field_values_decode_by_value_type()
    {
        Assert.Equal(250.5, new NvmlFieldValue { ValueType = 0, Value = (ulong)BitConverter.DoubleToInt64Bits(250.5) }.AsDouble());
        Assert.Equal(123456.0, new NvmlFieldValue { ValueType = 1, Value = 123456 }.AsDouble());
        Assert.Equal(-5.0, new NvmlFieldValue { ValueType = 4, Value = unchecked((ulong)-5L) }.AsDouble());
        Assert.Equal(-7.0, new NvmlFieldValue { ValueType = 5, Value = unchecked((uint)-7) }.AsDouble());
    }

    [Theory]
    [InlineData(0ul, "None")]
    [InlineData(0x1ul, "GpuIdle")]
    [InlineData(0x4ul | 0x8ul, "SwPowerCap, HwSlowdown")]
    [InlineData(0x40ul | 0x80ul, "HwThermalSlowdown, HwPowerBrakeSlowdown")]
    [InlineData(0x4ul | 0x10000ul, "SwPowerCap, 0x10000")]
    public void Clock_event_reasons_are_decoded(ulong mask, string expected) => Assert.Equal(expected, ClockEventReasons.Decode(mask));
}

[Collection("NativeEnvironment")]
public class InventoryTests
{
    [Fact]
    public void Get_gpu_lists_two_gpus_with_the_fake_values()
    {
        using var fake = new FakeNvml("gpu1.limit_mw=450000", "gpu1.name=Fake B", "gpu0.procs=");
        var host = new RecordingHost();
        new GetGpuOperation().Execute(host);
        var gpus = host.ObjectsOf<GpuInfo>().ToList();
        Assert.Equal(2, gpus.Count);
        Assert.Equal(new[] { 0, 1 }, gpus.Select(g => g.Index));
        var g0 = gpus[0];
        Assert.Equal("NVIDIA Fake H100 0", g0.Name);
        Assert.Equal("GPU-fa4e0000-0000-4000-8000-000000000000", g0.Uuid);
        Assert.Equal("00000000:18:00.0", g0.PciBusId);
        Assert.Equal("580.00.01", g0.DriverVersion);
        Assert.Equal("13.0", g0.CudaDriverVersion);
        Assert.Equal("9.0", g0.ComputeCapability);
        Assert.Equal(85899345920L, g0.MemoryTotalBytes);
        Assert.Equal(1073741824L, g0.MemoryUsedBytes);
        Assert.Equal(85899345920L - 1073741824L, g0.MemoryFreeBytes);
        Assert.Equal(700.0, g0.PowerLimitWatts);
        Assert.Equal(200.0, g0.MinPowerLimitWatts);
        Assert.Equal(700.0, g0.MaxPowerLimitWatts);
        Assert.Equal(1755, g0.SmClockMHz);
        Assert.Equal(1980, g0.MaxSmClockMHz);
        Assert.Equal(40, g0.TemperatureC);
        Assert.True(g0.PersistenceMode);
        Assert.False(g0.MigMode);
        Assert.True(g0.EccEnabled);
        Assert.Equal("Fake B", gpus[1].Name);
        Assert.Equal(450.0, gpus[1].PowerLimitWatts);
        Assert.Empty(host.Errors);
    }

    [Fact]
    public void Selection_by_index_and_uuid()
    {
        using var fake = new FakeNvml();
        var host = new RecordingHost();
        new GetGpuOperation { Index = [1] }.Execute(host);
        new GetGpuOperation { Uuid = ["gpu-fa4e0000-0000-4000-8000-000000000000"] }.Execute(host);
        Assert.Equal(new[] { 1, 0 }, host.ObjectsOf<GpuInfo>().Select(g => g.Index));
    }

    [Fact]
    public void Unknown_index_or_uuid_is_a_clear_error_for_that_one_and_the_others_are_listed()
    {
        using var fake = new FakeNvml();
        var host = new RecordingHost();
        new GetGpuOperation { Index = [0, 5, 1] }.Execute(host);
        Assert.Equal(new[] { 0, 1 }, host.ObjectsOf<GpuInfo>().Select(g => g.Index));
        var e = Assert.Single(host.Errors);
        Assert.Equal("GpuNotFound", e.ErrorId);
        Assert.Equal(ErrorCategory.ObjectNotFound, e.Category);
        Assert.Contains("valid indices are 0 to 1", e.Message);

        var uuids = new RecordingHost();
        new GetGpuOperation { Uuid = ["GPU-nope", "GPU-fa4e0000-0000-4000-8000-000000000001"], Index = [-1] }.Execute(uuids);
        Assert.Equal(new[] { 1 }, uuids.ObjectsOf<GpuInfo>().Select(g => g.Index));
        Assert.Equal(2, uuids.Errors.Count);
        Assert.All(uuids.Errors, x => Assert.Equal("GpuNotFound", x.ErrorId));
        Assert.Contains(uuids.Errors, x => x.Message.Contains("GPU-nope"));

        // the same for power limits and telemetry (reads); a state change refuses the whole command instead
        var limits = new RecordingHost();
        new GetPowerLimitOperation { Index = [7, 1] }.Execute(limits);
        Assert.Equal(1, Assert.Single(limits.ObjectsOf<GpuPowerLimit>()).GpuIndex);
        Assert.Single(limits.Errors);
        var ex = Assert.Throws<GpuOpsException>(() => new SetPowerLimitOperation { Index = [1, 7], Watts = 300 }.Execute(new RecordingHost()));
        Assert.Equal("GpuNotFound", ex.ErrorId);
        Assert.Equal(700000u, fake.LimitMilliwatts(1));
    }

    [Fact]
    public void Not_supported_values_are_null_not_errors()
    {
        using var fake = new FakeNvml("gpu0.mig=unsupported", "gpu0.ecc=unsupported", "gpu0.persistence=unsupported");
        var host = new RecordingHost();
        new GetGpuOperation { Index = [0] }.Execute(host);
        var g = Assert.Single(host.ObjectsOf<GpuInfo>());
        Assert.Null(g.MigMode);
        Assert.Null(g.EccEnabled);
        Assert.Null(g.PersistenceMode);
        Assert.Equal(700.0, g.PowerLimitWatts);
        Assert.Empty(host.Errors);
    }

    [Fact]
    public void Processes_are_read_with_the_24_byte_v3_layout()
    {
        int me = Environment.ProcessId;
        using var fake = new FakeNvml($"gpu0.procs={me}:104857600,4242:2097152,4343:3145728", "gpu1.procs=");
        var host = new RecordingHost();
        new GetGpuProcessOperation().Execute(host);
        var procs = host.ObjectsOf<GpuProcessInfo>().ToList();
        // With a wrong (32-byte) stride the second and third entries would come back garbled.
        Assert.Equal(new[] { me, 4242, 4343 }, procs.Select(p => p.ProcessId));
        Assert.Equal(new long?[] { 104857600, 2097152, 3145728 }, procs.Select(p => p.UsedMemoryBytes));
        Assert.All(procs, p => Assert.Equal(0, p.GpuIndex));
        Assert.All(procs, p => Assert.Null(p.GpuInstanceId));
        Assert.All(procs, p => Assert.Equal("Compute", p.Type));
        Assert.False(string.IsNullOrEmpty(procs[0].ProcessName));
    }

    [Fact]
    public void A_missing_library_names_it_in_one_line()
    {
        var old = Environment.GetEnvironmentVariable("GPUOPS_NVML_LIBRARY");
        try
        {
            Environment.SetEnvironmentVariable("GPUOPS_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1");
            NativeLibraries.ResetForTests();
            var ex = Assert.Throws<NativeLibraryNotFoundException>(() => new GetGpuOperation().Execute(new RecordingHost()));
            Assert.Contains("libnvidia-ml.so.1", ex.Message);
            Assert.DoesNotContain('\n', ex.Message);
            Assert.Null(EnergyWindow.TryStart());
        }
        finally
        {
            Environment.SetEnvironmentVariable("GPUOPS_NVML_LIBRARY", old);
            NativeLibraries.ResetForTests();
        }
    }

    [Fact]
    public void A_driver_that_is_not_loaded_gives_a_clear_error_and_no_energy_window()
    {
        using var fake = new FakeNvml("init=driver_not_loaded");
        // A copy of the fake is a new library handle, so NVML is initialized afresh (and fails).
        var copy = Path.Combine(fake.Root, "libnvidia-ml-copy.so");
        File.Copy(fake.LibraryPath, copy);
        Environment.SetEnvironmentVariable("GPUOPS_NVML_LIBRARY", copy);
        NativeLibraries.ResetForTests();
        fake.Attach();
        var ex = Assert.Throws<NvmlException>(() => new GetGpuOperation().Execute(new RecordingHost()));
        Assert.Equal("NvmlInitFailed", ex.ErrorId);
        Assert.Contains("Driver Not Loaded", ex.Message);
        Assert.Null(EnergyWindow.TryStart());
        // Get-GpuOpsInfo / gpuops info: the library is there, but says why it cannot be used
        var host = new RecordingHost();
        new GpuOps.Core.Operations.GetInfoOperation().Execute(host);
        var nvml = host.ObjectsOf<GpuOps.Core.Operations.GpuOpsInfo>().Single().Libraries.Single(l => l.Library == NativeLibraries.DisplayName(NativeLibraryKind.Nvml));
        Assert.True(nvml.Found);
        Assert.Contains("Driver Not Loaded", nvml.Error);
    }
}
