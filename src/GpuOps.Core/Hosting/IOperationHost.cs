namespace GpuOps.Core.Hosting;

/// <summary>
/// The one small surface through which every GpuOps operation talks to whoever runs it:
/// the PowerShell cmdlet adapter, the <c>gpuops</c> CLI, or a test's <see cref="RecordingHost"/>.
/// Calls come from the thread that runs the operation (PowerShell requires this for WriteObject).
/// </summary>
public interface IOperationHost
{
    /// <summary>Emit one result object (PowerShell: WriteObject; CLI: a table row or a JSON line).</summary>
    void WriteObject(object item);

    /// <summary>Progress; operations go through <see cref="ProgressReporter"/>, which throttles.</summary>
    void WriteProgress(ProgressInfo progress);

    void WriteVerbose(string message);

    void WriteWarning(string message);

    /// <summary>
    /// Ask before a state change. False means "do not do it" (-WhatIf, or the user said no).
    /// <paramref name="impact"/> lets hosts apply their confirmation policy (PowerShell uses the cmdlet's
    /// ConfirmImpact; the CLI asks for --yes on High).
    /// </summary>
    bool ShouldProcess(string target, string action, ConfirmImpact impact = ConfirmImpact.Medium);

    /// <summary>A non-terminating error for one item; the operation goes on with the next.</summary>
    void WriteError(OperationError error);

    /// <summary>Signalled on Ctrl+C / StopProcessing. Long operations must observe it.</summary>
    CancellationToken CancellationToken { get; }
}

public enum ConfirmImpact { None = 0, Low = 1, Medium = 2, High = 3 }

/// <summary>One progress update (mirrors PowerShell's ProgressRecord).</summary>
public sealed record ProgressInfo(
    int ActivityId,
    string Activity,
    string StatusDescription,
    int PercentComplete = -1,
    int SecondsRemaining = -1,
    string? CurrentOperation = null,
    bool Completed = false,
    int ParentActivityId = -1);

/// <summary>An operation: a plain class with parameters as properties, run through a host.</summary>
public interface IOperation
{
    void Execute(IOperationHost host);
}
