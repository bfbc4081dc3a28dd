using System.Buffers.Binary;
using GpuOps.Core.Models;

namespace GpuOps.Core.Formats;

/// <summary>
/// ggml tensor types as stored in GGUF and their dequantization, transcribed from ggml's
/// ggml-common.h block layouts and ggml-quants.c dequantize_row_* (same float operations, same order).
/// </summary>
public static class GgmlQuants
{
    public const int QK_K = 256;

    /// <summary>ggml_type ids (GGUF tensor info "type").</summary>
    public static bool TryMap(uint ggmlType, out TensorDType dtype)
    {
        dtype = ggmlType switch
        {
            0 => TensorDType.F32,
            1 => TensorDType.F16,
            2 => TensorDType.Q4_0,
            8 => TensorDType.Q8_0,
            12 => TensorDType.Q4_K,
            14 => TensorDType.Q6_K,
            24 => TensorDType.I8,
            25 => TensorDType.I16,
            26 => TensorDType.I32,
            27 => TensorDType.I64,
            28 => TensorDType.F64,
            30 => TensorDType.BF16,
            39 => TensorDType.MXFP4,
            _ => (TensorDType)(-1),
        };
        return (int)dtype >= 0;
    }

    public static string GgmlName(uint ggmlType) => ggmlType switch
    {
        0 => "F32", 1 => "F16", 2 => "Q4_0", 3 => "Q4_1", 6 => "Q5_0", 7 => "Q5_1", 8 => "Q8_0", 9 => "Q8_1",
        10 => "Q2_K", 11 => "Q3_K", 12 => "Q4_K", 13 => "Q5_K", 14 => "Q6_K", 15 => "Q8_K", 16 => "IQ2_XXS",
        17 => "IQ2_XS", 18 => "IQ3_XXS", 19 => "IQ1_S", 20 => "IQ4_NL", 21 => "IQ3_S", 22 => "IQ2_S", 23 => "IQ4_XS",
        24 => "I8", 25 => "I16", 26 => "I32", 27 => "I64", 28 => "F64", 29 => "IQ1_M", 30 => "BF16", 34 => "TQ1_0",
        35 => "TQ2_0", 39 => "MXFP4", _ => $"type {ggmlType}",
    };

    /// <summary>(elements per block, bytes per block).</summary>
    public static (int BlockElements, int BlockBytes) BlockSize(TensorDType t) => t switch
    {
        TensorDType.Q4_0 => (32, 18),
        TensorDType.Q8_0 => (32, 34),
        TensorDType.Q4_K => (256, 144),
        TensorDType.Q6_K => (256, 210),
        TensorDType.MXFP4 => (32, 17),
        _ => (1, DTypes.ElementSize(t)),
    };

    private static readonly sbyte[] KValuesMxfp4 = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

    private static float Half(ReadOnlySpan<byte> b) => (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(b));

    /// <summary>GGML_E8M0_TO_FP32_HALF: 2^(e-127) / 2, with e &lt; 2 giving the subnormal values.</summary>
    public static float E8M0ToFloatHalf(byte e)
    {
        uint bits = e < 2 ? 0x00200000u << e : (uint)(e - 1) << 23;
        return BitConverter.UInt32BitsToSingle(bits);
    }

