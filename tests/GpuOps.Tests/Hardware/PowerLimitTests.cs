using System.Text.Json;
using GpuOps.Core.Hosting;
using GpuOps.Nvml;
using Xunit;

namespace GpuOps.Tests.Hardware;

[Collection("NativeEnvironment")]
public class PowerLimitTests
{
    private const string Uuid0 = "GPU-fa4e0000-0000-4000-8000-000000000000";

    [Fact]
    public void Get_reports_limits_and_no_journal()
    {
        using var fake = new FakeNvml("gpu1.limit_mw=500000", "gpu1.default_mw=600000");
        var host = new RecordingHost();
        new GetPowerLimitOperation().Execute(host);
        var l = host.ObjectsOf<GpuPowerLimit>().ToList();
        Assert.Equal(2, l.Count);
        Assert.Equal(500.0, l[1].PowerLimitWatts);
        Assert.Equal(600.0, l[1].DefaultWatts);
        Assert.Equal(200.0, l[1].MinWatts);
        Assert.Equal(700.0, l[1].MaxWatts);
        Assert.Null(l[1].JournaledOriginalWatts);
    }

    [Fact]
    public void Get_reports_a_gpu_without_power_management_as_an_error_and_lists_the_others()
    {
        using var fake = new FakeNvml("gpu0.limit_mw=unsupported");
        var host = new RecordingHost();
        new GetPowerLimitOperation().Execute(host);
        Assert.Equal(1, Assert.Single(host.ObjectsOf<GpuPowerLimit>()).GpuIndex);
        Assert.Equal("NotSupported", Assert.Single(host.Errors).ErrorId);
    }

    [Fact]
    public void Set_refuses_a_gpu_whose_current_limit_cannot_be_read_before_changing_any()
    {
        using var fake = new FakeNvml("gpu1.limit_mw=unsupported");
        var ex = Assert.Throws<GpuOpsException>(() => new SetPowerLimitOperation { Index = [0, 1], Watts = 500 }.Execute(new RecordingHost()));
        Assert.Equal("NotSupported", ex.ErrorId);
        Assert.Contains("current power limit", ex.Message);
        Assert.Null(fake.Get("calls.set"));
        Assert.Equal(700000u, fake.LimitMilliwatts(0));
        Assert.Null(PowerLimitJournal.Read(Uuid0));
        Assert.Null(PowerLimitJournal.Read("GPU-fa4e0000-0000-4000-8000-000000000001"));
    }

    [Fact]
    public void A_refused_set_takes_back_its_journal_entry_and_the_next_gpu_is_still_set()
    {
        using var fake = new FakeNvml("gpu0.set=no_permission");
        var host = new RecordingHost();
        new SetPowerLimitOperation { Index = [0, 1], Watts = 400, PassThru = true }.Execute(host);
        var e = Assert.Single(host.Errors);
        Assert.Equal(700000u, fake.LimitMilliwatts(0));
        Assert.Null(PowerLimitJournal.Read(Uuid0));   // GpuOps never changed GPU 0: no original to restore
        Assert.Equal(400000u, fake.LimitMilliwatts(1));
        Assert.Equal(1, Assert.Single(host.ObjectsOf<GpuPowerLimit>()).GpuIndex);
        Assert.NotNull(PowerLimitJournal.Read("GPU-fa4e0000-0000-4000-8000-000000000001"));
    }

