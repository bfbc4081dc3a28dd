using System.CommandLine;
using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using GpuOps.Core.Hosting;
using GpuOps.Cuda.Bench;
using GpuOps.Nvml;

namespace GpuOps.Cli.Verbs;

/// <summary>
/// Hardware verbs over NVML: <c>gpu list|processes</c>, <c>telemetry [export]</c>, <c>energy -- cmd</c>,
/// <c>power get|set|restore|optimize</c>. Thin: options become operation properties.
/// </summary>
public sealed class HardwareVerbs : ICliVerbProvider
{
    public void Register(RootCommand root, CliContext context)
    {
        var gpu = GpuOpsCli.Group(root, "gpu", "GPU inventory (NVML).");
        gpu.Subcommands.Add(GpuList(context));
        gpu.Subcommands.Add(GpuProcesses(context));
        root.Subcommands.Add(Telemetry(context));
        root.Subcommands.Add(Energy(context));
        var power = GpuOpsCli.Group(root, "power", "GPU power limits: get, set (journaled), restore, optimize.");
        power.Subcommands.Add(PowerGet(context));
        power.Subcommands.Add(PowerSet(context));
        power.Subcommands.Add(PowerRestore(context));
        power.Subcommands.Add(PowerOptimize(context));
    }

    private static Option<int[]> IndexOption() => new("--index", "-i") { Description = "GPU index (repeatable; default: all GPUs).", AllowMultipleArgumentsPerToken = true };
    private static Option<string[]> UuidOption() => new("--uuid") { Description = "GPU UUID (repeatable).", AllowMultipleArgumentsPerToken = true };

    private static int[]? Ints(ParseResult p, Option<int[]> o) => p.GetValue(o) is { Length: > 0 } v ? v : null;
    private static string[]? Strings(ParseResult p, Option<string[]> o) => p.GetValue(o) is { Length: > 0 } v ? v : null;

    /// <summary>Seconds from the command line as a TimeSpan (non-finite values become zero, which operations refuse).</summary>
    internal static TimeSpan? Seconds(double? v) => v is null ? null : double.IsFinite(v.Value)
        ? TimeSpan.FromSeconds(Math.Clamp(v.Value, -1e7, 1e7))
        : throw GpuOpsException.InvalidArgument("InvalidInterval", $"'{v.Value}' is not a number of seconds.", v.Value);

    private static Command GpuList(CliContext context)
    {
        var cmd = new Command("list", "One entry per GPU (one JSON line with --json): name, UUID, PCI bus, driver/CUDA, memory, power limits, clocks, temperature, modes.");
        var index = IndexOption();
        var uuid = UuidOption();
        cmd.Options.Add(index);
        cmd.Options.Add(uuid);
        cmd.SetAction((p, ct) => Task.FromResult(context.Run(p, new GetGpuOperation { Index = Ints(p, index), Uuid = Strings(p, uuid) }, ct)));
        return cmd;
    }

    private static Command GpuProcesses(CliContext context)
    {
        var cmd = new Command("processes", "Processes using each GPU and the memory they hold.");
        var index = IndexOption();
        var uuid = UuidOption();
        cmd.Options.Add(index);
        cmd.Options.Add(uuid);
        cmd.SetAction((p, ct) => Task.FromResult(context.Run(p, new GetGpuProcessOperation { Index = Ints(p, index), Uuid = Strings(p, uuid) }, ct)));
        return cmd;
    }

    private sealed record StreamOptions(Option<int[]> Index, Option<string[]> Uuid, Option<double?> Interval, Option<int?> Count, Option<double?> Duration)
    {
        public static StreamOptions AddTo(Command cmd)
        {
            var o = new StreamOptions(
                IndexOption(),
                UuidOption(),
                new Option<double?>("--interval") { Description = "Seconds between samples (e.g. 0.01 for 100 Hz; default 1, or 0.01 with --stats); a stream until Ctrl+C unless --count/--duration." },
                new Option<int?>("--count", "-n") { Description = "Number of samples per GPU." },
                new Option<double?>("--duration") { Description = "Seconds to sample." });
            cmd.Options.Add(o.Index);
            cmd.Options.Add(o.Uuid);
            cmd.Options.Add(o.Interval);
            cmd.Options.Add(o.Count);
            cmd.Options.Add(o.Duration);
            return o;
        }

