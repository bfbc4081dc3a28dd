using System.CommandLine;
using GpuOps.Core.Engine;
using GpuOps.Core.Hosting;
using GpuOps.Cuda.Bench;

namespace GpuOps.Cli.Verbs;

/// <summary><c>gpuops bench</c>: the GPU benchmark suites (Invoke-GpuBenchmark).</summary>
public sealed class BenchVerbs : ICliVerbProvider
{
    public void Register(RootCommand root, CliContext context)
    {
        var suite = new Option<string[]>("--suite", "-s")
        {
            Description = "Suites: Memory, Gemm, Launch, Elementwise, Norm, Rope, Attention, Sampling, Transpose, Embedding, All (default Memory Gemm Launch).",
            AllowMultipleArgumentsPerToken = true,
        };
        var device = new Option<int>("--device", "-d")
        {
            Description = "The GPU: a CUDA ordinal or cuda:N as gpuops generate takes it (default 0); --uuid names it as Get-Gpu / gpuops gpu list does.",
            CustomParser = r => ParseDevice(r),
        };
        var uuid = new Option<string?>("--uuid") { Description = "The GPU by UUID (as gpuops gpu list shows it), instead of --device." };
        var repeats = new Option<int>("--repeats") { Description = "Timed runs per measurement (median reported).", DefaultValueFactory = _ => 50 };
        var sizes = new Option<int[]>("--gemm-size") { Description = "GEMM sizes (M = N = K).", AllowMultipleArgumentsPerToken = true };
        var types = new Option<string[]>("--gemm-type") { Description = "GEMM dtypes: bf16 f16 tf32 f32 f8e4m3 i8.", AllowMultipleArgumentsPerToken = true };
        var quick = new Option<bool>("--quick") { Description = "Smaller sizes and fewer repeats." };
        var noTune = new Option<bool>("--no-autotune") { Description = "Use cuBLASLt's first heuristic algorithm." };
        var bench = new Command("bench", "Benchmark the GPU: memory bandwidth, cuBLASLt GEMM, launch overhead and kernel families.")
        {
            suite, device, uuid, repeats, sizes, types, quick, noTune,
        };
        bench.SetAction((parse, ct) =>
        {
            var names = parse.GetValue(suite) ?? [];
            BenchmarkSuite[] suites;
            try
            {
                suites = names.Length == 0 ? [BenchmarkSuite.Memory, BenchmarkSuite.Gemm, BenchmarkSuite.Launch]
                    : names.Any(n => n.Equals("all", StringComparison.OrdinalIgnoreCase)) ? Enum.GetValues<BenchmarkSuite>()
                    : names.SelectMany(n => n.Split(',', StringSplitOptions.RemoveEmptyEntries)).Select(n => Enum.Parse<BenchmarkSuite>(n, true)).ToArray();
            }
            catch (ArgumentException)
            {
                context.Stderr.WriteLine($"gpuops: unknown suite in '{string.Join(' ', names)}' (use {string.Join(", ", Enum.GetNames<BenchmarkSuite>())} or All)");
                return Task.FromResult(1);
            }

            var op = new InvokeBenchmarkOperation
            {
                Suite = suites,
                Device = parse.GetValue(device),
                Uuid = parse.GetValue(uuid),
                Repeats = parse.GetValue(repeats),
                GemmSizes = parse.GetValue(sizes) is { Length: > 0 } s ? s : null,
                GemmTypes = parse.GetValue(types) is { Length: > 0 } t ? t : null,
                Quick = parse.GetValue(quick),
                Autotune = !parse.GetValue(noTune),
            };
            return Task.FromResult(context.Run(parse, op, ct));
        });
        root.Subcommands.Add(bench);
    }

    /// <summary>
    /// <c>--device</c> as a bare CUDA ordinal or as the engine verbs spell a GPU (<see cref="GpuModelHandle.ParseDevice"/>:
    /// <c>cuda</c>, <c>cuda:N</c>); <c>cpu</c> and <c>auto</c> are refused with a reason, since these suites measure a GPU.
    /// </summary>
    internal static int ParseDevice(System.CommandLine.Parsing.ArgumentResult r)
    {
        if (r.Tokens.Count == 0) return 0;
        string text = r.Tokens[0].Value.Trim();
        if (int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int ordinal))
            return ordinal;
        if (text.Equals("cpu", StringComparison.OrdinalIgnoreCase) || text.Equals("auto", StringComparison.OrdinalIgnoreCase))
        {
            r.AddError($"--device {text}: gpuops bench measures a GPU; give a CUDA ordinal (0, 1, ...) or cuda:N, or --uuid.");
            return 0;
        }

        try
        {
            return GpuModelHandle.ParseDevice(text).Index;
        }
        catch (GpuOpsException)
        {
            r.AddError($"--device '{text}' is not a GPU: give a CUDA ordinal (0, 1, ...) or cuda:N, or --uuid.");
            return 0;
        }
    }
}
