using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using GpuOps.Core.Models;

namespace GpuOps.Core.Formats;

/// <summary>Element sizes, names and float32 conversion of stored dtypes.</summary>
public static class DTypes
{
    /// <summary>Bytes per element for the plain (non-block) dtypes; 0 for block-quantized types.</summary>
    public static int ElementSize(TensorDType t) => t switch
    {
        TensorDType.F64 or TensorDType.I64 => 8,
        TensorDType.F32 or TensorDType.I32 => 4,
        TensorDType.F16 or TensorDType.BF16 or TensorDType.I16 => 2,
        TensorDType.I8 or TensorDType.U8 or TensorDType.Bool or TensorDType.F8E4M3 or TensorDType.F8E5M2 => 1,
        _ => 0,
    };

    /// <summary>safetensors' dtype string to <see cref="TensorDType"/>; false for unknown names.</summary>
    public static bool TryParseSafeTensors(string s, out TensorDType t)
    {
        switch (s)
        {
            case "F64": t = TensorDType.F64; return true;
            case "F32": t = TensorDType.F32; return true;
            case "F16": t = TensorDType.F16; return true;
            case "BF16": t = TensorDType.BF16; return true;
            case "I64": t = TensorDType.I64; return true;
            case "I32": t = TensorDType.I32; return true;
            case "I16": t = TensorDType.I16; return true;
            case "I8": t = TensorDType.I8; return true;
            case "U8": t = TensorDType.U8; return true;
            case "BOOL": t = TensorDType.Bool; return true;
            case "F8_E4M3": t = TensorDType.F8E4M3; return true;
            case "F8_E5M2": t = TensorDType.F8E5M2; return true;
            default: t = default; return false;
        }
    }

    public static string SafeTensorsName(TensorDType t) => t switch
    {
        TensorDType.F64 => "F64", TensorDType.F32 => "F32", TensorDType.F16 => "F16", TensorDType.BF16 => "BF16",
        TensorDType.I64 => "I64", TensorDType.I32 => "I32", TensorDType.I16 => "I16", TensorDType.I8 => "I8",
        TensorDType.U8 => "U8", TensorDType.Bool => "BOOL", TensorDType.F8E4M3 => "F8_E4M3", TensorDType.F8E5M2 => "F8_E5M2",
        _ => throw new ArgumentException($"{t} cannot be stored in safetensors.", nameof(t)),
    };

    /// <summary>bfloat16 bits to float32 (exact).</summary>
    public static float BF16ToSingle(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    /// <summary>float32 to bfloat16 bits, round to nearest even (NaN stays NaN), as PyTorch does.</summary>
    public static ushort SingleToBF16(float value)
    {
        uint u = BitConverter.SingleToUInt32Bits(value);
        if ((u & 0x7FFFFFFF) > 0x7F800000) return (ushort)((u >> 16) | 0x40);
        u += 0x7FFF + ((u >> 16) & 1);
        return (ushort)(u >> 16);
    }

    /// <summary>Convert little-endian stored elements of a plain dtype into float32.</summary>
    public static void ToFloat32(TensorDType t, ReadOnlySpan<byte> src, Span<float> dst)
    {
        int size = ElementSize(t);
        if (size == 0) throw new ArgumentException($"{t} is block-quantized; use the GGUF dequantizer.", nameof(t));
        if ((long)dst.Length * size != src.Length)
            throw new ArgumentException($"destination holds {dst.Length} elements, the source has {src.Length / size}.", nameof(dst));
        switch (t)
        {
            case TensorDType.F32:
                MemoryMarshal.Cast<byte, float>(src).CopyTo(dst);
                break;
            case TensorDType.BF16:
                BF16ToFloat32(MemoryMarshal.Cast<byte, ushort>(src), dst);
                break;
            case TensorDType.F16:
                System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(src), dst);
                break;
            case TensorDType.F64:
                for (int i = 0; i < dst.Length; i++) dst[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(src[(i * 8)..]);
                break;
            case TensorDType.I64:
                for (int i = 0; i < dst.Length; i++) dst[i] = BinaryPrimitives.ReadInt64LittleEndian(src[(i * 8)..]);
                break;
            case TensorDType.I32:
                for (int i = 0; i < dst.Length; i++) dst[i] = BinaryPrimitives.ReadInt32LittleEndian(src[(i * 4)..]);
                break;
            case TensorDType.I16:
                for (int i = 0; i < dst.Length; i++) dst[i] = BinaryPrimitives.ReadInt16LittleEndian(src[(i * 2)..]);
                break;
            case TensorDType.I8:
                for (int i = 0; i < dst.Length; i++) dst[i] = (sbyte)src[i];
                break;
            case TensorDType.U8:
            case TensorDType.Bool:
                for (int i = 0; i < dst.Length; i++) dst[i] = src[i];
                break;
            case TensorDType.F8E4M3:
                for (int i = 0; i < dst.Length; i++) dst[i] = F8E4M3ToSingle(src[i]);
                break;
            case TensorDType.F8E5M2:
                // e5m2 is the upper byte of an IEEE half.
                for (int i = 0; i < dst.Length; i++) dst[i] = (float)BitConverter.UInt16BitsToHalf((ushort)(src[i] << 8));
                break;
            default:
                throw new ArgumentException($"no float32 conversion for {t}.", nameof(t));
        }
    }

    public static void BF16ToFloat32(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var dstU = MemoryMarshal.Cast<float, uint>(dst);
            for (; i + 16 <= src.Length; i += 16)
            {
                var v = Vector256.Create(src.Slice(i, 16));
                var (lo, hi) = Vector256.Widen(v);
                Vector256.ShiftLeft(lo, 16).CopyTo(dstU.Slice(i, 8));
                Vector256.ShiftLeft(hi, 16).CopyTo(dstU.Slice(i + 8, 8));
            }
        }

        for (; i < src.Length; i++) dst[i] = BitConverter.Int32BitsToSingle(src[i] << 16);
    }

    /// <summary>OCP FP8 E4M3FN (no infinities; S.1111.111 is NaN).</summary>
    public static float F8E4M3ToSingle(byte b)
    {
        int sign = b >> 7, exp = (b >> 3) & 0xF, man = b & 7;
        float v;
        if (exp == 0xF && man == 7) v = float.NaN;
        else if (exp == 0) v = man / 8f * MathF.Pow(2, -6);
        else v = (1 + man / 8f) * MathF.Pow(2, exp - 7);
        return sign == 1 ? -v : v;
    }
}
