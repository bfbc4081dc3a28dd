namespace GpuOps.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        // Standard output as a plain stream where it can be one: .NET's console stream ignores a closed pipe (EPIPE), so
        // `gpuops telemetry --interval 0.1 | head -1` would sample forever; written through this one, the write fails and
        // the command stops (exit 141, as a program killed by SIGPIPE).
        TextWriter stdout = Console.Out;
        if (!OperatingSystem.IsWindows() && Console.IsOutputRedirected)
        {
            // (pipes only: a FileStream over a redirected regular file writes at its own offsets, not the file's end)
            var fs = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(1, ownsHandle: false), FileAccess.Write, 1);
            if (!fs.CanSeek) stdout = new StreamWriter(fs, new System.Text.UTF8Encoding(false)) { AutoFlush = true };
            else fs.Dispose();
        }

        try
        {
            return GpuOpsCli.Run(args, stdout, Console.Error, handleSignals: true);
        }
        finally
        {
            try { stdout.Flush(); } catch (IOException) { }
        }
    }
}
