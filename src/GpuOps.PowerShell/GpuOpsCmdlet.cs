using System.Management.Automation;
using GpuOps.Core.Hosting;

namespace GpuOps.PowerShell;

/// <summary>
/// Base of every GpuOps cmdlet: runs a GpuOps.Core operation through <see cref="CmdletHost"/>, turns
/// <see cref="GpuOpsException"/> into ThrowTerminatingError (id + category), and Ctrl+C into cancellation.
/// </summary>
public abstract class GpuOpsCmdlet : PSCmdlet
{
    private readonly CancellationTokenSource _stop = new();

    /// <summary>Cancelled when the pipeline is stopped (Ctrl+C).</summary>
    protected CancellationToken Stopping => _stop.Token;

    protected override void StopProcessing() => _stop.Cancel();

    /// <summary>
    /// True when the cmdlet's -Force was given: state changes go ahead without the confirmation prompt
    /// (unless -Confirm was given explicitly); -WhatIf is still honoured.
    /// </summary>
    protected virtual bool SkipConfirmation => false;

    internal bool ConfirmWithoutPrompt =>
        SkipConfirmation && !MyInvocation.BoundParameters.ContainsKey("WhatIf") && !MyInvocation.BoundParameters.ContainsKey("Confirm");

    /// <summary>Run an operation; errors it throws become terminating errors of this cmdlet.</summary>
    protected void Run(object operation)
    {
        try
        {
            ((IOperation)operation).Execute(new CmdletHost(this, _stop.Token));
        }
        catch (GpuOpsException ex)
        {
            ThrowTerminatingError(CmdletHost.ToErrorRecord(OperationError.From(ex)));
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            throw new PipelineStoppedException();
        }
    }

    /// <summary>Run an operation; a <see cref="GpuOpsException"/> becomes a non-terminating error for this item.</summary>
    protected void RunForItem(object operation)
    {
        try
        {
            ((IOperation)operation).Execute(new CmdletHost(this, _stop.Token));
        }
        catch (GpuOpsException ex)
        {
            WriteError(CmdletHost.ToErrorRecord(OperationError.From(ex)));
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            throw new PipelineStoppedException();
        }
    }
}
