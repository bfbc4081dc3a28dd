using GpuOps.Core.Hosting;
using GpuOps.Tests.Support;
using Xunit;

namespace GpuOps.Tests.Foundation;

public class HostingTests
{
    [Fact]
    public void ProgressReporter_throttles_but_always_forwards_first_forced_and_completion()
    {
        var host = new RecordingHost();
        var p = new ProgressReporter(host, 1, "Loading", TimeSpan.FromHours(1));
        for (int i = 0; i < 10_000; i++) p.Report(i / 10_000.0, $"step {i}");
        p.Report(0.5, "forced", force: true);
        p.Complete();
        Assert.Equal(3, host.Progress.Count);
        Assert.Equal("step 0", host.Progress[0].StatusDescription);
        Assert.Equal("forced", host.Progress[1].StatusDescription);
        Assert.Equal(50, host.Progress[1].PercentComplete);
        Assert.True(host.Progress[2].Completed);
    }

    [Fact]
    public void ProgressReporter_forwards_again_after_the_interval()
    {
        var host = new RecordingHost();
        var p = new ProgressReporter(host, 2, "Sweep", TimeSpan.FromMilliseconds(20));
        p.Report(0.1, "a");
        p.Report(0.2, "b");
        Thread.Sleep(40);
        p.Report(0.3, "c");
        Assert.Equal(new[] { "a", "c" }, host.Progress.Select(x => x.StatusDescription));
        Assert.Equal(-1, host.Progress[0].ParentActivityId);
    }

    [Fact]
    public void GpuOpsException_carries_id_category_target_into_OperationError()
    {
        var ex = new GpuOpsException("GpuNotFound", ErrorCategory.ObjectNotFound, "No GPU with index 7.", 7, null, "Run Get-Gpu.");
        var e = OperationError.From(ex);
        Assert.Equal("GpuNotFound", e.ErrorId);
        Assert.Equal(ErrorCategory.ObjectNotFound, e.Category);
        Assert.Equal(7, e.Target);
        Assert.Equal("Run Get-Gpu.", e.RecommendedAction);
        Assert.Same(ex, e.Exception);
    }

    [Fact]
    public void RecordingHost_records_should_process_and_honours_Confirm()
    {
        var host = new RecordingHost { Confirm = false };
        Assert.False(host.ShouldProcess("GPU 0", "Set power limit to 300 W", ConfirmImpact.High));
        Assert.Single(host.ShouldProcessCalls);
        Assert.Equal(ConfirmImpact.High, host.ShouldProcessCalls[0].Impact);
    }

    [Fact]
    [Trait("Category", "Module")]
    public void ErrorCategory_values_match_PowerShell_names_and_values()
    {
        // System.Management.Automation.ErrorCategory, read from PowerShellStandard's reference assembly.
        var psEnum = Metadata.PowerShellType("System.Management.Automation.ErrorCategory");
        var ps = psEnum.GetFields().Where(f => f.IsLiteral).ToDictionary(f => f.Name, f => Convert.ToInt32(f.GetRawConstantValue()));
        foreach (var v in Enum.GetValues<ErrorCategory>())
        {
            Assert.True(ps.TryGetValue(v.ToString(), out var psValue), $"{v} is not a PowerShell ErrorCategory");
            Assert.Equal(psValue, (int)v);
        }
    }
}