    [Fact]
    public void Set_writes_the_journal_then_changes_the_limit_and_restore_puts_back_the_original()
    {
        using var fake = new FakeNvml("gpu0.limit_mw=650000");
        var host = new RecordingHost();
        new SetPowerLimitOperation { Index = [0], Watts = 400, PassThru = true }.Execute(host);
        Assert.Equal(400000u, fake.LimitMilliwatts(0));
        Assert.Equal(700000u, fake.LimitMilliwatts(1));
        var journal = PowerLimitJournal.Read(Uuid0);
        Assert.NotNull(journal);
        Assert.Equal(650000u, journal.OriginalMilliwatts);
        Assert.StartsWith(fake.StateDir, PowerLimitJournal.PathFor(Uuid0));
        var call = Assert.Single(host.ShouldProcessCalls);
        Assert.Equal(ConfirmImpact.High, call.Impact);
        Assert.Contains("650 W to 400 W", call.Action);
        var passed = Assert.Single(host.ObjectsOf<GpuPowerLimit>());
        Assert.Equal(400.0, passed.PowerLimitWatts);
        Assert.Equal(650.0, passed.JournaledOriginalWatts);

        // A second change keeps the first original.
        new SetPowerLimitOperation { Index = [0], Percent = 50 }.Execute(new RecordingHost());
        Assert.Equal(350000u, fake.LimitMilliwatts(0));
        Assert.Equal(650000u, PowerLimitJournal.Read(Uuid0)!.OriginalMilliwatts);

        var restore = new RecordingHost();
        new RestorePowerLimitOperation { PassThru = true }.Execute(restore);
        Assert.Equal(650000u, fake.LimitMilliwatts(0));
        Assert.Null(PowerLimitJournal.Read(Uuid0));
        Assert.Equal(650.0, Assert.Single(restore.ObjectsOf<GpuPowerLimit>()).PowerLimitWatts);
        Assert.Empty(Directory.GetFiles(fake.JournalDir, "*.tmp"));
    }

    [Fact]
    public void A_denied_change_says_how_to_get_the_right_and_leaves_no_journal_entry()
    {
        using var fake = new FakeNvml("gpu0.set=no_permission");
        var host = new RecordingHost();
        new SetPowerLimitOperation { Index = [0], Watts = 300 }.Execute(host);
        var ex = Assert.IsType<Nvml.Native.NvmlException>(Assert.Single(host.Errors).Exception);
        Assert.Equal("PowerLimitPermissionDenied", ex.ErrorId);
        Assert.Equal(ErrorCategory.PermissionDenied, ex.Category);
        Assert.Contains("administrator", ex.Message);
        Assert.Contains("root", ex.RecommendedAction);
        Assert.Contains("Administrator", ex.RecommendedAction);
        Assert.Contains("SYS_ADMIN", ex.RecommendedAction);
        Assert.Contains("persistence mode", ex.RecommendedAction);
        Assert.Equal(700000u, fake.LimitMilliwatts(0));
        // Journaled before the attempt (a crash during the change still leaves the original), and taken back once the
        // change was refused: GpuOps never changed this GPU, so there is nothing to restore.
        Assert.False(File.Exists(PowerLimitJournal.PathFor(Uuid0)));

        // an entry from an earlier change stays as it was, also when -ResetJournal asked to replace it
        fake.Set("gpu0.set=ok");
        new SetPowerLimitOperation { Index = [0], Watts = 500 }.Execute(new RecordingHost());
        Assert.Equal(700000u, PowerLimitJournal.Read(Uuid0)!.OriginalMilliwatts);
        fake.Set("gpu0.set=no_permission");
        var denied = new RecordingHost();
        new SetPowerLimitOperation { Index = [0], Watts = 400, ResetJournal = true }.Execute(denied);
        Assert.Single(denied.Errors);
        Assert.Equal(700000u, PowerLimitJournal.Read(Uuid0)!.OriginalMilliwatts);
        Assert.Equal(500000u, fake.LimitMilliwatts(0));
    }

    [Fact]
    public void Values_outside_the_constraints_are_refused_with_the_range_and_nothing_changes()
    {
        using var fake = new FakeNvml();
        var ex = Assert.Throws<GpuOpsException>(() => new SetPowerLimitOperation { Index = [0], Watts = 150 }.Execute(new RecordingHost()));
        Assert.Equal("PowerLimitOutOfRange", ex.ErrorId);
        Assert.Contains("200 W to 700 W", ex.Message);
        var ex2 = Assert.Throws<GpuOpsException>(() => new SetPowerLimitOperation { Percent = 120 }.Execute(new RecordingHost()));
        Assert.Equal("PowerLimitOutOfRange", ex2.ErrorId);
        Assert.Contains("840 W", ex2.Message);
        Assert.Equal(700000u, fake.LimitMilliwatts(0));
        Assert.False(Directory.Exists(fake.JournalDir) && Directory.GetFiles(fake.JournalDir).Length > 0);
    }

