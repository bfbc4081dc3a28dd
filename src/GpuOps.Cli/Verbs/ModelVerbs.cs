using System.CommandLine;
using GpuOps.Core.Hosting;
using GpuOps.Core.Models;

namespace GpuOps.Cli.Verbs;

/// <summary>
/// <c>gpuops model info</c>, <c>gpuops model write-random</c>, <c>gpuops tokenize</c>, <c>gpuops detokenize</c>.
/// </summary>
public sealed class ModelVerbs : ICliVerbProvider
{
    /// <summary>What <c>gpuops tokenize --json</c> prints per text.</summary>
    public sealed record TokenIds(int[] Ids);

    /// <summary>What <c>gpuops detokenize --json</c> prints.</summary>
    public sealed record DecodedText(string Text);

    public void Register(RootCommand root, CliContext context)
    {
        var model = GpuOpsCli.Group(root, "model", "Inspect model files (safetensors directories, GGUF) and write test checkpoints.");

        var infoPath = new Argument<string>("path") { Description = "Model directory (config.json + *.safetensors) or .gguf file." };
        var info = new Command("info", "Architecture, parameter count, dtypes, file size and memory needs of a model, without loading weights.") { infoPath };
        info.SetAction((parse, ct) => Task.FromResult(context.Run(parse, new GetModelInfoOperation { Path = parse.GetValue(infoPath)! }, ct)));
        model.Subcommands.Add(info);

        var outPath = new Argument<string>("path") { Description = "Output directory." };
        var preset = new Option<string>("--preset") { Description = "llama3-8b (default) or tiny.", DefaultValueFactory = _ => "llama3-8b" };
        var layers = new Option<int?>("--layers") { Description = "Override the number of layers (smaller files)." };
        var seed = new Option<ulong>("--seed") { Description = "Random seed.", DefaultValueFactory = _ => 1UL };
        var shard = new Option<long>("--max-shard-bytes") { Description = "Largest shard in bytes (default 5e9).", DefaultValueFactory = _ => 5_000_000_000L };
        var force = new Option<bool>("--force") { Description = "Overwrite an existing checkpoint." };
        var write = new Command("write-random", "Write a bf16 checkpoint with random weights (default: Llama-3-8B shape) for load benchmarks.")
        {
            outPath, preset, layers, seed, shard, force,
        };
        write.SetAction((parse, ct) => Task.FromResult(context.Run(parse, new WriteRandomCheckpointOperation
        {
            Path = parse.GetValue(outPath)!,
            Preset = parse.GetValue(preset)!,
            Layers = parse.GetValue(layers),
            Seed = parse.GetValue(seed),
            MaxShardBytes = parse.GetValue(shard),
            Force = parse.GetValue(force),
        }, ct)));
        model.Subcommands.Add(write);

        var tokModel = new Argument<string>("model") { Description = "Model directory, tokenizer.json or .gguf file." };
        var text = new Option<string[]>("--text", "-t") { Description = "Text to encode (repeatable).", AllowMultipleArgumentsPerToken = true, Required = true };
        var noSpecial = new Option<bool>("--no-special-tokens") { Description = "Do not add BOS/EOS from the post-processor template." };
        var tokenize = new Command("tokenize", "Encode text to token ids exactly as Hugging Face tokenizers do; --json prints {\"ids\":[...]}.") { tokModel, text, noSpecial };
        tokenize.SetAction((parse, ct) => Task.FromResult(context.Run(parse, host =>
        {
            var op = new ConvertToTokenOperation { Model = parse.GetValue(tokModel)!, Text = parse.GetValue(text)!, AddSpecialTokens = !parse.GetValue(noSpecial) };
            op.Execute(new MappingHost(host, o => o is TokenizationResult r ? new TokenIds(r.Ids) : o, parse.GetValue(context.Json) ? null : o => o is TokenizationResult r ? string.Join(" ", r.Ids) : null));
        }, ct)));
        root.Subcommands.Add(tokenize);

        var detModel = new Argument<string>("model") { Description = "Model directory, tokenizer.json or .gguf file." };
        var ids = new Argument<string[]>("ids") { Description = "Token ids (separated by spaces or commas).", Arity = ArgumentArity.OneOrMore };
        var keepSpecial = new Option<bool>("--keep-special-tokens") { Description = "Keep special tokens (BOS/EOS) in the text." };
        var detokenize = new Command("detokenize", "Decode token ids to text through the tokenizer's decoder chain.") { detModel, ids, keepSpecial };
        detokenize.SetAction((parse, ct) => Task.FromResult(context.Run(parse, host =>
        {
            var parsed = new List<int>();
            foreach (var part in parse.GetValue(ids)!.SelectMany(s => s.Split([',', ' ', '[', ']'], StringSplitOptions.RemoveEmptyEntries)))
            {
                if (!int.TryParse(part, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var id))
                    throw GpuOpsException.InvalidArgument("InvalidTokenId", $"'{part}' is not a token id.", part);
                parsed.Add(id);
            }

            var op = new ConvertFromTokenOperation { Model = parse.GetValue(detModel)!, Ids = parsed.ToArray(), SkipSpecialTokens = !parse.GetValue(keepSpecial) };
            op.Execute(new MappingHost(host, o => o is DetokenizationResult r ? new DecodedText(r.Text) : o, parse.GetValue(context.Json) ? null : o => o is DetokenizationResult r ? r.Text : null));
        }, ct)));
        root.Subcommands.Add(detokenize);
    }

    /// <summary>Forwards to a host, reshaping result objects (JSON form, or plain text for humans).</summary>
    private sealed class MappingHost(IOperationHost inner, Func<object, object> json, Func<object, string?>? text) : IOperationHost
    {
        public CancellationToken CancellationToken => inner.CancellationToken;
        public void WriteObject(object item) => inner.WriteObject(text?.Invoke(item) ?? json(item));
        public void WriteProgress(ProgressInfo progress) => inner.WriteProgress(progress);
        public void WriteVerbose(string message) => inner.WriteVerbose(message);
        public void WriteWarning(string message) => inner.WriteWarning(message);
        public bool ShouldProcess(string target, string action, ConfirmImpact impact = ConfirmImpact.Medium) => inner.ShouldProcess(target, action, impact);
        public void WriteError(OperationError error) => inner.WriteError(error);
    }
}
