using System.Management.Automation;
using GpuOps.Core.Hosting;
using PSErrorCategory = System.Management.Automation.ErrorCategory;

namespace GpuOps.PowerShell;

/// <summary>Adapts a cmdlet to the operation host interface. Internal: it names GpuOps.Core types.</summary>
internal sealed class CmdletHost : IOperationHost
{
    private readonly PSCmdlet _cmdlet;

    public CmdletHost(PSCmdlet cmdlet, CancellationToken token)
    {
        _cmdlet = cmdlet;
        CancellationToken = token;
    }

    public CancellationToken CancellationToken { get; }

    public void WriteObject(object item) => _cmdlet.WriteObject(item);

    public void WriteProgress(ProgressInfo p)
    {
        var record = new ProgressRecord(p.ActivityId, p.Activity, string.IsNullOrEmpty(p.StatusDescription) ? "..." : p.StatusDescription)
        {
            PercentComplete = p.PercentComplete,
            SecondsRemaining = p.SecondsRemaining,
            CurrentOperation = p.CurrentOperation,
            ParentActivityId = p.ParentActivityId,
            RecordType = p.Completed ? ProgressRecordType.Completed : ProgressRecordType.Processing,
        };
        _cmdlet.WriteProgress(record);
    }

    public void WriteVerbose(string message) => _cmdlet.WriteVerbose(message);

    public void WriteWarning(string message) => _cmdlet.WriteWarning(message);

    public bool ShouldProcess(string target, string action, Core.Hosting.ConfirmImpact impact)
    {
        if (_cmdlet is GpuOpsCmdlet { ConfirmWithoutPrompt: true })
        {
            _cmdlet.WriteVerbose($"Performing the operation \"{action}\" on target \"{target}\" (-Force: not asking).");
            return true;
        }

        return _cmdlet.ShouldProcess(target, action);
    }

    public void WriteError(OperationError error) => _cmdlet.WriteError(ToErrorRecord(error));

    public static ErrorRecord ToErrorRecord(OperationError e)
    {
        var ex = e.Exception ?? new GpuOpsException(e.ErrorId, e.Category, e.Message, e.Target);
        var record = new ErrorRecord(ex, e.ErrorId, (PSErrorCategory)(int)e.Category, e.Target);
        record.ErrorDetails = new ErrorDetails(e.Message) { RecommendedAction = e.RecommendedAction ?? string.Empty };
        return record;
    }
}