        public GetTelemetryOperation Operation(ParseResult p) => new()
        {
            Index = Ints(p, Index),
            Uuid = Strings(p, Uuid),
            Interval = Seconds(p.GetValue(Interval)),
            Count = p.GetValue(Count),
            Duration = Seconds(p.GetValue(Duration)),
        };
    }

    private static Command Telemetry(CliContext context)
    {
        var cmd = new Command("telemetry", "One sample per GPU, or a steady stream (--interval/--count/--duration): power (instant and averaged), energy, temperature, utilization, memory, clocks, clock event reasons.");
        var o = StreamOptions.AddTo(cmd);
        var stats = new Option<bool>("--stats") { Description = "Print one summary instead of the samples: cost of one full sample (ms), CPU use (% of one core), cadence jitter (alone: 100 samples at 100 Hz)." };
        cmd.Options.Add(stats);
        cmd.SetAction((p, ct) =>
        {
            var op = o.Operation(p);
            op.Statistics = p.GetValue(stats);
            return Task.FromResult(context.Run(p, op, ct));
        });

        var export = new Command("export", "Write telemetry for Prometheus (node_exporter textfile collector, replaced atomically) or into a SQLite database (WAL).");
        var eo = StreamOptions.AddTo(export);
        var format = new Option<TelemetryExportFormat>("--format", "-f") { Description = "prometheus or sqlite.", DefaultValueFactory = _ => TelemetryExportFormat.Prometheus };
        var path = new Option<string>("--path", "-o") { Description = "The file to write (.prom for Prometheus, a database file for SQLite).", Required = true };
        export.Options.Add(format);
        export.Options.Add(path);
        export.SetAction((p, ct) =>
        {
            var stream = eo.Operation(p);
            bool streaming = stream.Interval is not null || stream.Count is not null || stream.Duration is not null;
            var op = new ExportTelemetryOperation
            {
                Path = p.GetValue(path)!,
                Format = p.GetValue(format),
                Stream = streaming ? stream : null,
                PassThru = true,
            };
            if (!streaming && (stream.Index is not null || stream.Uuid is not null))
            {
                op.Stream = stream;
                stream.Count = 1;
            }

            return Task.FromResult(context.Run(p, op, ct));
        });
        cmd.Subcommands.Add(export);
        return cmd;
    }

    private static Argument<string[]> CommandArgument(string description) => new("command") { Description = description, Arity = ArgumentArity.OneOrMore };

    private static Command Energy(CliContext context)
    {
        var cmd = new Command("energy", "Run a command and report the energy each GPU used meanwhile (J), the time, average and peak power: gpuops energy -- <command> [args]. A command that fails gives its own exit code.");
        var index = IndexOption();
        var uuid = UuidOption();
        var interval = new Option<double?>("--sample-interval") { Description = "Seconds between power samples (default 0.02)." };
        var command = CommandArgument("The command line to run (after --).");
        cmd.Options.Add(index);
        cmd.Options.Add(uuid);
        cmd.Options.Add(interval);
        cmd.Arguments.Add(command);
        cmd.SetAction((p, ct) =>
        {
            var argv = p.GetValue(command)!;
            bool json = p.GetValue(context.Json);
            int exit = 0;
            var op = new MeasureEnergyOperation
            {
                Index = Ints(p, index),
                Uuid = Strings(p, uuid),
                Workload = token => exit = ChildProcess.Run(argv, json ? context.Stderr : context.Stdout, token, out _),
            };
            if (Seconds(p.GetValue(interval)) is { } si) op.SampleInterval = si;
            int code = context.Run(p, host =>
            {
                ChildProcess.EnsureRunnable(argv);   // (before the window: a command that cannot start measured nothing)
                op.Execute(host);
                if (exit != 0)
                {
                    host.WriteError(new OperationError("CommandFailed", ErrorCategory.InvalidResult, $"'{string.Join(' ', argv)}' exited with code {exit}.", argv[0]));
                }
            }, ct);
            // (as time(1): the command's own failure code, where it failed and nothing else went wrong)
            return Task.FromResult(code == 1 && exit is > 0 and < 126 ? exit : code);
        });
        return cmd;
    }

    private static Command PowerGet(CliContext context)
    {
        var cmd = new Command("get", "Power limits: current, default, min/max, enforced, and the original recorded in the journal.");
        var index = IndexOption();
        var uuid = UuidOption();
        cmd.Options.Add(index);
        cmd.Options.Add(uuid);
        cmd.SetAction((p, ct) => Task.FromResult(context.Run(p, new GetPowerLimitOperation { Index = Ints(p, index), Uuid = Strings(p, uuid) }, ct)));
        return cmd;
    }

