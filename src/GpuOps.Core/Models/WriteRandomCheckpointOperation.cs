using System.Diagnostics;
using System.Text.Json;
using GpuOps.Core.Formats;
using GpuOps.Core.Hosting;

namespace GpuOps.Core.Models;

/// <summary>What <see cref="WriteRandomCheckpointOperation"/> wrote.</summary>
public sealed record RandomCheckpointInfo(string Path, string Preset, int Files, long Bytes, long Parameters, double Seconds);

/// <summary>
/// Writes a Hugging Face-style bf16 checkpoint with random weights (config.json, sharded *.safetensors and
/// model.safetensors.index.json) through the streaming <see cref="SafeTensorsWriter"/>; used for load benchmarks.
/// Weights are uniform in ±[2^-7, 2^-6) with random signs, norms are 1.0.
/// </summary>
public sealed class WriteRandomCheckpointOperation : IOperation
{
    /// <summary>Output directory (created).</summary>
    public string Path { get; set; } = "";

    /// <summary>"llama3-8b" (default) or "tiny" (the fortune-llama shape).</summary>
    public string Preset { get; set; } = "llama3-8b";

    /// <summary>Override the layer count (smaller files for quick runs).</summary>
    public int? Layers { get; set; }

    public ulong Seed { get; set; } = 1;

    /// <summary>Largest shard (HF's default is 5 GB).</summary>
    public long MaxShardBytes { get; set; } = 5_000_000_000;

    /// <summary>Overwrite existing files.</summary>
    public bool Force { get; set; }

    public static LlamaConfig PresetConfig(string preset) => preset.ToLowerInvariant() switch
    {
        "llama3-8b" => LlamaLayout.Llama3_8B,
        "tiny" => new LlamaConfig("LlamaForCausalLM", "llama", 4096, 256, 704, 6, 4, 2, 64, 1e-5, 10000, null, false, false, 1024, "bfloat16"),
        _ => throw GpuOpsException.InvalidArgument("UnknownPreset", $"unknown preset '{preset}' (llama3-8b, tiny).", preset),
    };

    public void Execute(IOperationHost host)
    {
        if (string.IsNullOrWhiteSpace(Path)) throw GpuOpsException.InvalidArgument("PathRequired", "give the output directory.");
        var config = PresetConfig(Preset);
        if (Layers is { } l)
        {
            if (l <= 0) throw GpuOpsException.InvalidArgument("InvalidLayers", "layers must be positive.", l);
            config = config with { NumLayers = l };
        }

        var dir = System.IO.Path.GetFullPath(Path);
        if (!Force && File.Exists(System.IO.Path.Combine(dir, "config.json")))
            throw new GpuOpsException("CheckpointExists", ErrorCategory.ResourceExists, $"{dir} already holds a config.json.", dir, null, "Use -Force / --force to overwrite it.");
        var tensors = LlamaLayout.Tensors(config).Select(t => new TensorDeclaration(t.Name, TensorDType.BF16, t.Shape)).ToList();
        long total = tensors.Sum(t => t.ByteLength);
        if (!host.ShouldProcess(dir, $"Write a random {Preset} bf16 checkpoint ({total / 1e9:F1} GB)")) return;
        Directory.CreateDirectory(dir);

        var shards = new List<List<TensorDeclaration>> { new() };
        long inShard = 0;
        foreach (var t in tensors)
        {
            if (inShard > 0 && inShard + t.ByteLength > MaxShardBytes)
            {
                shards.Add(new());
                inShard = 0;
            }

            shards[^1].Add(t);
            inShard += t.ByteLength;
        }

        var sw = Stopwatch.StartNew();
        var progress = new ProgressReporter(host, 1, "Writing random checkpoint");
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var buffer = new byte[8 << 20];
        ulong state = Seed == 0 ? 0x9E3779B97F4A7C15UL : Seed;
        long done = 0;
        for (int s = 0; s < shards.Count; s++)
        {
            string name = shards.Count == 1 ? "model.safetensors" : $"model-{s + 1:D5}-of-{shards.Count:D5}.safetensors";
            using var writer = new SafeTensorsWriter(System.IO.Path.Combine(dir, name), shards[s], new Dictionary<string, string> { ["format"] = "pt" });
            foreach (var t in shards[s])
            {
                weightMap[t.Name] = name;
                bool norm = t.Shape.Length == 1 && t.Name.EndsWith("norm.weight", StringComparison.Ordinal);
                long left = t.ByteLength;
                while (left > 0)
                {
                    host.CancellationToken.ThrowIfCancellationRequested();
                    int n = (int)Math.Min(buffer.Length, left);
                    if (norm) FillOnes(buffer.AsSpan(0, n));
                    else FillRandom(buffer.AsSpan(0, n), ref state);
                    writer.Write(buffer.AsSpan(0, n));
                    left -= n;
                    done += n;
                    progress.Report((double)done / total, $"{done / 1e9:F2} of {total / 1e9:F2} GB", name);
                }
            }

            writer.Complete();
        }

        if (shards.Count > 1)
        {
            var index = new Dictionary<string, object> { ["metadata"] = new Dictionary<string, long> { ["total_size"] = total }, ["weight_map"] = weightMap };
            File.WriteAllText(System.IO.Path.Combine(dir, "model.safetensors.index.json"), JsonSerializer.Serialize(index, new JsonSerializerOptions { WriteIndented = true }));
        }
        else
        {
            File.Delete(System.IO.Path.Combine(dir, "model.safetensors.index.json"));
        }

        File.WriteAllText(System.IO.Path.Combine(dir, "config.json"), LlamaLayout.ToConfigJson(config));
        File.WriteAllText(System.IO.Path.Combine(dir, "generation_config.json"), """{"bos_token_id": 128000, "eos_token_id": [128001, 128009], "do_sample": false}""");
        progress.Complete();
        host.WriteObject(new RandomCheckpointInfo(dir, Preset, shards.Count, total, LlamaLayout.ParameterCount(config), sw.Elapsed.TotalSeconds));
    }

    private static void FillOnes(Span<byte> b)
    {
        var u = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(b);
        u.Fill(0x3F80);
    }

    private static void FillRandom(Span<byte> b, ref ulong state)
    {
        var u = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(b);
        ulong x = state;
        for (int i = 0; i < u.Length; i++)
        {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            // Four bf16 values: keep sign and mantissa bits, exponent fixed at 2^-7.
            u[i] = (x & 0x807F_807F_807F_807FUL) | 0x3C00_3C00_3C00_3C00UL;
        }

        state = x;
    }
}
