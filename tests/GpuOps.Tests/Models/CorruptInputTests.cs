using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using GpuOps.Core.Formats;
using GpuOps.Core.Models;
using GpuOps.Tests.Support;
using Xunit;

namespace GpuOps.Tests.Models;

/// <summary>
/// Mutation testing of the readers: thousands of corrupted variants of the real fixture files (truncations,
/// random and "interesting" values written over header bytes, targeted GGUF fields such as string and array
/// lengths, tensor dims, types and offsets, and structural safetensors header edits). Every variant must either
/// open (and then read without trouble) or fail with a <see cref="ModelFormatException"/>: never another
/// exception, a hang or a huge allocation. One run uses a fixed seed, one a fresh seed printed on failure.
/// </summary>
public sealed class CorruptInputTests(ITestOutputHelper output)
{
    private const int FixedSeed = 20261122;
    private const long MaxAllocationPerVariant = 256L << 20;
    private static readonly TimeSpan MaxTimePerVariant = TimeSpan.FromSeconds(5);

    private static readonly ulong[] Interesting =
    [
        0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 31, 32, 33, 63, 64, 255, 256, 4096, 65535, 65536,
        0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x1_0000_0000, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000,
        0xFFFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFE, 1UL << 40, 1UL << 62,
    ];

    private static readonly Lazy<byte[]> Gguf = new(() => File.ReadAllBytes(Repo.Data("fortune-llama-gguf", "fortune-llama-q4_k_m.gguf")));
    private static readonly Lazy<byte[]> GgufMx = new(() => File.ReadAllBytes(Repo.Data("fortune-llama-gguf", "fortune-llama-mxfp4.gguf")));
    private static readonly Lazy<byte[]> Adapter = new(() => File.ReadAllBytes(Repo.Data("fortune-llama-lora-bofh", "adapter_model.safetensors")));
    private static readonly Lazy<byte[]> Model = new(() => File.ReadAllBytes(Repo.Data("fortune-llama", "model.safetensors")));

    [Fact]
    public void Corrupted_variants_with_a_fixed_seed_fail_cleanly() => Campaign(FixedSeed);

    [Fact]
    public void Corrupted_variants_with_a_fresh_seed_fail_cleanly() => Campaign(Environment.TickCount ^ Guid.NewGuid().GetHashCode());

    [Fact]
    public void Unmodified_fixtures_open_through_the_in_memory_path()
    {
        using (var f = GgufFile.FromMemory(Gguf.Value, Gguf.Value.Length)) Assert.Equal(57, f.Tensors.Count);
        using (var s = SafeTensorsFile.FromMemory(Model.Value, Model.Value.Length)) Assert.Equal(57, s.Names.Count);
    }