    private static Command PowerSet(CliContext context)
    {
        var cmd = new Command("set", "Set the power limit (--watts N or --percent N of the default). The original is journaled first; needs --yes (or --what-if).");
        var index = IndexOption();
        var uuid = UuidOption();
        var watts = new Option<double?>("--watts", "-w") { Description = "The limit in watts." };
        var percent = new Option<double?>("--percent", "-p") { Description = "The limit as a percentage of the default limit." };
        var resetJournal = new Option<bool>("--reset-journal") { Description = "Record the limit in force now as the original, even if the journal holds one." };
        cmd.Options.Add(index);
        cmd.Options.Add(uuid);
        cmd.Options.Add(watts);
        cmd.Options.Add(percent);
        cmd.Options.Add(resetJournal);
        cmd.SetAction((p, ct) => Task.FromResult(context.Run(p, new SetPowerLimitOperation
        {
            Index = Ints(p, index),
            Uuid = Strings(p, uuid),
            Watts = p.GetValue(watts),
            Percent = p.GetValue(percent),
            ResetJournal = p.GetValue(resetJournal),
            PassThru = true,
        }, ct)));
        return cmd;
    }

    private static Command PowerRestore(CliContext context)
    {
        var cmd = new Command("restore", "Put back the original power limit recorded in the journal (all journaled GPUs by default), or the default with --default. A change: needs --yes (or --what-if) where stdin is not a terminal.");
        var index = IndexOption();
        var uuid = UuidOption();
        var dflt = new Option<bool>("--default") { Description = "Set the default limit instead of the journaled original." };
        cmd.Options.Add(index);
        cmd.Options.Add(uuid);
        cmd.Options.Add(dflt);
        cmd.SetAction((p, ct) => Task.FromResult(context.Run(p, new RestorePowerLimitOperation
        {
            Index = Ints(p, index),
            Uuid = Strings(p, uuid),
            Default = p.GetValue(dflt),
            PassThru = true,
        }, ct)));
        return cmd;
    }

    private static Command PowerOptimize(CliContext context)
    {
        var cmd = new Command("optimize", "Sweep power limits from max down to min running a command (or a registered benchmark) at each; choose by objective; the original limit is restored whatever happens: gpuops power optimize --yes -- <command>.");
        var index = new Option<int?>("--index", "-i") { Description = "GPU index (default 0)." };
        var uuid = new Option<string?>("--uuid") { Description = "GPU UUID." };
        var step = new Option<double>("--step") { Description = "Step in watts (default 25).", DefaultValueFactory = _ => 25 };
        var min = new Option<double?>("--min-watts") { Description = "Lowest limit of the sweep (default: the GPU's minimum)." };
        var max = new Option<double?>("--max-watts") { Description = "Highest limit of the sweep (default: the GPU's maximum)." };
        var warmup = new Option<int>("--warmup") { Description = "Warm-up runs per limit (default 1).", DefaultValueFactory = _ => 1 };
        var runs = new Option<int>("--runs") { Description = "Measured runs per limit (default 3).", DefaultValueFactory = _ => 3 };
        var objective = new Option<PowerObjective>("--objective") { Description = "MinEnergy, MinEnergyDelay, Cost or MaxSlowdown.", DefaultValueFactory = _ => PowerObjective.MinEnergy };
        var factor = new Option<double>("--factor") { Description = "MaxSlowdown: largest accepted slowdown (default 1.1).", DefaultValueFactory = _ => 1.1 };
        var eta = new Option<double>("--eta") { Description = "Cost: weight of energy against time, 0..1 (default 0.5).", DefaultValueFactory = _ => 0.5 };
        var apply = new Option<bool>("--apply") { Description = "Set the chosen limit afterwards (journaled: power restore undoes it)." };
        var benchmark = new Option<string?>("--benchmark") { Description = "A built-in GPU workload instead of a command: Memory (1 GiB device copies, GB/s) or Gemm (bf16 8192^3 cuBLASLt products, TFLOP/s); needs CUDA." };
        benchmark.CompletionSources.Add(_ => { PowerSweepBenchmarks.Register(); return PowerSweepWorkloads.Names.Select(n => new System.CommandLine.Completions.CompletionItem(n)); });
        var command = new Argument<string[]>("command") { Description = "The command to run at each limit (after --); if its last output line is a number, that is its throughput.", Arity = ArgumentArity.ZeroOrMore };
        foreach (var o in new Option[] { index, uuid, step, min, max, warmup, runs, objective, factor, eta, apply, benchmark }) cmd.Options.Add(o);
        cmd.Arguments.Add(command);
        cmd.SetAction((p, ct) =>
        {
            var argv = p.GetValue(command) ?? [];
            bool json = p.GetValue(context.Json);
            var op = new OptimizePowerLimitOperation
            {
                Index = p.GetValue(index),
                Uuid = p.GetValue(uuid),
                StepWatts = p.GetValue(step),
                MinWatts = p.GetValue(min),
                MaxWatts = p.GetValue(max),
                WarmupRuns = p.GetValue(warmup),
                Runs = p.GetValue(runs),
                Objective = p.GetValue(objective),
                Factor = p.GetValue(factor),
                Eta = p.GetValue(eta),
                Apply = p.GetValue(apply),
            };
            return Task.FromResult(context.Run(p, host =>
            {
                if (p.GetValue(benchmark) is { } name)
                {
                    PowerSweepBenchmarks.Register();
                    op.WorkloadLookup = name;
                    op.WorkloadName = name;
                }
                else if (argv.Length > 0)
                {
                    op.WorkloadName = string.Join(' ', argv);
                    op.Workload = token =>
                    {
                        int code = ChildProcess.Run(argv, json ? context.Stderr : context.Stdout, token, out var last);
                        if (code != 0)
                        {
                            throw new GpuOpsException("WorkloadFailed", ErrorCategory.InvalidResult, $"'{op.WorkloadName}' exited with code {code}.", argv[0]);
                        }

                        return double.TryParse(last?.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var tp) ? tp : null;
                    };
                }

                op.Execute(host);
            }, ct));
        });
        return cmd;
    }
}

