namespace GpuOps.Core.Hosting;

/// <summary>A non-terminating error for one item (PowerShell: WriteError; CLI: a line on stderr, exit code 1).</summary>
/// <param name="ErrorId">Stable identifier, e.g. "GpuNotFound" (PowerShell appends the cmdlet name).</param>
/// <param name="Category">What kind of failure it is.</param>
/// <param name="Message">One sentence a user can act on.</param>
/// <param name="Target">The item the error is about (a GPU index, a path), or null.</param>
/// <param name="Exception">The underlying exception, if any.</param>
/// <param name="RecommendedAction">What to do about it, or null.</param>
public sealed record OperationError(
    string ErrorId,
    ErrorCategory Category,
    string Message,
    object? Target = null,
    Exception? Exception = null,
    string? RecommendedAction = null)
{
    public static OperationError From(GpuOpsException ex) =>
        new(ex.ErrorId, ex.Category, ex.Message, ex.Target, ex, ex.RecommendedAction);
}

/// <summary>
/// A terminating error with an id and a category. Operations throw it; the cmdlet adapter turns it into
/// ThrowTerminatingError and the CLI into a one-line message and a non-zero exit code.
/// </summary>
public class GpuOpsException : Exception
{
    public GpuOpsException(string errorId, ErrorCategory category, string message,
        object? target = null, Exception? inner = null, string? recommendedAction = null)
        : base(message, inner)
    {
        ErrorId = errorId;
        Category = category;
        Target = target;
        RecommendedAction = recommendedAction;
    }

    public string ErrorId { get; }
    public ErrorCategory Category { get; }
    public object? Target { get; }
    public string? RecommendedAction { get; }

    public static GpuOpsException InvalidArgument(string errorId, string message, object? target = null) =>
        new(errorId, ErrorCategory.InvalidArgument, message, target);

    public static GpuOpsException NotFound(string errorId, string message, object? target = null) =>
        new(errorId, ErrorCategory.ObjectNotFound, message, target);
}