    private void Campaign(int seed)
    {
        var rng = new Random(seed);
        var sw = Stopwatch.StartNew();
        var stats = new Dictionary<string, (int Ok, int Rejected)>();
        void Count(string kind, bool ok)
        {
            stats.TryGetValue(kind, out var s);
            stats[kind] = ok ? (s.Ok + 1, s.Rejected) : (s.Ok, s.Rejected + 1);
        }

        foreach (var (name, data) in new[] { ("q4_k_m.gguf", Gguf.Value), ("mxfp4.gguf", GgufMx.Value) })
        {
            var fields = GgufFields(data);
            int headerEnd = fields.Max(f => f.Offset + f.Size);
            var work = (byte[])data.Clone();
            for (int v = 0; v < 1300; v++)
            {
                var (desc, length, restore) = MutateGguf(rng, work, data, fields, headerEnd);
                Count("gguf", Check(seed, v, name, desc, () => OpenGguf(work, length, rng)));
                restore();
            }
        }

        {
            var data = Model.Value;
            int headerEnd = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(data);
            var work = (byte[])data.Clone();
            for (int v = 0; v < 1000; v++)
            {
                var (desc, length, restore) = MutateBytes(rng, work, data, headerEnd);
                Count("safetensors-bytes", Check(seed, v, "model.safetensors", desc, () => OpenSafeTensors(work, length, rng)));
                restore();
            }
        }

        {
            var data = Adapter.Value;
            int headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(data);
            var header = JsonNode.Parse(Encoding.UTF8.GetString(data, 8, headerLength))!.AsObject();
            var payload = data.AsSpan(8 + headerLength).ToArray();
            for (int v = 0; v < 1000; v++)
            {
                var (desc, bytes) = MutateSafeTensorsHeader(rng, header, payload);
                Count("safetensors-json", Check(seed, v, "adapter_model.safetensors", desc, () => OpenSafeTensors(bytes, bytes.Length, rng)));
            }
        }

        // Both outcomes must occur: the harness is not vacuous (mutations do get rejected, and some survive and are read).
        foreach (var (kind, s) in stats)
        {
            Assert.True(s.Rejected > 100, $"{kind}: only {s.Rejected} variants rejected (seed {seed})");
        }

        Assert.True(stats.Values.Sum(s => s.Ok) > 100, $"too few variants opened (seed {seed})");
        output.WriteLine($"seed {seed}: {string.Join("; ", stats.Select(kv => $"{kv.Key} {kv.Value.Ok} opened, {kv.Value.Rejected} rejected"))} in {sw.Elapsed.TotalSeconds:F1} s");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(90), $"campaign took {sw.Elapsed} (seed {seed})");
    }

    /// <summary>True when the variant opened, false when it was rejected with a ModelFormatException; fails otherwise.</summary>
    private static bool Check(int seed, int variant, string file, string desc, Action open)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var sw = Stopwatch.StartNew();
        bool ok;
        try
        {
            open();
            ok = true;
        }
        catch (ModelFormatException ex)
        {
            Assert.False(string.IsNullOrWhiteSpace(ex.Message));
            Assert.Contains(":", ex.Message); // "file: what is wrong"
            ok = false;
        }
        catch (Exception ex)
        {
            Assert.Fail($"seed {seed}, variant {variant} of {file} ({desc}): {ex.GetType().Name}: {ex.Message}\n{ex.StackTrace}");
            throw;
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < MaxAllocationPerVariant, $"seed {seed}, variant {variant} of {file} ({desc}): allocated {allocated} bytes");
        Assert.True(sw.Elapsed < MaxTimePerVariant, $"seed {seed}, variant {variant} of {file} ({desc}): took {sw.Elapsed}");
        return ok;
    }

    [Theory]
    [InlineData("tokenizer.ggml.tokens array length", 0x4000_0000_0000_0000UL, "cannot fit")]
    [InlineData("general.name length", 0x7FFF_FFFF_FFFF_FFFFUL, "claims")]
    [InlineData("output.weight n_dims", 5UL, "5 dimensions")]
    [InlineData("output.weight type", 77UL, "not supported")]
    [InlineData("output.weight offset", 17UL, "not a multiple of the alignment")]
    [InlineData("output.weight dim 1", 1UL << 40, "runs past")]
    [InlineData("output.weight dim 0", 1UL << 62, "overflow")]
    [InlineData("tensor count", 1UL << 40, "cannot fit")]
    [InlineData("llama.attention.head_count value", 0UL, "inconsistent")]
    public void Absurd_gguf_fields_give_clear_errors(string field, ulong value, string expected)
    {
        var data = (byte[])Gguf.Value.Clone();
        var f = GgufFields(data).First(x => x.What == field);
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        b[..f.Size].CopyTo(data.AsSpan(f.Offset));
        var ex = Assert.Throws<ModelFormatException>(() =>
        {
            using var g = GgufFile.FromMemory(data, data.Length, "bad.gguf");
            GgufModel.ReadConfig(g);
        });
        Assert.StartsWith("bad.gguf: ", ex.Message);
        Assert.Contains(expected, ex.Message);
    }

    private static void OpenGguf(byte[] data, int length, Random rng)
    {
        using var f = GgufFile.FromMemory(data, length, "corrupt.gguf");
        var config = GgufModel.ReadConfig(f);
        Assert.True(config.HiddenSize > 0);
        if (rng.Next(6) == 0)
        {
            var tok = GgufModel.ReadTokenizer(f);
            tok.Decode(tok.Encode("Hello, world! 123", addSpecialTokens: true));
        }

        using var w = new GgufWeightSource(f, ownsFile: false);
        if (w.Names.Count == 0) return;
        var name = w.Names.ElementAt(rng.Next(w.Names.Count));
        var info = w.GetInfo(name);
        if (info.ElementCount <= 1 << 22) w.ReadFloat32(name, new float[info.ElementCount]);
    }

    private static void OpenSafeTensors(byte[] data, int length, Random rng)
    {
        var f = SafeTensorsFile.FromMemory(data, length, "corrupt.safetensors");
        using var w = SafeTensorsWeightSource.FromFiles(f);
        if (w.Names.Count == 0) return;
        var name = w.Names.ElementAt(rng.Next(w.Names.Count));
        var info = w.GetInfo(name);
        if (info.ElementCount <= 1 << 22 && DTypes.ElementSize(info.DType) > 0) w.ReadFloat32(name, new float[info.ElementCount]);
    }

    private static ulong Pick(Random rng) => rng.Next(4) == 0 ? (ulong)rng.NextInt64() : Interesting[rng.Next(Interesting.Length)];

    /// <summary>Truncation or overwriting bytes of the header region (restored afterwards).</summary>
    private static (string, int, Action) MutateBytes(Random rng, byte[] work, byte[] original, int headerEnd)
    {
        int kind = rng.Next(4);
        if (kind == 0)
        {
            int len = rng.Next(3) == 0 ? rng.Next(original.Length) : rng.Next(Math.Min(original.Length, headerEnd + 64));
            return ($"truncate to {len}", len, () => { });
        }

        int size = kind == 1 ? 1 : kind == 2 ? 4 : 8;
        int pos = rng.Next(Math.Max(1, Math.Min(headerEnd, original.Length) - size));
        ulong value = kind == 1 ? (ulong)rng.Next(256) : Pick(rng);
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        b[..size].CopyTo(work.AsSpan(pos));
        return ($"write {value:X} ({size} bytes) at {pos}", original.Length, () => original.AsSpan(pos, size).CopyTo(work.AsSpan(pos)));
    }

    private static (string, int, Action) MutateGguf(Random rng, byte[] work, byte[] original, List<(int Offset, int Size, string What)> fields, int headerEnd)
    {
        if (rng.Next(3) > 0)
        {
            var f = fields[rng.Next(fields.Count)];
            ulong value = Pick(rng);
            Span<byte> b = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(b, value);
            b[..f.Size].CopyTo(work.AsSpan(f.Offset));
            return ($"{f.What} at {f.Offset} := {value:X}", original.Length, () => original.AsSpan(f.Offset, f.Size).CopyTo(work.AsSpan(f.Offset)));
        }

        return MutateBytes(rng, work, original, headerEnd);
    }

    /// <summary>Structural edits of a safetensors JSON header (offsets, shapes, dtypes, names, duplicates).</summary>
    private static (string, byte[]) MutateSafeTensorsHeader(Random rng, JsonObject original, byte[] payload)
    {
        var h = original.DeepClone().AsObject();
        var names = h.Where(p => p.Key != "__metadata__").Select(p => p.Key).ToList();
        string target = names[rng.Next(names.Count)];
        var entry = h[target]!.AsObject();
        string desc;
        byte[]? rawHeader = null;
        switch (rng.Next(9))
        {
            case 0:
            {
                var offs = entry["data_offsets"]!.AsArray();
                int i = rng.Next(2);
                long v = rng.Next(3) switch { 0 => (long)Pick(rng), 1 => -rng.Next(1, 100), _ => offs[i]!.GetValue<long>() + rng.Next(-64, 64) };
                offs[i] = v;
                desc = $"{target}.data_offsets[{i}] := {v}";
                break;
            }

            case 1:
            {
                var shape = entry["shape"]!.AsArray();
                long v = rng.Next(2) == 0 ? (long)(Pick(rng) & long.MaxValue) : -rng.Next(1, 5);
                if (shape.Count > 0) shape[rng.Next(shape.Count)] = v; else shape.Add(v);
                desc = $"{target}.shape dim := {v}";
                break;
            }

            case 2:
                entry["shape"]!.AsArray().Add(1L << 33);
                entry["shape"]!.AsArray().Add(1L << 33);
                desc = $"{target}.shape gets dims whose product overflows";
                break;
            case 3:
            {
                string dt = new[] { "Q4", "F128", "", "bf16", "U16", "F8_E4M3FNUZ", "I4" }[rng.Next(7)];
                entry["dtype"] = dt;
                desc = $"{target}.dtype := '{dt}'";
                break;
            }

            case 4:
            {
                // Two tensors with the same range: overlap.
                var other = h[names[rng.Next(names.Count)]]!.AsObject();
                entry["data_offsets"] = other["data_offsets"]!.DeepClone();
                entry["shape"] = other["shape"]!.DeepClone();
                entry["dtype"] = other["dtype"]!.DeepClone();
                desc = $"{target} copies another tensor's range";
                break;
            }

            case 5:
                entry.Remove(new[] { "dtype", "shape", "data_offsets" }[rng.Next(3)]);
                desc = $"{target} loses a field";
                break;
            case 6:
            {
                // Invalid UTF-8 in a tensor name.
                string json = h.ToJsonString();
                var bytes = Encoding.UTF8.GetBytes(json);
                int at = json.IndexOf(target, StringComparison.Ordinal) + 1;
                at = Encoding.UTF8.GetByteCount(json.AsSpan(0, at));
                bytes[at] = (byte)(0x80 + rng.Next(0x40));
                rawHeader = bytes;
                desc = $"invalid UTF-8 in the name of {target}";
                break;
            }

            case 7:
            {
                h.Remove(target);
                desc = $"{target} removed (leaves a hole)";
                break;
            }

            default:
            {
                entry["data_offsets"] = new JsonArray(JsonValue.Create(0L), JsonValue.Create((long)rng.Next(1, 1 << 20)));
                desc = $"{target} range rewritten";
                break;
            }
        }

        var header = rawHeader ?? Encoding.UTF8.GetBytes(h.ToJsonString());
        int truncateBy = rng.Next(8) == 0 ? rng.Next(1, 4096) : 0;
        var file = new byte[Math.Max(0, 8 + header.Length + payload.Length - truncateBy)];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)header.Length);
        header.AsSpan(0, Math.Min(header.Length, file.Length - 8)).CopyTo(file.AsSpan(8));
        if (file.Length > 8 + header.Length) payload.AsSpan(0, file.Length - 8 - header.Length).CopyTo(file.AsSpan(8 + header.Length));
        return (truncateBy > 0 ? desc + $", truncated by {truncateBy}" : desc, file);
    }

    /// <summary>Offsets of the length/type/count fields of a GGUF file, found by walking it.</summary>
    private static List<(int Offset, int Size, string What)> GgufFields(byte[] d)
    {
        var fields = new List<(int, int, string)> { (4, 4, "version"), (8, 8, "tensor count"), (16, 8, "metadata count") };
        int pos = 24;
        ulong nTensors = BinaryPrimitives.ReadUInt64LittleEndian(d.AsSpan(8));
        ulong nKv = BinaryPrimitives.ReadUInt64LittleEndian(d.AsSpan(16));
        string Str(string what)
        {
            fields.Add((pos, 8, what + " length"));
            int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(d.AsSpan(pos));
            var s = Encoding.UTF8.GetString(d, pos + 8, n);
            pos += 8 + n;
            return s;
        }

        void Value(uint type, string key, bool record)
        {
            switch (type)
            {
                case 0 or 1 or 7: pos += 1; break;
                case 2 or 3: pos += 2; break;
                case 4 or 5 or 6: if (record) fields.Add((pos, 4, key + " value")); pos += 4; break;
                case 10 or 11 or 12: pos += 8; break;
                case 8: if (record) Str(key); else pos += 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(d.AsSpan(pos)); break;
                case 9:
                {
                    fields.Add((pos, 4, key + " array type"));
                    uint et = BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(pos));
                    fields.Add((pos + 4, 8, key + " array length"));
                    ulong n = BinaryPrimitives.ReadUInt64LittleEndian(d.AsSpan(pos + 4));
                    pos += 12;
                    for (ulong i = 0; i < n; i++) Value(et, key, i < 3 || i == n - 1);
                    break;
                }
            }
        }

        for (ulong i = 0; i < nKv; i++)
        {
            string key = Str("metadata key");
            fields.Add((pos, 4, key + " type"));
            uint type = BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(pos));
            pos += 4;
            Value(type, key, true);
        }

        for (ulong i = 0; i < nTensors; i++)
        {
            string name = Str("tensor name");
            fields.Add((pos, 4, name + " n_dims"));
            uint nd = BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(pos));
            pos += 4;
            for (int k = 0; k < nd; k++) { fields.Add((pos, 8, name + $" dim {k}")); pos += 8; }
            fields.Add((pos, 4, name + " type"));
            fields.Add((pos + 4, 8, name + " offset"));
            pos += 12;
        }

        return fields;
    }
}
