namespace GpuOps.Tests.Support;

/// <summary>Paths inside the repository (found by walking up to GpuOps.psd1).</summary>
public static class Repo
{
    private static readonly Lazy<string> RootPath = new(() =>
    {
        var env = Environment.GetEnvironmentVariable("GPUOPS_REPO_ROOT");
        if (!string.IsNullOrEmpty(env) && File.Exists(Path.Combine(env, "GpuOps.psd1"))) return env;
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "GpuOps.psd1"))) return dir.FullName;
            }
        }

        throw new InvalidOperationException("Repository root (GpuOps.psd1) not found above " + AppContext.BaseDirectory);
    });

    public static string Root => RootPath.Value;

    public static string PathOf(params string[] parts) => Path.Combine([Root, .. parts]);

    /// <summary>tests/data/...: fixtures copied into the repository.</summary>
    public static string Data(params string[] parts) => Path.Combine([Root, "tests", "data", .. parts]);
}
