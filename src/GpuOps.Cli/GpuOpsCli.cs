using System.CommandLine;
using System.Reflection;
using GpuOps.Core.Hosting;

namespace GpuOps.Cli;

/// <summary>
/// A group of CLI verbs. Each area (hardware, compute, models, inference) adds one class implementing this;
/// the root command discovers them by reflection, so areas never edit a shared file to add verbs.
/// </summary>
public interface ICliVerbProvider
{
    /// <summary>Add commands to the root (or to an existing group found by name).</summary>
    void Register(RootCommand root, CliContext context);
}

/// <summary>What verbs share: the global options and the runner.</summary>
public sealed class CliContext
{
    public CliContext(TextWriter stdout, TextWriter stderr)
    {
        Stdout = stdout;
        Stderr = stderr;
    }

    public TextWriter Stdout { get; }
    public TextWriter Stderr { get; }

    /// <summary>Cancelled by the first Ctrl+C / SIGTERM (GpuOpsCli.Run with handleSignals): every operation's token.</summary>
    public CancellationToken Interrupt { get; init; }

    /// <summary>--json: one JSON object per result line.</summary>
    public Option<bool> Json { get; } = new("--json") { Description = "Print one JSON object per result line.", Recursive = true };

    /// <summary>--what-if: say what would change, change nothing.</summary>
    public Option<bool> WhatIf { get; } = new("--what-if") { Description = "Show what would change without changing it.", Recursive = true };

    /// <summary>--yes: confirm state changes without asking.</summary>
    public Option<bool> Yes { get; } = new("--yes", "-y") { Description = "Confirm state changes without asking.", Recursive = true };

    /// <summary>--verbose: print verbose messages on stderr.</summary>
    public Option<bool> Verbose { get; } = new("--verbose", "-v") { Description = "Print verbose messages on stderr.", Recursive = true };

    /// <summary>--quiet: no progress on stderr.</summary>
    public Option<bool> Quiet { get; } = new("--quiet", "-q") { Description = "No progress output.", Recursive = true };

    /// <summary>Run one operation with a console host; returns the exit code.</summary>
    public int Run(ParseResult parse, IOperation operation, CancellationToken cancellationToken) =>
        Run(parse, host => operation.Execute(host), cancellationToken);

    /// <summary>Run a body with a console host (for verbs that run several operations); returns the exit code.</summary>
    public int Run(ParseResult parse, Action<IOperationHost> body, CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, Interrupt);
        var token = linked.Token;
        var host = new ConsoleHost(Stdout, Stderr, token)
        {
            Json = parse.GetValue(Json),
            WhatIf = parse.GetValue(WhatIf),
            AssumeYes = parse.GetValue(Yes),
            ShowVerbose = parse.GetValue(Verbose),
            ShowProgress = !parse.GetValue(Quiet),
            Words = m => CliWords(m, parse.CommandResult.Command),
        };
        try
        {
            body(host);
            host.Flush();
            return host.OutputClosed ? 141 : host.ErrorCount > 0 ? 1 : 0;
        }
        catch (Exception ex) when (host.OutputClosed && ex is OperationCanceledException or GpuOpsException or IOException)
        {
            return 141;
        }
        catch (GpuOpsException ex)
        {
            host.Flush();
            Stderr.WriteLine(CliWords($"gpuops: {ex.Message}" + (ex.RecommendedAction is { Length: > 0 } a ? $" {a}" : string.Empty), parse.CommandResult.Command));
            return 1;
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            TryFlush(host);
            if (host.OutputClosed) return 141;
            Stderr.WriteLine("gpuops: cancelled.");
            return 130;
        }
    }

    // PowerShell names the operations' messages use, and the option a CLI command has for them under another name
    private static readonly (string Ps, string Cli)[] OtherNames = [("Path", "--file"), ("Context", "--ctx"), ("ScriptBlock", "-- <command>"), ("MaxTokens", "--max-tokens")];

    /// <summary>
    /// The operations speak PowerShell ("-MaxTokens", "-Watts"); on the command line those words become the command's
    /// own options ("--max-tokens", "--watts") where it has one, and stay as they are where it has none.
    /// </summary>
    internal static string CliWords(string message, Command command)
    {
        var options = command.Options.Select(o => o.Name).Concat(command.Options.SelectMany(o => o.Aliases))
            .Where(n => n.StartsWith("--", StringComparison.Ordinal)).ToHashSet(StringComparer.Ordinal);
        return System.Text.RegularExpressions.Regex.Replace(message, @"(?<![\w-])-([A-Z][A-Za-z0-9]*)(?![\w-])", m =>
        {
            string ps = m.Groups[1].Value;
            string kebab = "--" + System.Text.RegularExpressions.Regex.Replace(ps, "(?<=[a-z0-9])([A-Z])", "-$1").ToLowerInvariant();
            if (options.Contains(kebab)) return kebab;
            foreach (var (p, c) in OtherNames)
                if (p == ps && (options.Contains(c) || c.StartsWith("-- ", StringComparison.Ordinal) && command.Arguments.Any(x => x.Name == "command"))) return c;
            return m.Value;
        });
    }

    private static void TryFlush(ConsoleHost host)
    {
        try
        {
            host.Flush();
        }
        catch (IOException)
        {
        }
    }
}

