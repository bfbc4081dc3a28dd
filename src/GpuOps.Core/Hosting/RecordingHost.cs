using System.Collections.Concurrent;

namespace GpuOps.Core.Hosting;

/// <summary>
/// A host that records everything an operation does. Tests drive operations through it; scripts can use
/// it to run an operation in-process and inspect the results.
/// </summary>
public sealed class RecordingHost : IOperationHost
{
    private readonly List<(string Target, string Action, ConfirmImpact Impact)> _asked = new();

    public RecordingHost(CancellationToken cancellationToken = default) => CancellationToken = cancellationToken;

    public List<object> Objects { get; } = new();
    public List<ProgressInfo> Progress { get; } = new();
    public List<string> Verbose { get; } = new();
    public List<string> Warnings { get; } = new();
    public List<OperationError> Errors { get; } = new();
    public IReadOnlyList<(string Target, string Action, ConfirmImpact Impact)> ShouldProcessCalls => _asked;

    /// <summary>What ShouldProcess answers (true = go ahead; false behaves like -WhatIf or "No").</summary>
    public bool Confirm { get; set; } = true;

    /// <summary>Called for every emitted object (a test can cancel mid-stream from here).</summary>
    public Action<object>? OnObject { get; set; }

    public CancellationToken CancellationToken { get; }

    public IEnumerable<T> ObjectsOf<T>() => Objects.OfType<T>();

    public void WriteObject(object item)
    {
        Objects.Add(item);
        OnObject?.Invoke(item);
    }

    public void WriteProgress(ProgressInfo progress) => Progress.Add(progress);

    public void WriteVerbose(string message) => Verbose.Add(message);

    public void WriteWarning(string message) => Warnings.Add(message);

    public bool ShouldProcess(string target, string action, ConfirmImpact impact = ConfirmImpact.Medium)
    {
        _asked.Add((target, action, impact));
        return Confirm;
    }

    public void WriteError(OperationError error) => Errors.Add(error);
}
