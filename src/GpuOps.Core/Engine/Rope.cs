using GpuOps.Core.Hosting;
using GpuOps.Core.Models;

namespace GpuOps.Core.Engine;

/// <summary>
/// Rotary position embedding as Hugging Face computes it: inverse frequencies in float32 from the config's theta,
/// adjusted for "linear" and "llama3" scaling, angle = (float)position · inv_freq in float32; applied either in the
/// rotate-half layout (Hugging Face weights) or in the interleaved-pair layout (llama.cpp-permuted GGUF q/k weights).
/// </summary>
public sealed class Rope
{
    private readonly float[] _invFreq;
    private float[] _cos = Array.Empty<float>();
    private float[] _sin = Array.Empty<float>();
    private int _positions;
    private readonly object _gate = new();

    public Rope(int headDim, double theta, RopeScaling? scaling, RopeLayout layout)
    {
        if (headDim % 2 != 0) throw GpuOpsException.InvalidArgument("RopeHeadDimOdd", $"RoPE needs an even head dimension, got {headDim}.");
        HeadDim = headDim;
        Layout = layout;
        _invFreq = InverseFrequencies(headDim, theta, scaling);
    }

    public int HeadDim { get; }

    public RopeLayout Layout { get; }

    public IReadOnlyList<float> InverseFrequency => _invFreq;

    /// <summary>Hugging Face's inv_freq (default, linear, llama3), float32.</summary>
    public static float[] InverseFrequencies(int headDim, double theta, RopeScaling? scaling)
    {
        int half = headDim / 2;
        var inv = new float[half];
        for (int i = 0; i < half; i++)
        {
            // torch: 1.0 / (base ** (arange(0, dim, 2).float() / dim)) in float32
            float exponent = (float)(2 * i) / headDim;
            float pow = MathF.Pow((float)theta, exponent);
            inv[i] = 1f / pow;
        }

        string type = scaling?.Type?.ToLowerInvariant() ?? "default";
        switch (type)
        {
            case "default" or "" or "none":
                break;
            case "linear":
                for (int i = 0; i < half; i++) inv[i] = inv[i] / (float)scaling!.Factor;
                break;
            case "llama3":
            {
                var s = scaling!;
                double oldContext = s.OriginalMaxPositionEmbeddings;
                double lowWavelen = oldContext / s.LowFreqFactor;
                double highWavelen = oldContext / s.HighFreqFactor;
                for (int i = 0; i < half; i++)
                {
                    float f = inv[i];
                    float wavelen = 2 * MathF.PI / f;
                    float scaled = wavelen > lowWavelen ? f / (float)s.Factor : f;
                    if (!(wavelen < highWavelen) && !(wavelen > lowWavelen))
                    {
                        float smooth = (float)((oldContext / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor));
                        scaled = (1 - smooth) * scaled / (float)s.Factor + smooth * scaled;
                    }

                    inv[i] = scaled;
                }

                break;
            }

            default:
                throw new GpuOpsException("RopeScalingNotSupported", ErrorCategory.NotImplemented,
                    $"RoPE scaling type '{scaling!.Type}' is not supported (supported: default, linear, llama3).", scaling.Type);
        }

        return inv;
    }

    /// <summary>Make sure cos/sin tables cover positions [0, count).</summary>
    public void EnsurePositions(int count)
    {
        if (count <= _positions) return;
        lock (_gate)
        {
            if (count <= _positions) return;
            int n = Math.Max(count, Math.Min(Math.Max(_positions * 2, 256), 1 << 20));
            int half = HeadDim / 2;
            if ((long)n * half > Array.MaxLength)
                throw new GpuOpsException("ContextTooLarge", ErrorCategory.LimitsExceeded, $"A context of {count} positions is too large for the RoPE table.", count);
            var cos = new float[(long)n * half];
            var sin = new float[(long)n * half];
            for (int p = 0; p < n; p++)
            {
                for (int i = 0; i < half; i++)
                {
                    float angle = (float)p * _invFreq[i];
                    cos[(long)p * half + i] = (float)Math.Cos(angle);
                    sin[(long)p * half + i] = (float)Math.Sin(angle);
                }
            }

            _cos = cos;
            _sin = sin;
            _positions = n;
        }
    }

    /// <summary>Rotate one head vector (length HeadDim) in place for <paramref name="position"/>.</summary>
    public void Apply(Span<float> v, int position)
    {
        int half = HeadDim / 2;
        var cos = new ReadOnlySpan<float>(_cos, position * half, half);
        var sin = new ReadOnlySpan<float>(_sin, position * half, half);
        if (Layout == RopeLayout.RotateHalf)
        {
            for (int i = 0; i < half; i++)
            {
                float a = v[i], b = v[i + half];
                v[i] = a * cos[i] - b * sin[i];
                v[i + half] = b * cos[i] + a * sin[i];
            }
        }
        else
        {
            for (int i = 0; i < half; i++)
            {
                float a = v[2 * i], b = v[2 * i + 1];
                v[2 * i] = a * cos[i] - b * sin[i];
                v[2 * i + 1] = b * cos[i] + a * sin[i];
            }
        }
    }
}
