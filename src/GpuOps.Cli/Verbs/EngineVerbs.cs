using System.CommandLine;
using GpuOps.Core.Engine;
using GpuOps.Core.Hosting;

namespace GpuOps.Cli.Verbs;

/// <summary>
/// <c>gpuops generate</c>, <c>gpuops perplexity</c> and <c>gpuops bench-inference</c>: thin verbs over the engine operations.
/// (<c>bench-inference</c> is a top-level verb so that it never collides with the compute area's <c>gpuops bench</c>.)
/// </summary>
public sealed class EngineVerbs : ICliVerbProvider
{
    public void Register(RootCommand root, CliContext context)
    {
        root.Subcommands.Add(Generate(context));
        root.Subcommands.Add(Perplexity(context));
        root.Subcommands.Add(BenchInference(context));
    }

    private static Option<string> DeviceOption() => new("--device")
    {
        Description = "cpu, cuda, cuda:N or auto (CUDA when a GPU and the CUDA engine are present, otherwise the CPU).",
        DefaultValueFactory = _ => "auto",
    };

    private static Command Generate(CliContext context)
    {
        var model = new Argument<string>("model") { Description = "Model directory (config.json + *.safetensors) or .gguf file." };
        var prompt = new Option<string[]>("--prompt", "-p") { Description = "Prompt text; repeat for a batch (run together).", Required = true, AllowMultipleArgumentsPerToken = false };
        var maxTokens = new Option<int>("--max-tokens", "-n") { Description = "New tokens at most per prompt.", DefaultValueFactory = _ => 128 };
        var temperature = new Option<double?>("--temperature", "-t") { Description = "0 = greedy (default unless the model's generation_config samples)." };
        var topK = new Option<int?>("--top-k") { Description = "Keep the k most likely tokens (0 = off)." };
        var topP = new Option<double?>("--top-p") { Description = "Keep the smallest set of tokens whose probability reaches p (1 = off)." };
        var rep = new Option<double?>("--repetition-penalty") { Description = "Penalty for tokens already in the sequence (1 = off)." };
        var seed = new Option<int?>("--seed") { Description = "Seed that makes sampling reproducible." };
        var stop = new Option<string[]>("--stop") { Description = "A string that ends a sequence; repeatable." };
        var ignoreEos = new Option<bool>("--ignore-eos") { Description = "Go on past EOS tokens." };
        var stream = new Option<bool>("--stream") { Description = "Print tokens as they are produced." };
        var maxContext = new Option<int?>("--max-context") { Description = "KV cache positions per sequence." };
        var device = DeviceOption();
        var cmd = new Command("generate", "Generate text from prompts with a model (one batch).")
        {
            model, prompt, maxTokens, temperature, topK, topP, rep, seed, stop, ignoreEos, stream, maxContext, device,
        };
        cmd.SetAction((parse, ct) =>
        {
            var op = new InvokeGpuInferenceOperation
            {
                ModelPath = parse.GetValue(model),
                Device = parse.GetValue(device),
                Prompts = parse.GetValue(prompt) ?? Array.Empty<string>(),
                MaxTokens = parse.GetValue(maxTokens),
                Temperature = parse.GetValue(temperature),
                TopK = parse.GetValue(topK),
                TopP = parse.GetValue(topP),
                RepetitionPenalty = parse.GetValue(rep),
                Seed = parse.GetValue(seed),
                Stop = parse.GetValue(stop) ?? Array.Empty<string>(),
                IgnoreEos = parse.GetValue(ignoreEos),
                Stream = parse.GetValue(stream),
                MaxContext = parse.GetValue(maxContext),
            };
            bool plainStream = op.Stream && !parse.GetValue(context.Json);
            return Task.FromResult(context.Run(parse, host =>
            {
                if (!plainStream)
                {
                    op.Execute(host);
                    return;
                }

                var streaming = new TextStreamHost(host, context.Stdout);
                op.Execute(streaming);
                streaming.Finish();
            }, ct));
        });
        return cmd;
    }

