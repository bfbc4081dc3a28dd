using System.Runtime.CompilerServices;

namespace GpuOps.Core.Compute;

/// <summary>
/// Element types of compute tensors. The numeric values are shared with kernels/common.cuh (DT_*): keep them in sync.
/// </summary>
public enum DType
{
    F32 = 0,
    F16 = 1,
    BF16 = 2,
    I8 = 3,
    U8 = 4,
    I32 = 5,
    /// <summary>OCP FP8 E4M3 ("FN": no infinities, NaN = 0x7F/0xFF, largest finite 448).</summary>
    F8E4M3 = 6,
    /// <summary>OCP FP8 E5M2 (IEEE-like: infinities and NaNs, largest finite 57344).</summary>
    F8E5M2 = 7,
    /// <summary>Signed 4-bit integers (-8..7), two per byte: element 2i in the low nibble, 2i+1 in the high one.</summary>
    I4 = 8,
}

/// <summary>Sizes, names and exact host conversions of <see cref="DType"/> values (the CPU references use these).</summary>
public static class DTypes
{
    public static int Bits(DType t) => t switch
    {
        DType.F32 or DType.I32 => 32,
        DType.F16 or DType.BF16 => 16,
        DType.I8 or DType.U8 or DType.F8E4M3 or DType.F8E5M2 => 8,
        DType.I4 => 4,
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    /// <summary>Bytes a contiguous run of <paramref name="elements"/> takes (packed int4 rounds up).</summary>
    public static long ByteCount(DType t, long elements) => (elements * Bits(t) + 7) / 8;

    public static bool IsFloat(DType t) => t is DType.F32 or DType.F16 or DType.BF16 or DType.F8E4M3 or DType.F8E5M2;

    public static string Name(DType t) => t switch
    {
        DType.F32 => "f32", DType.F16 => "f16", DType.BF16 => "bf16", DType.I8 => "i8", DType.U8 => "u8",
        DType.I32 => "i32", DType.F8E4M3 => "f8e4m3", DType.F8E5M2 => "f8e5m2", DType.I4 => "i4",
        _ => t.ToString(),
    };

    public static DType Parse(string s) => s.Trim().ToLowerInvariant() switch
    {
        "f32" or "float32" or "float" or "fp32" => DType.F32,
        "f16" or "float16" or "half" or "fp16" => DType.F16,
        "bf16" or "bfloat16" => DType.BF16,
        "i8" or "int8" => DType.I8,
        "u8" or "uint8" => DType.U8,
        "i32" or "int32" => DType.I32,
        "f8e4m3" or "fp8" or "e4m3" or "float8_e4m3fn" => DType.F8E4M3,
        "f8e5m2" or "e5m2" or "float8_e5m2" => DType.F8E5M2,
        "i4" or "int4" => DType.I4,
        _ => throw GpuOps.Core.Hosting.GpuOpsException.InvalidArgument("UnknownDType", $"Unknown dtype '{s}': use f32, f16, bf16, i8, u8, i32, f8e4m3, f8e5m2 or i4."),
    };

    // ---- bf16 / f16 ----

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float BF16ToFloat(ushort b) => BitConverter.Int32BitsToSingle(b << 16);

    /// <summary>Round to nearest even (NaN stays NaN), as PyTorch and the kernels do.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FloatToBF16(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (ushort)((u >> 16) | 0x40);
        u += 0x7FFFu + ((u >> 16) & 1u);
        return (ushort)(u >> 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float F16ToFloat(ushort h) => (float)BitConverter.UInt16BitsToHalf(h);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FloatToF16(float f) => BitConverter.HalfToUInt16Bits((Half)f);

    // ---- fp8 (OCP) ----

    public static float F8E4M3ToFloat(byte b)
    {
        int s = b >> 7, e = (b >> 3) & 0xF, m = b & 7;
        if (e == 15 && m == 7) return float.NaN;
        float v = e == 0 ? m / 8f * MathF.Pow(2, -6) : (1 + m / 8f) * MathF.Pow(2, e - 7);
        return s == 1 ? -v : v;
    }

    public static float F8E5M2ToFloat(byte b)
    {
        int s = b >> 7, e = (b >> 2) & 0x1F, m = b & 3;
        float v;
        if (e == 31) v = m == 0 ? float.PositiveInfinity : float.NaN;
        else v = e == 0 ? m / 4f * MathF.Pow(2, -14) : (1 + m / 4f) * MathF.Pow(2, e - 15);
        return s == 1 ? -v : v;
    }

    /// <summary>Round to nearest even, saturating to the largest finite value (CUDA's satfinite); NaN to NaN.</summary>
    public static byte FloatToF8E4M3(float f) => EncodeF8(f, 3, 7, 448f, 0x7E, 0x7F);

    /// <summary>Round to nearest even, saturating to the largest finite value (infinities too); NaN to NaN.</summary>
    public static byte FloatToF8E5M2(float f) => EncodeF8(f, 2, 15, 57344f, 0x7B, 0x7E);

    // The same arithmetic as kernels/common.cuh encode_f8 (keep in sync).
    private static byte EncodeF8(float f, int manBits, int bias, float maxFinite, int maxCode, int nanCode)
    {
        if (float.IsNaN(f)) return (byte)nanCode;
        int sign = f < 0 || (f == 0 && float.IsNegative(f)) ? 0x80 : 0;
        float a = MathF.Abs(f);
        int code;
        if (a >= maxFinite) code = maxCode;
        else
        {
            float minNormal = MathF.Pow(2, 1 - bias);
            if (a < minNormal)
            {
                float q = MathF.Round(a / MathF.Pow(2, 1 - bias - manBits), MidpointRounding.ToEven);
                code = (int)q;
            }
            else
            {
                int e = MathF.ILogB(a);
                float m = a / MathF.Pow(2, e) - 1f;
                int q = (int)MathF.Round(m * (1 << manBits), MidpointRounding.ToEven);
                if (q == 1 << manBits) { q = 0; e++; }
                code = ((e + bias) << manBits) | q;
                if (code > maxCode) code = maxCode;
            }
        }

        return (byte)(sign | code);
    }

    // ---- integers ----

    public static sbyte FloatToI8(float f) => float.IsNaN(f) ? (sbyte)0 : (sbyte)Math.Clamp(MathF.Round(f, MidpointRounding.ToEven), -128f, 127f);

    public static byte FloatToU8(float f) => float.IsNaN(f) ? (byte)0 : (byte)Math.Clamp(MathF.Round(f, MidpointRounding.ToEven), 0f, 255f);

    public static int FloatToI32(float f)
    {
        if (float.IsNaN(f)) return 0;
        double r = Math.Round((double)f, MidpointRounding.ToEven);
        return r >= int.MaxValue ? int.MaxValue : r <= int.MinValue ? int.MinValue : (int)r;
    }

    public static int FloatToI4(float f) => float.IsNaN(f) ? 0 : (int)Math.Clamp(MathF.Round(f, MidpointRounding.ToEven), -8f, 7f);

    /// <summary>Element <paramref name="i"/> of a contiguous buffer of <paramref name="t"/>, as float.</summary>
    public static float Load(DType t, ReadOnlySpan<byte> data, long i)
    {
        switch (t)
        {
            case DType.F32: return Unsafe.ReadUnaligned<float>(ref Unsafe.AsRef(in data[(int)(i * 4)]));
            case DType.F16: return F16ToFloat(Unsafe.ReadUnaligned<ushort>(ref Unsafe.AsRef(in data[(int)(i * 2)])));
            case DType.BF16: return BF16ToFloat(Unsafe.ReadUnaligned<ushort>(ref Unsafe.AsRef(in data[(int)(i * 2)])));
            case DType.I8: return (sbyte)data[(int)i];
            case DType.U8: return data[(int)i];
            case DType.I32: return Unsafe.ReadUnaligned<int>(ref Unsafe.AsRef(in data[(int)(i * 4)]));
            case DType.F8E4M3: return F8E4M3ToFloat(data[(int)i]);
            case DType.F8E5M2: return F8E5M2ToFloat(data[(int)i]);
            case DType.I4:
                {
                    int b = data[(int)(i >> 1)];
                    int n = (i & 1) == 0 ? b & 0xF : b >> 4;
                    return n >= 8 ? n - 16 : n;
                }
            default: throw new ArgumentOutOfRangeException(nameof(t));
        }
    }

    /// <summary>Store <paramref name="v"/> (rounded as the kernels round) as element <paramref name="i"/>.</summary>
    public static void Store(DType t, Span<byte> data, long i, float v)
    {
        switch (t)
        {
            case DType.F32: Unsafe.WriteUnaligned(ref data[(int)(i * 4)], v); break;
            case DType.F16: Unsafe.WriteUnaligned(ref data[(int)(i * 2)], FloatToF16(v)); break;
            case DType.BF16: Unsafe.WriteUnaligned(ref data[(int)(i * 2)], FloatToBF16(v)); break;
            case DType.I8: data[(int)i] = (byte)FloatToI8(v); break;
            case DType.U8: data[(int)i] = FloatToU8(v); break;
            case DType.I32: Unsafe.WriteUnaligned(ref data[(int)(i * 4)], FloatToI32(v)); break;
            case DType.F8E4M3: data[(int)i] = FloatToF8E4M3(v); break;
            case DType.F8E5M2: data[(int)i] = FloatToF8E5M2(v); break;
            case DType.I4:
                {
                    int n = FloatToI4(v) & 0xF;
                    ref byte b = ref data[(int)(i >> 1)];
                    b = (i & 1) == 0 ? (byte)((b & 0xF0) | n) : (byte)((b & 0x0F) | (n << 4));
                    break;
                }
            default: throw new ArgumentOutOfRangeException(nameof(t));
        }
    }

    /// <summary>Contiguous bytes of <paramref name="t"/> to floats.</summary>
    public static float[] ToFloats(DType t, ReadOnlySpan<byte> data, long count)
    {
        var r = new float[count];
        if (t == DType.F32) { System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(data)[..(int)count].CopyTo(r); return r; }
        for (long i = 0; i < count; i++) r[i] = Load(t, data, i);
        return r;
    }

    /// <summary>Floats to contiguous bytes of <paramref name="t"/> (rounded as the kernels round).</summary>
    public static byte[] FromFloats(DType t, ReadOnlySpan<float> values)
    {
        var r = new byte[ByteCount(t, values.Length)];
        if (t == DType.F32) { System.Runtime.InteropServices.MemoryMarshal.AsBytes(values).CopyTo(r); return r; }
        for (int i = 0; i < values.Length; i++) Store(t, r, i, values[i]);
        return r;
    }
}
