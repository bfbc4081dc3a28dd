using System.Diagnostics;
using System.Globalization;
using GpuOps.Core.Native;
using GpuOps.Tests.Support;
using Xunit;

namespace GpuOps.Tests.Hardware;

/// <summary>
/// Points GpuOps at the fake NVML (tests/fakes/build/libnvidia-ml-fake.so, built by tests/fakes/build.sh) with a
/// fresh state file (FAKE_NVML_STATE) and a fresh journal folder (GPUOPS_STATE_DIR). Undone on Dispose.
/// Use only from [Collection("NativeEnvironment")] tests: the variables are process-wide.
/// </summary>
public sealed class FakeNvml : IDisposable
{
    private static readonly object BuildGate = new();
    private readonly Dictionary<string, string?> _saved = new();

    public FakeNvml(params string[] state)
    {
        LibraryPath = EnsureBuilt();
        Root = Path.Combine(Path.GetTempPath(), "gpuops-fake-nvml-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Root);
        StatePath = Path.Combine(Root, "state.txt");
        StateDir = Path.Combine(Root, "state");
        var lines = new List<string> { "t0=" + Now().ToString("F6", CultureInfo.InvariantCulture) };
        lines.AddRange(state);
        WriteAtomically(lines);
        Env("GPUOPS_NVML_LIBRARY", LibraryPath);
        Env("FAKE_NVML_STATE", StatePath);
        Env("GPUOPS_STATE_DIR", StateDir);
        NativeLibraries.ResetForTests();
        SetNativeStatePath(StatePath);
    }

    public string LibraryPath { get; }

    /// <summary>Tell the fake library resolved now (e.g. a copy loaded after switching GPUOPS_NVML_LIBRARY) about the state file.</summary>
    public void Attach() => SetNativeStatePath(StatePath);
    public string Root { get; }
    public string StatePath { get; }

    /// <summary>GPUOPS_STATE_DIR (the journal is under power-journal/).</summary>
    public string StateDir { get; }

    public string JournalDir => Path.Combine(StateDir, "power-journal");

    public static double Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;

    /// <summary>Seconds since the state's t0 (for keys like gpu1.lost_s).</summary>
    public double SinceT0() => Now() - double.Parse(Get("t0")!, CultureInfo.InvariantCulture);

    /// <summary>A value from the state file (as the fake last wrote it), or null.</summary>
    public string? Get(string key)
    {
        foreach (var line in File.ReadAllLines(StatePath))
        {
            int eq = line.IndexOf('=');
            if (eq > 0 && line[..eq] == key) return line[(eq + 1)..];
        }

        return null;
    }

    public uint LimitMilliwatts(int gpu) => uint.Parse(Get($"gpu{gpu}.limit_mw") ?? "700000", CultureInfo.InvariantCulture);

    /// <summary>Set keys (the file is rewritten atomically: the fake reads it on every call).</summary>
    public void Set(params string[] keyValues)
    {
        var map = new List<string>(File.ReadAllLines(StatePath));
        foreach (var kv in keyValues)
        {
            var key = kv[..kv.IndexOf('=')];
            map.RemoveAll(l => l.StartsWith(key + "=", StringComparison.Ordinal));
            map.Add(kv);
        }

        WriteAtomically(map);
    }

    public IReadOnlyDictionary<string, string?> Environment() => new Dictionary<string, string?>
    {
        ["GPUOPS_NVML_LIBRARY"] = LibraryPath,
        ["FAKE_NVML_STATE"] = StatePath,
        ["GPUOPS_STATE_DIR"] = StateDir,
    };

    public void Dispose()
    {
        SetNativeStatePath(string.Empty);
        foreach (var (k, v) in _saved) System.Environment.SetEnvironmentVariable(k, v);
        NativeLibraries.ResetForTests();
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>
    /// .NET's Environment.SetEnvironmentVariable does not reach the native environment (getenv) on Unix, so the
    /// fake in this process is told its state file through its extra export (child processes get FAKE_NVML_STATE).
    /// </summary>
    private static unsafe void SetNativeStatePath(string path)
    {
        if (!NativeLibraries.TryGetExport(NativeLibraryKind.Nvml, "fake_nvml_set_state", out var fn)) return;
        var p = System.Runtime.InteropServices.Marshal.StringToCoTaskMemUTF8(path);
        try
        {
            ((delegate* unmanaged<IntPtr, void>)fn)(p);
        }
        finally
        {
            System.Runtime.InteropServices.Marshal.FreeCoTaskMem(p);
        }
    }

    private void Env(string name, string value)
    {
        if (!_saved.ContainsKey(name)) _saved[name] = System.Environment.GetEnvironmentVariable(name);
        System.Environment.SetEnvironmentVariable(name, value);
    }

    private void WriteAtomically(IEnumerable<string> lines)
    {
        var tmp = StatePath + ".test.tmp";
        File.WriteAllLines(tmp, lines);
        File.Move(tmp, StatePath, overwrite: true);
    }

    /// <summary>The fake's path; built with tests/fakes/build.sh when missing (skips the test where gcc is absent).</summary>
    public static string EnsureBuilt()
    {
        var lib = Repo.PathOf("tests", "fakes", "build", "libnvidia-ml-fake.so");
        if (!OperatingSystem.IsLinux()) Assert.Skip("the fake NVML is a Linux shared library");
        lock (BuildGate)
        {
            if (File.Exists(lib)) return lib;
            var script = Repo.PathOf("tests", "fakes", "build.sh");
            if (!File.Exists("/usr/bin/gcc") && !File.Exists("/usr/local/bin/gcc"))
                Assert.Skip($"the fake NVML ({lib}) is not built and gcc is not installed here");
            using var p = Process.Start(new ProcessStartInfo("bash", [script]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            var err = p.StandardError.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0 && File.Exists(lib), $"tests/fakes/build.sh failed: {err}");
            return lib;
        }
    }
}