    private static Command Perplexity(CliContext context)
    {
        var model = new Argument<string>("model") { Description = "Model directory or .gguf file." };
        var file = new Option<string>("--file", "-f") { Description = "Text file (paragraphs separated by blank lines).", Required = true };
        var ctx = new Option<int>("--ctx", "--context") { Description = "Window length in tokens.", DefaultValueFactory = _ => 256 };
        var maxWindows = new Option<int?>("--max-windows") { Description = "Score only the first N windows (a quick estimate)." };
        var device = DeviceOption();
        var cmd = new Command("perplexity", "Measure a model's perplexity on a text file (non-overlapping windows, BOS + EOS per paragraph).")
        {
            model, file, ctx, maxWindows, device,
        };
        cmd.SetAction((parse, ct) => Task.FromResult(context.Run(parse, new MeasureGpuPerplexityOperation
        {
            ModelPath = parse.GetValue(model),
            Device = parse.GetValue(device),
            Path = parse.GetValue(file)!,
            Context = parse.GetValue(ctx),
            MaxWindows = parse.GetValue(maxWindows),
        }, ct)));
        return cmd;
    }

    private static Command BenchInference(CliContext context)
    {
        var model = new Argument<string>("model") { Description = "Model directory or .gguf file." };
        var lengths = new Option<int[]>("--prompt-lengths") { Description = "Prompt lengths for prefill.", DefaultValueFactory = _ => new[] { 32, 128, 512 }, AllowMultipleArgumentsPerToken = true };
        var batches = new Option<int[]>("--batch-sizes") { Description = "Batch sizes for decode.", DefaultValueFactory = _ => new[] { 1, 2, 4, 8 }, AllowMultipleArgumentsPerToken = true };
        var decode = new Option<int>("--decode-tokens") { Description = "Decode steps per batch size.", DefaultValueFactory = _ => 32 };
        var copy = new Option<int>("--copy-mib") { Description = "MiB copied to measure memory bandwidth (0 = skip; at most 65536; default 256).", DefaultValueFactory = _ => 256 };
        var device = DeviceOption();
        var cmd = new Command("bench-inference", "Benchmark a model: prefill and decode tokens/s, with the memory-bandwidth bound beside each decode figure.")
        {
            model, lengths, batches, decode, copy, device,
        };
        cmd.SetAction((parse, ct) => Task.FromResult(context.Run(parse, new MeasureGpuInferenceOperation
        {
            ModelPath = parse.GetValue(model),
            Device = parse.GetValue(device),
            PromptLengths = parse.GetValue(lengths)!,
            BatchSizes = parse.GetValue(batches)!,
            DecodeTokens = parse.GetValue(decode),
            CopyBytes = (long)parse.GetValue(copy) << 20,
        }, ct)));
        return cmd;
    }

    /// <summary>
    /// --stream without --json: the first prompt's text goes straight to stdout as it arrives; the other prompts of a
    /// batch are printed, one after another, when the batch is done.
    /// </summary>
    private sealed class TextStreamHost(IOperationHost inner, TextWriter stdout) : IOperationHost
    {
        private readonly SortedDictionary<int, System.Text.StringBuilder> _later = new();

        public CancellationToken CancellationToken => inner.CancellationToken;

        public void WriteObject(object item)
        {
            if (item is not GpuInferenceToken t)
            {
                inner.WriteObject(item);
                return;
            }

            if (t.Sequence == 0)
            {
                stdout.Write(t.Text);
                if (t.IsLast) stdout.WriteLine();
                stdout.Flush();
                return;
            }

            if (!_later.TryGetValue(t.Sequence, out var sb)) _later[t.Sequence] = sb = new System.Text.StringBuilder();
            sb.Append(t.Text);
        }

        public void Finish()
        {
            foreach (var sb in _later.Values) stdout.WriteLine(sb.ToString());
            stdout.Flush();
        }

        public void WriteProgress(ProgressInfo progress) => inner.WriteProgress(progress);
        public void WriteVerbose(string message) => inner.WriteVerbose(message);
        public void WriteWarning(string message) => inner.WriteWarning(message);
        public bool ShouldProcess(string target, string action, ConfirmImpact impact = ConfirmImpact.Medium) => inner.ShouldProcess(target, action, impact);
        public void WriteError(OperationError error) => inner.WriteError(error);
    }
}