public static class GpuOpsCli
{
    public static RootCommand BuildRoot(CliContext context)
    {
        var root = new RootCommand("gpuops: GPU inventory, telemetry, power capping, kernels, models and inference.");
        root.Options.Add(context.Json);
        root.Options.Add(context.WhatIf);
        root.Options.Add(context.Yes);
        root.Options.Add(context.Verbose);
        root.Options.Add(context.Quiet);
        var providers = typeof(GpuOpsCli).Assembly.GetTypes()
            .Where(t => typeof(ICliVerbProvider).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false })
            .OrderBy(t => t.FullName, StringComparer.Ordinal);
        foreach (var t in providers)
        {
            ((ICliVerbProvider)Activator.CreateInstance(t)!).Register(root, context);
        }

        return root;
    }

    /// <summary>Find or create a group command (e.g. "gpu", "power") under the root.</summary>
    public static Command Group(Command parent, string name, string description)
    {
        var existing = parent.Subcommands.FirstOrDefault(c => c.Name == name);
        if (existing is not null) return existing;
        var group = new Command(name, description);
        parent.Subcommands.Add(group);
        return group;
    }

    private static IEnumerable<string> Ancestry(System.CommandLine.Parsing.CommandResult r)
    {
        var names = new List<string>();
        for (System.CommandLine.Parsing.SymbolResult? x = r; x is System.CommandLine.Parsing.CommandResult cr && cr.Parent is not null; x = cr.Parent)
            names.Insert(0, cr.Command.Name);
        return names;
    }

    /// <summary>System.CommandLine's parse messages without .NET type names ("as expected type 'System.Nullable`1[System.Double]'" -> "a number").</summary>
    internal static string Friendly(string message)
    {
        var m = System.Text.RegularExpressions.Regex.Match(message, @"^Cannot parse argument '(?<v>.*)' for (?:option|argument) '(?<o>[^']*)' as expected type '(?<t>[^']*)'\.?(?<rest>.*)$",
            System.Text.RegularExpressions.RegexOptions.Singleline);
        if (!m.Success) return message;
        string t = m.Groups["t"].Value;
        // an enum: "Did you mean one of the following?" and the names, one a line
        var rest = m.Groups["rest"].Value.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (rest.Length > 1 && rest[0].StartsWith("Did you mean", StringComparison.Ordinal))
            return $"'{m.Groups["v"].Value}' is not a valid value for {m.Groups["o"].Value}: it takes {string.Join(", ", rest[1..^1])}{(rest.Length > 2 ? " or " : "")}{rest[^1]}.";
        string kind = t switch
        {
            _ when t.Contains("System.Double") || t.Contains("System.Single") || t.Contains("System.Decimal") => "a number",
            _ when t.Contains("System.Int32") || t.Contains("System.Int64") || t.Contains("System.UInt") => "a whole number",
            _ when t.Contains("System.Boolean") => "true or false",
            _ => "a value of the right kind",
        };
        return $"'{m.Groups["v"].Value}' is not a valid value for {m.Groups["o"].Value}: it takes {kind}.";
    }

    /// <summary>
    /// Parses and runs one command line. With <paramref name="handleSignals"/> (the gpuops process, not tests that run
    /// it in theirs) the first Ctrl+C or SIGTERM cancels the running operation, whose clean-up then runs (the power limit
    /// before a sweep put back, a child process killed, a stream's statistics printed) before exit code 130; a second
    /// one ends the process at once.
    /// </summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, bool handleSignals = false)
    {
        using var interrupt = new CancellationTokenSource();
        var registrations = new List<System.Runtime.InteropServices.PosixSignalRegistration>();
        if (handleSignals)
        {
            int signals = 0;
            void OnSignal(System.Runtime.InteropServices.PosixSignalContext c)
            {
                if (Interlocked.Increment(ref signals) > 1) return;   // (the second: the default, the process ends)
                c.Cancel = true;
                try
                {
                    stderr.WriteLine($"gpuops: {c.Signal}: stopping (again to end at once)");
                }
                catch (IOException)
                {
                }

                interrupt.Cancel();
            }

            registrations.Add(System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, OnSignal));
            registrations.Add(System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, OnSignal));
        }

        try
        {
            return Run(args, stdout, stderr, interrupt.Token);
        }
        finally
        {
            foreach (var r in registrations) r.Dispose();
        }
    }

    private static int Run(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken interrupt)
    {
        var context = new CliContext(stdout, stderr) { Interrupt = interrupt };
        var root = BuildRoot(context);
        var parse = root.Parse(args);
        // (signals are ours: System.CommandLine's own handler would end the process before the clean-up)
        var config = new InvocationConfiguration { Output = stdout, Error = stderr, ProcessTerminationTimeout = null, EnableDefaultExceptionHandler = false };
        // A malformed command line: one line saying what is wrong and where the options are listed (not the whole help
        // and .NET type names). No command at all still shows the help.
        if (parse.Errors.Count > 0 && args.Length > 0)
        {
            var path = string.Join(' ', Ancestry(parse.CommandResult).Prepend("gpuops"));   // (the root has no names of its own)
            // (the most telling error first: a word it does not know, a value it cannot read, then the rest)
            var error = parse.Errors.OrderBy(e => e.Message.StartsWith("Unrecognized", StringComparison.Ordinal) ? 0
                : e.Message.StartsWith("Cannot parse", StringComparison.Ordinal) ? 1 : 2).First();
            stderr.WriteLine($"gpuops: {Friendly(error.Message)} ({path} --help lists the options)");
            return 1;
        }

        try
        {
            return parse.Invoke(config);
        }
        catch (GpuOpsException ex)
        {
            // (the same words as CliContext.Run's: the command's own option names, and the recommended action)
            stderr.WriteLine(CliContext.CliWords($"gpuops: {ex.Message}" + (ex.RecommendedAction is { Length: > 0 } a ? $" {a}" : string.Empty),
                parse.CommandResult.Command));
            return 1;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // a defect, not a usage error: one line (the whole trace with GPUOPS_TRACE=1), exit code 70 (EX_SOFTWARE)
            stderr.WriteLine($"gpuops: internal error: {ex.GetType().Name}: {ex.Message} (please report it; GPUOPS_TRACE=1 prints the stack)");
            if (Environment.GetEnvironmentVariable("GPUOPS_TRACE") == "1") stderr.WriteLine(ex);
            return 70;
        }
    }
}