    /// <summary>Dequantize whole blocks of <paramref name="t"/> from <paramref name="src"/> into <paramref name="dst"/>.</summary>
    public static void Dequantize(TensorDType t, ReadOnlySpan<byte> src, Span<float> dst)
    {
        var (qk, bytes) = BlockSize(t);
        if (qk == 1)
        {
            DTypes.ToFloat32(t, src, dst);
            return;
        }

        if (dst.Length % qk != 0 || (long)(dst.Length / qk) * bytes != src.Length)
            throw new ArgumentException($"{dst.Length} {t} elements need {(long)(dst.Length / qk) * bytes} bytes in whole {qk}-element blocks; got {src.Length}.");
        int nb = dst.Length / qk;
        switch (t)
        {
            case TensorDType.Q4_0:
                for (int i = 0; i < nb; i++)
                {
                    var b = src.Slice(i * 18, 18);
                    float d = Half(b);
                    var y = dst.Slice(i * 32, 32);
                    for (int j = 0; j < 16; j++)
                    {
                        int x0 = (b[2 + j] & 0x0F) - 8;
                        int x1 = (b[2 + j] >> 4) - 8;
                        y[j] = x0 * d;
                        y[j + 16] = x1 * d;
                    }
                }

                break;
            case TensorDType.Q8_0:
                for (int i = 0; i < nb; i++)
                {
                    var b = src.Slice(i * 34, 34);
                    float d = Half(b);
                    var y = dst.Slice(i * 32, 32);
                    for (int j = 0; j < 32; j++) y[j] = (sbyte)b[2 + j] * d;
                }

                break;
            case TensorDType.MXFP4:
                for (int i = 0; i < nb; i++)
                {
                    var b = src.Slice(i * 17, 17);
                    float d = E8M0ToFloatHalf(b[0]);
                    var y = dst.Slice(i * 32, 32);
                    for (int j = 0; j < 16; j++)
                    {
                        int x0 = KValuesMxfp4[b[1 + j] & 0x0F];
                        int x1 = KValuesMxfp4[b[1 + j] >> 4];
                        y[j] = x0 * d;
                        y[j + 16] = x1 * d;
                    }
                }

                break;
            case TensorDType.Q4_K:
                for (int i = 0; i < nb; i++)
                {
                    // block_q4_K: half d; half dmin; u8 scales[12]; u8 qs[128]
                    var b = src.Slice(i * 144, 144);
                    float d = Half(b);
                    float min = Half(b[2..]);
                    var scales = b.Slice(4, 12);
                    var q = b.Slice(16, 128);
                    var y = dst.Slice(i * 256, 256);
                    int yi = 0, qi = 0, @is = 0;
                    for (int j = 0; j < QK_K; j += 64)
                    {
                        GetScaleMinK4(@is + 0, scales, out var sc, out var m);
                        float d1 = d * sc, m1 = min * m;
                        GetScaleMinK4(@is + 1, scales, out sc, out m);
                        float d2 = d * sc, m2 = min * m;
                        for (int l = 0; l < 32; ++l) y[yi++] = d1 * (q[qi + l] & 0xF) - m1;
                        for (int l = 0; l < 32; ++l) y[yi++] = d2 * (q[qi + l] >> 4) - m2;
                        qi += 32;
                        @is += 2;
                    }
                }

                break;
            case TensorDType.Q6_K:
                for (int i = 0; i < nb; i++)
                {
                    // block_q6_K: u8 ql[128]; u8 qh[64]; i8 scales[16]; half d
                    var b = src.Slice(i * 210, 210);
                    float d = Half(b[208..]);
                    int ql = 0, qh = 128, sc = 192;
                    var y = dst.Slice(i * 256, 256);
                    int yo = 0;
                    for (int n = 0; n < QK_K; n += 128)
                    {
                        for (int l = 0; l < 32; ++l)
                        {
                            int @is = l / 16;
                            int q1 = (sbyte)((b[ql + l] & 0xF) | (((b[qh + l] >> 0) & 3) << 4)) - 32;
                            int q2 = (sbyte)((b[ql + l + 32] & 0xF) | (((b[qh + l] >> 2) & 3) << 4)) - 32;
                            int q3 = (sbyte)((b[ql + l] >> 4) | (((b[qh + l] >> 4) & 3) << 4)) - 32;
                            int q4 = (sbyte)((b[ql + l + 32] >> 4) | (((b[qh + l] >> 6) & 3) << 4)) - 32;
                            y[yo + l + 0] = d * (sbyte)b[sc + @is + 0] * q1;
                            y[yo + l + 32] = d * (sbyte)b[sc + @is + 2] * q2;
                            y[yo + l + 64] = d * (sbyte)b[sc + @is + 4] * q3;
                            y[yo + l + 96] = d * (sbyte)b[sc + @is + 6] * q4;
                        }

                        yo += 128;
                        ql += 64;
                        qh += 32;
                        sc += 8;
                    }
                }

                break;
            default:
                throw new ArgumentException($"no dequantization for {t}.");
        }
    }

    private static void GetScaleMinK4(int j, ReadOnlySpan<byte> q, out byte d, out byte m)
    {
        if (j < 4)
        {
            d = (byte)(q[j] & 63);
            m = (byte)(q[j + 4] & 63);
        }
        else
        {
            d = (byte)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
            m = (byte)((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
        }
    }
}
