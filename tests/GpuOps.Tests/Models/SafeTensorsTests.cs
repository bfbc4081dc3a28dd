using System.Buffers.Binary;
using System.Text;
using GpuOps.Core.Formats;
using GpuOps.Core.Models;
using GpuOps.Tests.Support;
using Xunit;

namespace GpuOps.Tests.Models;

public sealed class SafeTensorsTests
{
    [Fact]
    public void Fixture_checkpoint_opens_with_hugging_face_names_and_bf16_values()
    {
        using var w = SafeTensorsWeightSource.Open(Repo.Data("fortune-llama"));
        Assert.Equal(57, w.Names.Count);
        Assert.Equal(RopeLayout.RotateHalf, w.RopeLayout);
        var q = w.GetInfo("model.layers.0.self_attn.q_proj.weight");
        Assert.Equal(TensorDType.BF16, q.DType);
        Assert.Equal(new long[] { 256, 256 }, q.Shape);
        var k = w.GetInfo("model.layers.0.self_attn.k_proj.weight");
        Assert.Equal(new long[] { 128, 256 }, k.Shape);
        var raw = w.GetRaw("model.norm.weight");
        Assert.Equal(512, raw.Length);
        var f = new float[256];
        w.ReadFloat32("model.norm.weight", f);
        for (int i = 0; i < 256; i++) Assert.Equal(BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(raw[(2 * i)..]) << 16), f[i]);
        Assert.Contains(f, v => v != 0 && float.IsFinite(v));
    }

    [Fact]
    public void Bf16_vectorized_conversion_matches_scalar_for_odd_lengths()
    {
        var rng = new Random(3);
        var bits = Enumerable.Range(0, 37).Select(_ => (ushort)rng.Next(0, 65536)).ToArray();
        var f = new float[bits.Length];
        DTypes.BF16ToFloat32(bits, f);
        for (int i = 0; i < bits.Length; i++) Assert.Equal(BitConverter.Int32BitsToSingle(bits[i] << 16).ToString("R"), f[i].ToString("R"));
        Assert.Equal(0x3F80, DTypes.SingleToBF16(1.0f));
        Assert.Equal(0x3F81, DTypes.SingleToBF16(BitConverter.Int32BitsToSingle(0x3F80C000))); // ties to even -> up (odd)
        Assert.Equal(0x3F80, DTypes.SingleToBF16(BitConverter.Int32BitsToSingle(0x3F808000))); // tie to even -> stays
    }

    [Fact]
    public void Sharded_checkpoint_via_index_resolves_every_tensor()
    {
        using var dir = new TempDir();
        WriteFile(Path.Combine(dir.Path, "model-00001-of-00002.safetensors"), ("a", "F32", [2], new byte[8]));
        WriteFile(Path.Combine(dir.Path, "model-00002-of-00002.safetensors"), ("b", "F16", [3], new byte[] { 0, 0x3C, 0, 0x40, 0, 0xC0 }));
        File.WriteAllText(Path.Combine(dir.Path, "model.safetensors.index.json"),
            """{"metadata":{"total_size":14},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}""");
        using var w = SafeTensorsWeightSource.Open(dir.Path);
        Assert.Equal(new[] { "a", "b" }, w.Names.OrderBy(n => n));
        var f = new float[3];
        w.ReadFloat32("b", f);
        Assert.Equal(new[] { 1f, 2f, -2f }, f);
    }

    [Fact]
    public void Index_naming_a_path_outside_the_directory_is_rejected()
    {
        using var dir = new TempDir();
        File.WriteAllText(Path.Combine(dir.Path, "model.safetensors.index.json"), """{"weight_map":{"a":"../evil.safetensors"}}""");
        var ex = Assert.Throws<ModelFormatException>(() => SafeTensorsWeightSource.Open(dir.Path));
        Assert.Contains("not a plain file name", ex.Message);
    }

    public static TheoryData<string, string> BadHeaders() => new()
    {
        { """{"t":{"dtype":"Q9","shape":[1],"data_offsets":[0,4]}}""", "unknown dtype 'Q9'" },
        { """{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}""", "tensor 't': shape [2] × F32 is 8 bytes" },
        { """{"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}""", "tensor 't': shape [4294967296, 4294967296] overflows" },
        { """{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"u":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", "overlap" },
        { """{"t":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", "run past" },
        { """{"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}""", "not a non-negative integer" },
        { """{"t":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}""", "invalid data_offsets" },
        { """{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", "appears twice" },
        { """{"t":{"dtype":"F32","shape":[1]""", "not valid UTF-8 JSON" },
        { """[1,2]""", "does not start with '{'" },
    };

    [Theory]
    [MemberData(nameof(BadHeaders))]
    public void Bad_headers_give_errors_naming_file_and_tensor(string header, string expected)
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "bad.safetensors");
        WriteRaw(path, Encoding.UTF8.GetBytes(header), new byte[8]);
        var ex = Assert.Throws<ModelFormatException>(() => SafeTensorsFile.Open(path).Dispose());
        Assert.StartsWith("bad.safetensors: ", ex.Message);
        Assert.Contains(expected, ex.Message);
        Assert.Equal("InvalidModelFile", ex.ErrorId);
    }

    [Fact]
    public void Truncated_file_and_header_length_past_the_end_are_rejected()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "t.safetensors");
        File.WriteAllBytes(path, new byte[] { 1, 2, 3 });
        Assert.Contains("too short", Assert.Throws<ModelFormatException>(() => SafeTensorsFile.Open(path)).Message);
        var header = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(header, 1000);
        File.WriteAllBytes(path, header);
        Assert.Contains("runs past the end", Assert.Throws<ModelFormatException>(() => SafeTensorsFile.Open(path)).Message);
        BinaryPrimitives.WriteUInt64LittleEndian(header, ulong.MaxValue);
        File.WriteAllBytes(path, header);
        Assert.Contains("exceeds", Assert.Throws<ModelFormatException>(() => SafeTensorsFile.Open(path)).Message);
        var invalidUtf8 = Encoding.UTF8.GetBytes("{\"t\xFF\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}".Replace("\xFF", "@"));
        invalidUtf8[Array.IndexOf(invalidUtf8, (byte)'@')] = 0xFF;
        WriteRaw(path, invalidUtf8, new byte[4]);
        Assert.Contains("not valid UTF-8 JSON", Assert.Throws<ModelFormatException>(() => SafeTensorsFile.Open(path)).Message);
    }

    internal static void WriteFile(string path, params (string Name, string DType, long[] Shape, byte[] Data)[] tensors)
    {
        var sb = new StringBuilder("{");
        long offset = 0;
        foreach (var t in tensors)
        {
            if (sb.Length > 1) sb.Append(',');
            sb.Append($"\"{t.Name}\":{{\"dtype\":\"{t.DType}\",\"shape\":[{string.Join(",", t.Shape)}],\"data_offsets\":[{offset},{offset + t.Data.Length}]}}");
            offset += t.Data.Length;
        }

        sb.Append('}');
        WriteRaw(path, Encoding.UTF8.GetBytes(sb.ToString()), tensors.SelectMany(t => t.Data).ToArray());
    }

    internal static void WriteRaw(string path, byte[] header, byte[] data)
    {
        using var fs = File.Create(path);
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
        fs.Write(len);
        fs.Write(header);
        fs.Write(data);
    }
}

internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "gpuops-models-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