/// <summary>Runs a child process for the energy and optimize verbs; its output goes to the given writer.</summary>
internal static class ChildProcess
{
    /// <summary>CommandNotFound unless argv[0] names an executable file (a path, or a name found on PATH).</summary>
    public static void EnsureRunnable(string[] argv)
    {
        if (argv.Length == 0 || string.IsNullOrWhiteSpace(argv[0]))
            throw GpuOpsException.InvalidArgument("CommandRequired", "Give the command to run after -- (e.g. gpuops energy -- python3 train.py).");
        string name = argv[0];
        bool found;
        if (name.Contains('/') || name.Contains(Path.DirectorySeparatorChar))
        {
            found = File.Exists(name);
        }
        else
        {
            var exts = OperatingSystem.IsWindows() ? (Environment.GetEnvironmentVariable("PATHEXT") ?? ".EXE").Split(';').Prepend("") : [""];
            found = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
                .Any(dir => exts.Any(e => File.Exists(Path.Combine(dir, name + e))));
        }

        if (!found)
            throw new GpuOpsException("CommandNotFound", ErrorCategory.ObjectNotFound, $"Cannot run '{name}': no such file{(name.Contains('/') ? "" : " on PATH")}.", name);
    }

    public static int Run(string[] argv, TextWriter output, CancellationToken token, out string? lastLine)
    {
        var psi = new ProcessStartInfo(argv[0]) { UseShellExecute = false, RedirectStandardOutput = true };
        foreach (var a in argv.Skip(1)) psi.ArgumentList.Add(a);
        string? last = null;
        var gate = new object();
        Process proc;
        try
        {
            proc = Process.Start(psi) ?? throw new InvalidOperationException("no process");
        }
        catch (Exception ex) when (ex is Win32Exception or InvalidOperationException)
        {
            throw new GpuOpsException("CommandNotFound", ErrorCategory.ObjectNotFound, $"Cannot run '{argv[0]}': {ex.Message}.", argv[0], ex);
        }

        using (proc)
        {
            proc.OutputDataReceived += (_, e) =>
            {
                if (e.Data is null) return;
                lock (gate)
                {
                    if (e.Data.Trim().Length > 0) last = e.Data;
                    output.WriteLine(e.Data);
                }
            };
            proc.BeginOutputReadLine();
            using (token.Register(() =>
            {
                try
                {
                    proc.Kill(entireProcessTree: true);
                }
                catch (InvalidOperationException)
                {
                }
            }))
            {
                proc.WaitForExit();
            }

            token.ThrowIfCancellationRequested();
            lock (gate)
            {
                output.Flush();
                lastLine = last;
            }

            return proc.ExitCode;
        }
    }
}
