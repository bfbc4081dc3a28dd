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

    /// <summary>
    /// A -Path value as file-system paths: an item that exists under that exact name is taken literally (so names with
    /// [ ] from Get-ChildItem work); otherwise wildcards expand to the matching items, sorted, and a pattern that matches
    /// nothing is a PathNotFound error for this value (an empty result); any other path is returned resolved against the
    /// current location, for the operation to report if it is missing.
    /// </summary>
    protected IReadOnlyList<string> ResolvePathArgument(string path)
    {
        var literal = GetUnresolvedProviderPathFromPSPath(path);
        if (File.Exists(literal) || Directory.Exists(literal) || !WildcardPattern.ContainsWildcardCharacters(path)) return [literal];
        List<string> matches;
        try
        {
            matches = GetResolvedProviderPathFromPSPath(path, out var provider)
                .Where(_ => provider.Name == "FileSystem").OrderBy(p => p, StringComparer.Ordinal).ToList();
        }
        catch (ItemNotFoundException)
        {
            matches = [];
        }

        if (matches.Count == 0)
            WriteError(new ErrorRecord(new ItemNotFoundException($"No file or directory matches '{path}'."), "PathNotFound", System.Management.Automation.ErrorCategory.ObjectNotFound, path));
        return matches;
    }

    /// <summary>
    /// <c>$m | Invoke-GpuInference 'text'</c>: the text took the first position (-Model) and the piped model became the
    /// text (its ToString). Stop with what happened and the fix instead of a confusing path error.
    /// </summary>
    protected void ThrowIfModelTookTheTextsPlace(GpuOps.Core.Engine.GpuModelHandle model, IEnumerable<string> texts, string textParameter)
    {
        if (!model.IsPathOnly) return;
        var loaded = GpuOps.Core.Engine.GpuModelHandle.All.Select(h => h.ToString()).ToHashSet(StringComparer.Ordinal);
        if (!texts.Any(t => t is not null && loaded.Contains(t))) return;
        ThrowTerminatingError(CmdletHost.ToErrorRecord(new OperationError("TextInModelPosition", GpuOps.Core.Hosting.ErrorCategory.InvalidArgument,
            $"'{model.Path}' was taken as -Model (the first position) and the piped model as -{textParameter}: name it, e.g. $m | {MyInvocation.MyCommand.Name} -{textParameter} '{model.Path}'.",
            model.Path)));
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
