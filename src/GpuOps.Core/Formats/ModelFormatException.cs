using GpuOps.Core.Hosting;

namespace GpuOps.Core.Formats;

/// <summary>
/// A model file that is malformed, truncated or unsupported. The message names the file (and the tensor or
/// metadata key where there is one); <see cref="GpuOpsException.ErrorId"/> is "InvalidModelFile" or
/// "UnsupportedModelFile".
/// </summary>
public sealed class ModelFormatException : GpuOpsException
{
    public ModelFormatException(string file, string message, Exception? inner = null, bool unsupported = false)
        : base(unsupported ? "UnsupportedModelFile" : "InvalidModelFile",
            unsupported ? ErrorCategory.NotImplemented : ErrorCategory.InvalidData,
            $"{Path.GetFileName(file)}: {message}", file, inner,
            unsupported ? null : "Re-download or re-export the model file; it is corrupt or was written by an incompatible tool.")
    {
        File = file;
    }

    public string File { get; }
}