    [Theory]
    [InlineData(-100.0, null)]
    [InlineData(0.0, null)]
    [InlineData(1e9, null)]
    [InlineData(double.NaN, null)]
    [InlineData(null, -5.0)]
    [InlineData(null, 1000.0)]
    [InlineData(null, null)]
    [InlineData(300.0, 50.0)]
    public void Bad_values_are_clear_errors(double? watts, double? percent)
    {
        using var fake = new FakeNvml();
        var ex = Assert.Throws<GpuOpsException>(() => new SetPowerLimitOperation { Index = [0], Watts = watts, Percent = percent }.Execute(new RecordingHost()));
        Assert.Equal(ErrorCategory.InvalidArgument, ex.Category);
        Assert.True(ex.ErrorId is "InvalidPowerLimit" or "PowerLimitValueRequired", ex.ErrorId);
        Assert.DoesNotContain('\n', ex.Message);
        Assert.Equal(700000u, fake.LimitMilliwatts(0));
    }

    [Fact]
    public void Unknown_gpu_is_refused()
    {
        using var fake = new FakeNvml();
        Assert.Equal("GpuNotFound", Assert.Throws<GpuOpsException>(() => new SetPowerLimitOperation { Index = [2], Watts = 300 }.Execute(new RecordingHost())).ErrorId);
        Assert.Equal("GpuNotFound", Assert.Throws<GpuOpsException>(() => new SetPowerLimitOperation { Uuid = ["GPU-x"], Watts = 300 }.Execute(new RecordingHost())).ErrorId);
        Assert.Equal("GpuNotFound", Assert.Throws<GpuOpsException>(() => new RestorePowerLimitOperation { Index = [9] }.Execute(new RecordingHost())).ErrorId);
    }

    [Fact]
    public void What_if_changes_nothing_and_writes_no_journal()
    {
        using var fake = new FakeNvml();
        var host = new RecordingHost { Confirm = false };
        new SetPowerLimitOperation { Percent = 70 }.Execute(host);
        Assert.Equal(2, host.ShouldProcessCalls.Count);
        Assert.All(host.ShouldProcessCalls, c => Assert.Contains("700 W to 490 W", c.Action));
        Assert.Equal(700000u, fake.LimitMilliwatts(0));
        Assert.Equal(700000u, fake.LimitMilliwatts(1));
        Assert.Null(fake.Get("calls.set"));
        Assert.Null(PowerLimitJournal.Read(Uuid0));
    }

    [Fact]
    public void ResetJournal_rebaselines_the_journal()
    {
        using var fake = new FakeNvml();
        new SetPowerLimitOperation { Index = [0], Watts = 500 }.Execute(new RecordingHost());
        new SetPowerLimitOperation { Index = [0], Watts = 400, ResetJournal = true }.Execute(new RecordingHost());
        Assert.Equal(500000u, PowerLimitJournal.Read(Uuid0)!.OriginalMilliwatts);
    }

    [Fact]
    public void Restore_default_and_restore_with_nothing_journaled()
    {
        using var fake = new FakeNvml("gpu1.limit_mw=300000", "gpu1.default_mw=650000");
        var host = new RecordingHost();
        new RestorePowerLimitOperation { Index = [1] }.Execute(host);
        Assert.Contains(host.Warnings, w => w.Contains("nothing to restore"));
        Assert.Equal(300000u, fake.LimitMilliwatts(1));
        new RestorePowerLimitOperation { Index = [1], Default = true }.Execute(new RecordingHost());
        Assert.Equal(650000u, fake.LimitMilliwatts(1));
    }

    [Fact]
    public void The_journal_folder_defaults_to_local_app_data_and_follows_GPUOPS_STATE_DIR()
    {
        var old = Environment.GetEnvironmentVariable(PowerLimitJournal.StateDirVariable);
        try
        {
            Environment.SetEnvironmentVariable(PowerLimitJournal.StateDirVariable, null);
            var local = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify);
            Assert.StartsWith(Path.Combine(local, "GpuOps"), PowerLimitJournal.Directory);
            Environment.SetEnvironmentVariable(PowerLimitJournal.StateDirVariable, "/tmp/x-state");
            Assert.Equal(Path.Combine("/tmp/x-state", "power-journal"), PowerLimitJournal.Directory);
            Assert.Equal(Path.Combine("/tmp/x-state", "power-journal", "power-limit-GPU-a_b.json"), PowerLimitJournal.PathFor("GPU-a/b"));
        }
        finally
        {
            Environment.SetEnvironmentVariable(PowerLimitJournal.StateDirVariable, old);
        }
    }
}
