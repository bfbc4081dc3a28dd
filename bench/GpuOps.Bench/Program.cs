using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using GpuOps.Core.Hosting;
using GpuOps.Cuda.Bench;

namespace GpuOps.Bench;

/// <summary>
/// Runs on a GPU host (framework-dependent, with the packed runtime):
///   dotnet GpuOps.Bench.dll [--suites Memory,Gemm,...|all] [--quick] [--device N] [--out DIR] [--no-peer] [--python python3]
/// Writes DIR/bench-full-*.json (every result) and DIR/bench-*.json in the project's format
/// {"gpu","driver","date","results":[{"name","unit","ours","peer","peer_name","ratio","bound"}]} with the PyTorch peer
/// (peer/torch_peer.py) measured in the same run. Exit code 0 only when everything ran.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        try
        {
            if (args.Length > 0 && args[0] == "inference") return InferenceBench.Run(args[1..]);
            return Run(args);
        }
        catch (GpuOpsException ex)
        {
            Console.Error.WriteLine($"gpuops-bench: {ex.ErrorId}: {ex.Message}");
            return 1;
        }
    }

    private static string? Arg(string[] args, string name) =>
        Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;

    private static int Run(string[] args)
    {
        if (args.Contains("--self-test"))
        {
            // The summary and table from made-up numbers (no GPU): checks the JSON shape before a GPU run.
            var fake = new[]
            {
                new BenchmarkResult { Suite = "Memory", Name = "device copy", Value = 4200, Unit = "GB/s", PeakValue = 4800, MedianMs = 0.5, GpuName = "Test GPU", CudaDriverVersion = "13.0" },
                new BenchmarkResult { Suite = "Gemm", Name = "bf16 gemm 8192x8192x8192", Size = "8192x8192x8192", Value = 780, Unit = "TFLOP/s", PeakValue = 989.4, MedianMs = 1.4, GpuName = "Test GPU", CudaDriverVersion = "13.0" },
            };
            var pb = JsonNode.Parse("""{"env":{"torch":"x"},"results":{"copy":{"name":"torch copy_","value":4210.0,"median_ms":0.5},"gemm_bf16":{"name":"failed: X","value":null}}}""");
            var pa = JsonNode.Parse("""{"env":{"torch":"x"},"results":{"copy":{"name":"torch copy_","value":4230.0,"median_ms":0.5},"gemm_bf16":{"name":"torch.matmul","value":790.0}}}""");
            var sum = Summarize(fake, pb, pa, null);
            PrintTable(fake, sum);
            Console.WriteLine(sum.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }

        bool quick = args.Contains("--quick");
        bool peer = !args.Contains("--no-peer");
        int device = int.Parse(Arg(args, "--device") ?? "0", CultureInfo.InvariantCulture);
        string outDir = Arg(args, "--out") ?? Path.Combine(Directory.GetCurrentDirectory(), "bench-out");
        string python = Arg(args, "--python") ?? "python3";
        var suiteArg = Arg(args, "--suites") ?? "all";
        var suites = suiteArg.Equals("all", StringComparison.OrdinalIgnoreCase)
            ? Enum.GetValues<BenchmarkSuite>()
            : suiteArg.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(s => Enum.Parse<BenchmarkSuite>(s, true)).ToArray();
        Directory.CreateDirectory(outDir);

        long copyBytes = quick ? 256L << 20 : 1L << 30;
        int gemmSize = Arg(args, "--gemm-sizes") is { } g0 ? g0.Split(',').Select(int.Parse).Max() : quick ? 4096 : 8192;
        int peerReps = quick ? 10 : 50;
        // The peer runs before and after ours (the mean is compared), so drift in temperature or clocks over the
        // run cannot favour either side.
        JsonNode? peerBefore = null;
        string? peerError = null;
        if (peer)
        {
            (peerBefore, peerError) = RunPeer(python, device, copyBytes, gemmSize, peerReps);
            if (peerError is not null) Console.Error.WriteLine($"gpuops-bench: peer (before) failed: {peerError}");
        }

        var op = new InvokeBenchmarkOperation { Suite = suites, Device = device, Quick = quick };
        if (Arg(args, "--gemm-sizes") is { } gs) op.GemmSizes = gs.Split(',').Select(int.Parse).ToArray();
        var host = new ConsoleBenchHost();
        var sw = Stopwatch.StartNew();
        op.Execute(host);
        Console.Error.WriteLine($"gpuops-bench: {op.Results.Count} results in {sw.Elapsed.TotalSeconds:0.0} s");
        var first = op.Results.FirstOrDefault() ?? throw new GpuOpsException("BenchmarkEmpty", ErrorCategory.InvalidResult, "The benchmark produced no results.");
        string stamp = DateTime.UtcNow.ToString("yyyy-MM-ddTHHmmssZ", CultureInfo.InvariantCulture);
        string gpuTag = first.GpuName.Replace("NVIDIA ", "").Replace(' ', '-').ToLowerInvariant();
        var json = new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        File.WriteAllText(Path.Combine(outDir, $"bench-full-{gpuTag}-{stamp}.json"), JsonSerializer.Serialize(op.Results, json));

        JsonNode? peerAfter = null;
        if (peer && peerError is null)
        {
            (peerAfter, peerError) = RunPeer(python, device, copyBytes, gemmSize, peerReps);
            if (peerError is not null) Console.Error.WriteLine($"gpuops-bench: peer (after) failed: {peerError}");
        }

        var summary = Summarize(op.Results, peerBefore, peerAfter, peerError);
        string path = Path.Combine(outDir, $"bench-{gpuTag}-{stamp}.json");
        File.WriteAllText(path, summary.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
        PrintTable(op.Results, summary);
        Console.WriteLine($"wrote {path}");
        return peer && peerError is not null ? 3 : 0;
    }

    private static (JsonNode?, string?) RunPeer(string python, int device, long copyBytes, int gemm, int reps)
    {
        var script = Path.Combine(AppContext.BaseDirectory, "peer", "torch_peer.py");
        if (!File.Exists(script)) return (null, $"{script} not found");
        var psi = new ProcessStartInfo(python)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { script, "--device", device.ToString(CultureInfo.InvariantCulture), "--copy-bytes", copyBytes.ToString(CultureInfo.InvariantCulture),
                     "--gemm", gemm.ToString(CultureInfo.InvariantCulture), "--reps", reps.ToString(CultureInfo.InvariantCulture) })
            psi.ArgumentList.Add(a);
        psi.Environment["PYTHONUNBUFFERED"] = "1";
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("python did not start");
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Console.Error.Write(stderr.Result);
        if (p.ExitCode != 0) return (null, $"{python} {script} exited with {p.ExitCode}: {stderr.Result.Trim().Split('\n').LastOrDefault()}");
        var line = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault(l => l.TrimStart().StartsWith('{'));
        return line is null ? (null, "the peer printed no JSON") : (JsonNode.Parse(line), null);
    }

    private static JsonObject Summarize(IReadOnlyList<BenchmarkResult> results, JsonNode? peerBefore, JsonNode? peerAfter, string? peerError)
    {
        var first = results[0];
        var rows = new JsonArray();
        var peer = peerBefore ?? peerAfter;
        static double? V(JsonNode? p, string key) => p?["results"]?[key]?["value"] is JsonValue v && v.TryGetValue<double>(out var d) ? d : null;
        JsonNode? P(string key) => peer?["results"]?[key];
        void Row(string name, string unit, BenchmarkResult? ours, string peerKey, string target, double? targetRatio)
        {
            if (ours is null) return;
            double? b = V(peerBefore, peerKey), a = V(peerAfter, peerKey);
            double? pv = b is not null && a is not null ? (b + a) / 2 : b ?? a;
            string? pn = (b is null && a is not null ? peerAfter : peerBefore ?? peerAfter)?["results"]?[peerKey]?["name"]?.GetValue<string>();
            var o = new JsonObject
            {
                ["name"] = name,
                ["unit"] = unit,
                ["ours"] = Math.Round(ours.Value, 2),
                ["peer"] = pv is null ? null : Math.Round(pv.Value, 2),
                ["peer_name"] = pn ?? (peerError is null ? "not measured" : "peer failed: " + peerError),
                ["ratio"] = pv is > 0 ? Math.Round(ours.Value / pv.Value, 4) : null,
                ["bound"] = ours.PeakValue,
                ["bound_basis"] = ours.PeakBasis,
                ["ours_what"] = ours.Operation,
                ["ours_median_ms"] = Math.Round(ours.MedianMs, 5),
                ["ours_min_ms"] = Math.Round(ours.MinMs, 5),
                ["ours_max_ms"] = Math.Round(ours.MaxMs, 5),
                ["peer_before"] = b is null ? null : Math.Round(b.Value, 2),
                ["peer_after"] = a is null ? null : Math.Round(a.Value, 2),
                ["peer_median_ms"] = P(peerKey)?["median_ms"]?.GetValue<double>(),
                ["target"] = target,
            };
            if (targetRatio is { } tr && pv is > 0) o["target_met"] = ours.Value / pv.Value >= tr;
            rows.Add(o);
        }

        BenchmarkResult? R(string suite, string name) => results.FirstOrDefault(r => r.Suite == suite && r.Name == name);
        var biggest = results.Where(r => r.Suite == "Gemm").Select(r => r.Size).DefaultIfEmpty("8192x8192x8192").Max(s => int.Parse(s.Split('x')[0], CultureInfo.InvariantCulture));
        string sz = $"{biggest}x{biggest}x{biggest}";
        Row("device copy (cuMemcpyDtoDAsync)", "GB/s", R("Memory", "device copy"), "copy", "ours >= 95% of PyTorch copy_", 0.95);
        Row("device copy (our copy_vec16 kernel)", "GB/s", R("Memory", "device copy (kernel)"), "copy", "", null);
        Row("host to device, pinned", "GB/s", R("Memory", "host to device (pinned)"), "h2d_pinned", "", null);
        Row("device to host, pinned", "GB/s", R("Memory", "device to host (pinned)"), "d2h_pinned", "", null);
        Row($"bf16 gemm {sz}", "TFLOP/s", R("Gemm", $"bf16 gemm {sz}"), "gemm_bf16", "ours >= 98% of torch.matmul", 0.98);
        Row($"bf16 gemm {sz}, B as [N,K] (TN)", "TFLOP/s", R("Gemm", $"bf16 gemm {sz} (B as [N,K])"), "gemm_bf16", "", null);
        Row($"f16 gemm {sz}", "TFLOP/s", R("Gemm", $"f16 gemm {sz}"), "gemm_f16", "", null);
        Row($"tf32 gemm {sz}", "TFLOP/s", R("Gemm", $"tf32 gemm {sz}"), "gemm_tf32", "", null);
        Row($"f8e4m3 gemm {sz}", "TFLOP/s", R("Gemm", $"f8e4m3 gemm {sz}"), "gemm_fp8", "", null);
        Row($"i8 gemm {sz}", "TOP/s", R("Gemm", $"i8 gemm {sz}"), "gemm_i8", "", null);
        Row("graph replay per kernel", "µs", R("Launch", "graph replay (per kernel)"), "graph_replay", "", null);
        return new JsonObject
        {
            ["gpu"] = first.GpuName,
            ["driver"] = first.DriverVersion ?? first.CudaDriverVersion,
            ["date"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            ["cuda_driver_api"] = first.CudaDriverVersion,
            ["cublaslt"] = first.CublasLtVersion,
            ["nvrtc"] = first.NvrtcVersion,
            ["peer_env"] = peer?["env"]?.DeepClone(),
            ["method"] = "median of per-run CUDA event times after warm-up; random full-entropy inputs rotated between 2 sets; copy GB/s counts bytes read + written; GEMM TFLOP/s counts 2MNK, each GEMM measurement starts after 1 s idle; the peer (PyTorch) runs before and after ours and 'peer' is the mean of the two",
            ["results"] = rows,
            ["all"] = JsonSerializer.SerializeToNode(results.Select(r => new
            {
                r.Suite, r.Name, r.Operation, r.DType, r.Size, r.Unit, Value = Math.Round(r.Value, 3), r.MedianMs, r.MinMs, r.MaxMs,
                r.PercentOfPeak, r.PeakBasis, r.SmClockMHz, r.MemoryClockMHz, r.TemperatureC, r.PowerLimitWatts, r.EnergyJoulesPerRun, r.Notes,
            })),
        };
    }

    private static void PrintTable(IReadOnlyList<BenchmarkResult> results, JsonObject summary)
    {
        Console.WriteLine();
        Console.WriteLine($"{"suite",-11} {"name",-40} {"value",12} {"unit",-8} {"median ms",10} {"% peak",7}");
        foreach (var r in results)
            Console.WriteLine($"{r.Suite,-11} {Trim(r.Name, 40),-40} {r.Value,12:0.###} {r.Unit,-8} {r.MedianMs,10:0.####} {(r.PercentOfPeak is { } p ? p.ToString("0.0", CultureInfo.InvariantCulture) : "-"),7}");
        Console.WriteLine();
        Console.WriteLine($"{"vs peer",-44} {"ours",10} {"peer",10} {"ratio",8}  target");
        foreach (var row in summary["results"]!.AsArray())
            Console.WriteLine($"{Trim(row!["name"]!.GetValue<string>(), 44),-44} {row["ours"],10} {row["peer"],10} {row["ratio"],8}  {row["target"]} {(row["target_met"] is { } m ? (m.GetValue<bool>() ? "MET" : "MISSED") : "")}");
    }

    private static string Trim(string s, int n) => s.Length <= n ? s : s[..(n - 1)] + "…";
}

/// <summary>Verbose and warnings to stderr; objects are collected by the operation itself.</summary>
internal sealed class ConsoleBenchHost : IOperationHost
{
    public CancellationToken CancellationToken => CancellationToken.None;
    public void WriteObject(object item) { }
    public void WriteProgress(ProgressInfo progress) { }
    public void WriteVerbose(string message) => Console.Error.WriteLine("  " + message);
    public void WriteWarning(string message) => Console.Error.WriteLine("WARNING: " + message);
    public bool ShouldProcess(string target, string action, ConfirmImpact impact = ConfirmImpact.Medium) => true;
    public void WriteError(OperationError error) => Console.Error.WriteLine($"ERROR {error.ErrorId}: {error.Message}");
}
