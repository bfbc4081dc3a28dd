using System.Diagnostics;
using System.Runtime.InteropServices;
using GpuOps.Core.Engine;
using GpuOps.Core.Hosting;
using GpuOps.Core.Models;
using GpuOps.Cuda.Compile;
using GpuOps.Cuda.Driver;
using GpuOps.Nvml;
using static GpuOps.Cuda.Driver.CudaApi;

namespace GpuOps.Cuda.Engine;

/// <summary>Entry point found by GpuModelHandle (GpuOps.Core) through reflection.</summary>
public static class CudaEngineFactory
{
    public static IInferenceEngine Create(ModelBundle bundle, int device, Action<double, string>? progress, CancellationToken cancellationToken) =>
        CudaLlamaEngine.Load(bundle.Config, bundle.Weights, device, progress, cancellationToken);
}

/// <summary>Device pointers of one layer's weights (bf16).</summary>
internal sealed record CudaLayer(ulong AttnNorm, ulong Wqkv, ulong Bqkv, ulong Wo, ulong Bo, ulong MlpNorm, ulong WGateUp, ulong BGateUp, ulong WDown, ulong BDown);

/// <summary>
/// The CUDA bfloat16 forward pass of llama / mistral / qwen2 decoders. Weights live in one device arena (q/k/v rows
/// concatenated, gate/up rows interleaved); prefill runs through cuBLASLt and tensor-core attention; a decode step of
/// up to 4 sequences runs through bandwidth-bound GEMV kernels with fused RMSNorm, bias, SiLU·mul and residual
/// epilogues, larger batches through cuBLASLt; every decode step (argmax included) is one CUDA graph replay.
/// </summary>
public sealed unsafe class CudaLlamaEngine : IInferenceEngine, IDeviceGreedyDecoder
{
    internal readonly CudaContext Ctx;
    internal readonly CudaModule Module;
    internal readonly CudaGemm Gemm;
    private readonly LlamaConfig _c;
    private readonly ulong _arena;
    internal readonly CudaLayer[] Layers;
    internal readonly ulong Embedding, FinalNorm, Output, InvFreq;
    internal readonly int RopeLayoutCode;
    internal readonly int H, I, V, Hd, Nh, Nkv, QDim, KvDim, QkvDim, L;
    internal readonly float Eps, Scale;
    private Workspace? _scratch;
    private int _attnSmemSet;
    private bool _disposed;

    /// <summary>Use the tensor-core prefill attention (default); GPUOPS_ENGINE_SIMPLE_ATTENTION=1 uses the per-token kernel for everything.</summary>
    public bool TensorCoreAttention { get; set; } = Environment.GetEnvironmentVariable("GPUOPS_ENGINE_SIMPLE_ATTENTION") != "1";

    /// <summary>How the weights came to the device.</summary>
    public UploadStats? LoadStats { get; private set; }

    private CudaLlamaEngine(CudaContext ctx, LlamaConfig c, ulong arena, long arenaBytes, CudaLayer[] layers, ulong emb, ulong norm, ulong output,
        RopeLayout layout, long parameters)
    {
        Ctx = ctx;
        _c = c;
        _arena = arena;
        WeightBytes = arenaBytes;
        Layers = layers;
        Embedding = emb;
        FinalNorm = norm;
        Output = output;
        ParameterCount = parameters;
        RopeLayoutCode = layout == RopeLayout.Interleaved ? 1 : 0;
        H = c.HiddenSize; I = c.IntermediateSize; V = c.VocabSize; Hd = c.HeadDim; Nh = c.NumHeads; Nkv = c.NumKeyValueHeads; L = c.NumLayers;
        QDim = Nh * Hd; KvDim = Nkv * Hd; QkvDim = QDim + 2 * KvDim;
        Eps = (float)c.RmsNormEps;
        Scale = 1f / MathF.Sqrt(Hd);
        if (Hd is not (64 or 128))
            throw new GpuOpsException("HeadDimNotSupported", ErrorCategory.NotImplemented, $"The CUDA engine supports head_dim 64 and 128, not {Hd}.", Hd,
                recommendedAction: "Use -Device cpu for this model.");
        if (H % 8 != 0 || I % 8 != 0 || QDim % 8 != 0)
            throw new GpuOpsException("ShapeNotSupported", ErrorCategory.NotImplemented, "The CUDA engine needs hidden, intermediate and q sizes that are multiples of 8.", c.Architecture);
        var cubin = KernelCache.Shared.GetCubin("engine/llama.cu", ctx.Major, ctx.Minor);
        Module = new CudaModule(ctx, cubin, "engine/llama.cu");
        Gemm = new CudaGemm(ctx);
        var inv = Rope.InverseFrequencies(Hd, c.RopeTheta, c.RopeScaling);
        InvFreq = ctx.Allocate(inv.Length * 4L, "RoPE frequencies");
        fixed (float* p = inv) Check(cuMemcpyHtoD(InvFreq, p, (nuint)(inv.Length * 4)), "cuMemcpyHtoD(invfreq)");
        WeightBytesPerToken = WeightBytes - (long)V * H * 2 * (c.TieWordEmbeddings || output == emb ? 0 : 1) + (long)H * 2;
        // the persistent batch-1 decode kernel reads each layer's weight pointers from this table (MkLayer in llama.cu)
        LayerTable = ctx.Allocate((long)L * MkLayerPointers * 8, "layer pointer table");
        WriteLayerTable();
    }

    /// <summary>Pointers per layer in <see cref="LayerTable"/> (MkLayer in llama.cu): the ten weights and biases, then the per-block copy of W_down or 0.</summary>
    private const int MkLayerPointers = 11;

    private void WriteLayerTable()
    {
        var table = new ulong[L * MkLayerPointers];
        for (int l = 0; l < L; l++)
        {
            var w = Layers[l];
            new[] { w.AttnNorm, w.Wqkv, w.Bqkv, w.Wo, w.Bo, w.MlpNorm, w.WGateUp, w.BGateUp, w.WDown, w.BDown,
                    _downBlocked == 0 ? 0UL : _downBlocked + (ulong)((long)l * H * I * 2) }.CopyTo(table, l * MkLayerPointers);
        }

        fixed (ulong* tp = table) Check(cuMemcpyHtoD(LayerTable, tp, (nuint)(table.Length * 8)), "cuMemcpyHtoD(layer table)");
    }

    /// <summary>Flag of <see cref="PersistentFlags"/>: the fused MLP phase reads W_down from a per-block copy (MK_DOWN_BLOCKED in llama.cu).</summary>
    internal const int MkDownBlocked = 4096;

    // the per-block copy of every layer's W_down for _downBlockedGrid blocks (repack_down_blocked), made by the first
    // persistent decode that asks for it; _downBlockedNote: why it was not made
    private ulong _downBlocked;
    private int _downBlockedGrid;
    private string? _downBlockedNote;

    /// <summary>Bytes of the persistent kernel's per-block copy of W_down (0: none made, or not wanted).</summary>
    internal long DownBlockedBytes => _downBlocked == 0 ? 0 : (long)L * H * I * 2;

    /// <summary>Device bytes held beside the weights: the prefill workspace and the persistent kernel's per-block copy of W_down (KV caches and their decode graphs are the caches').</summary>
    public long WorkspaceBytes => (_scratch?.Bytes ?? 0) + DownBlockedBytes;

    /// <summary>NVML's energy window over this engine's GPU, found by its UUID (so CUDA_VISIBLE_DEVICES does not matter).</summary>
    public IEnergyMeter? StartEnergyMeter()
    {
        Ctx.Synchronize();   // (work queued before the start is not this measurement's)
        var w = EnergyWindow.TryStartByUuid(Ctx.Uuid);
        return w is null ? null : new NvmlEnergyMeter(w, Ctx);
    }

    private sealed class NvmlEnergyMeter(EnergyWindow window, CudaContext ctx) : IEnergyMeter
    {
        /// <summary>Shorter windows than this are left unreported: the counter's updates are too coarse for them.</summary>
        private const double MinSeconds = 0.1;

        public double? Stop()
        {
            ctx.Synchronize();
            var r = window.Stop();
            if (window.Failed.Count > 0 || r.Count != 1) return null;
            return r[0].Seconds >= MinSeconds && double.IsFinite(r[0].Joules) && r[0].Joules > 0 ? r[0].Joules : null;
        }

        public void Dispose() => window.Dispose();
    }

    /// <summary>Why the per-block copy of W_down was not made (not enough free memory), or null.</summary>
    internal string? DownBlockedNote => _downBlockedNote;

    /// <summary>Free device memory the per-block copy of W_down must leave (GPUOPS_ENGINE_DOWN_COPY_RESERVE, bytes): by default the larger of 1 GiB and 5% of the GPU's memory.
    /// Negative: that default. Setting it lets the next persistent decode try again after a refusal.</summary>
    internal long DownBlockedReserve
    {
        get => _downBlockedReserve;
        set { _downBlockedReserve = value; _downBlockedNote = null; }
    }

    private long _downBlockedReserve = long.TryParse(Environment.GetEnvironmentVariable("GPUOPS_ENGINE_DOWN_COPY_RESERVE"), out var r) ? r : -1;

    /// <summary>
    /// Make the per-block copy of W_down for a <paramref name="grid"/>-block persistent kernel (MK_DOWN_BLOCKED: each block's
    /// columns of W_down contiguous; the fused MLP phase ~1.5 us per layer faster) where the kernel fuses the MLP phase
    /// (mk_fuse_mlp_ok) and enough memory stays free after it. False: the kernel reads W_down in place.
    /// </summary>
    private bool EnsureDownBlocked(int grid, int flags)
    {
        if ((flags & 128) == 0 || H % 16 != 0 || (I + grid - 1) / grid > 120) return false;
        if (_downBlocked != 0 && _downBlockedGrid == grid) return true;
        if (_downBlockedNote is not null) return false;
        long bytes = (long)L * H * I * 2;
        var (free, total) = Ctx.MemoryInfo();
        long reserve = DownBlockedReserve >= 0 ? DownBlockedReserve : Math.Max(1L << 30, total / 20);
        if (free - bytes < reserve)
        {
            _downBlockedNote = $"The per-block copy of W_down ({bytes / 1e9:F2} GB) would leave {(free - bytes) / 1e9:F2} GB of GPU memory free, " +
                               $"under the {reserve / 1e9:F2} GB kept free: the persistent kernel reads W_down in place (batch-1 decode ~1-2% slower).";
            return false;
        }

        if (_downBlocked != 0)
        {
            Ctx.Synchronize();
            Ctx.Free(_downBlocked);
            _downBlocked = 0;
        }

        ulong copy = Ctx.Allocate(bytes, $"the persistent decode kernel's per-block copy of W_down ({bytes / 1e9:F2} GB)");
        for (int l = 0; l < L; l++)
            K("repack_down_blocked", G(grid), 256, 0, Layers[l].WDown, copy + (ulong)((long)l * H * I * 2), H, I, grid);
        Ctx.Synchronize();
        _downBlocked = copy;
        _downBlockedGrid = grid;
        WriteLayerTable();
        return true;
    }

    internal readonly ulong LayerTable;

    public LlamaConfig Config => _c;

    public string Device => $"cuda:{Ctx.Ordinal}";

    public string DType => "bfloat16";

    public long ParameterCount { get; }

    public long WeightBytes { get; }

    public long WeightBytesPerToken { get; }

    public string GpuName => Ctx.Name;

    // ------------------------------------------------------------------ loading

    /// <summary>Load the weights of <paramref name="source"/> to GPU <paramref name="device"/> (bf16) through pinned staging buffers.</summary>
    public static CudaLlamaEngine Load(LlamaConfig c, IWeightSource source, int device, Action<double, string>? progress, CancellationToken ct)
    {
        LlamaWeights.Validate(c);
        var ctx = CudaContext.Open(device);
        var keep = new List<object>();
        try
        {
            int h = c.HiddenSize, hd = c.HeadDim, qd = c.NumHeads * hd, kvd = c.NumKeyValueHeads * hd, inter = c.IntermediateSize;
            int qkvd = qd + 2 * kvd;
            var segs = new List<UploadSegment>();
            long off = 0;
            long parameters = 0;
            long Reserve(long bytes)
            {
                long at = off;
                off = (off + bytes + 255) & ~255L;
                return at;
            }

            (IntPtr Ptr, long Bytes) Bf16(string name, long elements)
            {
                if (!source.Contains(name)) throw new GpuOpsException("ModelTensorMissing", ErrorCategory.InvalidData, $"The model has no tensor '{name}'.", name);
                var info = source.GetInfo(name);
                if (info.ElementCount != elements)
                    throw new GpuOpsException("ModelTensorShape", ErrorCategory.InvalidData,
                        $"Tensor '{name}' has {info.ElementCount} elements ([{string.Join(", ", info.Shape)}]), expected {elements}.", name);
                parameters += elements;
                if (info.DType == TensorDType.BF16 && source is IMappedWeightSource m)
                {
                    var loc = m.GetLocation(name);
                    return ((IntPtr)loc.Pointer, loc.Length);
                }

                var f = new float[elements];
                source.ReadFloat32(name, f);
                var b = GC.AllocateUninitializedArray<ushort>((int)elements, pinned: true);
                for (long i = 0; i < elements; i++) b[i] = ToBf16(f[i]);
                keep.Add(b);
                return ((IntPtr)Unsafe(b), elements * 2);
            }

            ulong Tensor(string name, long elements)
            {
                var (p, n) = Bf16(name, elements);
                long at = Reserve(n);
                segs.Add(new UploadSegment(p, n, at));
                return (ulong)at;
            }

            // q/k rows (or bias entries) of a rotate-half checkpoint go to the device in interleaved-pair order: row
            // h*hd + 2d <- h*hd + d, row h*hd + 2d + 1 <- h*hd + hd/2 + d. q.k is unchanged (same order on both sides), RoPE
            // pairs become adjacent rows, so the decode GEMV rotates them in its epilogue (EPI_QKV).
            bool permute = source.RopeLayout == RopeLayout.RotateHalf;
            ulong Concat(long total, params (string Name, long Elements, bool Optional, bool Rope)[] parts)
            {
                long at = Reserve(total * 2), o = at;
                bool any = false;
                foreach (var (name, n, optional, rope) in parts)
                {
                    if (optional && !source.Contains(name))
                    {
                        var z = GC.AllocateArray<ushort>((int)n, pinned: true);
                        keep.Add(z);
                        segs.Add(new UploadSegment((IntPtr)Unsafe(z), n * 2, o));
                    }
                    else
                    {
                        var (p, b) = Bf16(name, n);
                        if (rope && permute)
                        {
                            long rows = RopeRows(name), rowBytes = b / rows, half = hd / 2;
                            for (long r = 0; r < rows; r++)
                            {
                                long head = r / hd, i = r % hd, src = head * hd + (i % 2 == 0 ? i / 2 : half + i / 2);
                                segs.Add(new UploadSegment(p + (nint)(src * rowBytes), rowBytes, o + r * rowBytes));
                            }
                        }
                        else
                        {
                            segs.Add(new UploadSegment(p, b, o));
                        }

                        any = true;
                    }

                    o += n * 2;
                }

                return any ? (ulong)at : ulong.MaxValue;
            }

            long RopeRows(string name) => name.Contains("q_proj") ? qd : kvd;

            ulong Interleaved(string gate, string up, long rows, long cols, bool optional)
            {
                if (optional && !source.Contains(gate) && !source.Contains(up)) return ulong.MaxValue;
                var (g, gb) = optional && !source.Contains(gate) ? Zeros(rows * cols) : Bf16(gate, rows * cols);
                var (u, ub) = optional && !source.Contains(up) ? Zeros(rows * cols) : Bf16(up, rows * cols);
                long at = Reserve(2 * rows * cols * 2), rowBytes = cols * 2;
                for (long r = 0; r < rows; r++)
                {
                    segs.Add(new UploadSegment(g + (nint)(r * rowBytes), rowBytes, at + 2 * r * rowBytes));
                    segs.Add(new UploadSegment(u + (nint)(r * rowBytes), rowBytes, at + (2 * r + 1) * rowBytes));
                }

                return (ulong)at;
            }

            (IntPtr, long) Zeros(long n)
            {
                var z = GC.AllocateArray<ushort>((int)n, pinned: true);
                keep.Add(z);
                return ((IntPtr)Unsafe(z), n * 2);
            }

            ulong emb = Tensor("model.embed_tokens.weight", (long)c.VocabSize * h);
            var layers = new (ulong AttnNorm, ulong Wqkv, ulong Bqkv, ulong Wo, ulong Bo, ulong MlpNorm, ulong WGateUp, ulong BGateUp, ulong WDown, ulong BDown)[c.NumLayers];
            for (int i = 0; i < c.NumLayers; i++)
            {
                string p = $"model.layers.{i}.";
                layers[i].AttnNorm = Tensor(p + "input_layernorm.weight", h);
                layers[i].Wqkv = Concat((long)qkvd * h, (p + "self_attn.q_proj.weight", (long)qd * h, false, true), (p + "self_attn.k_proj.weight", (long)kvd * h, false, true),
                    (p + "self_attn.v_proj.weight", (long)kvd * h, false, false));
                layers[i].Bqkv = source.Contains(p + "self_attn.q_proj.bias") || source.Contains(p + "self_attn.k_proj.bias") || source.Contains(p + "self_attn.v_proj.bias")
                    ? Concat(qkvd, (p + "self_attn.q_proj.bias", qd, true, true), (p + "self_attn.k_proj.bias", kvd, true, true), (p + "self_attn.v_proj.bias", kvd, true, false))
                    : ulong.MaxValue;
                layers[i].Wo = Tensor(p + "self_attn.o_proj.weight", (long)h * qd);
                layers[i].Bo = source.Contains(p + "self_attn.o_proj.bias") ? Tensor(p + "self_attn.o_proj.bias", h) : ulong.MaxValue;
                layers[i].MlpNorm = Tensor(p + "post_attention_layernorm.weight", h);
                layers[i].WGateUp = Interleaved(p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight", inter, h, false);
                layers[i].BGateUp = Interleaved(p + "mlp.gate_proj.bias", p + "mlp.up_proj.bias", inter, 1, true);
                layers[i].WDown = Tensor(p + "mlp.down_proj.weight", (long)h * inter);
                layers[i].BDown = source.Contains(p + "mlp.down_proj.bias") ? Tensor(p + "mlp.down_proj.bias", h) : ulong.MaxValue;
            }

            ulong norm = Tensor("model.norm.weight", h);
            bool tied = c.TieWordEmbeddings || !source.Contains("lm_head.weight");
            ulong output = tied ? emb : Tensor("lm_head.weight", (long)c.VocabSize * h);
            long total = off;
            ulong arena = ctx.Allocate(total, $"the weights of the model ({total / 1e9:F2} GB bf16)");
            UploadStats stats;
            try
            {
                stats = CudaWeightUpload.Upload(ctx, arena, total, segs.ToArray(), progress, ct);
            }
            catch
            {
                ctx.Free(arena);
                throw;
            }

            ulong A(ulong o) => o == ulong.MaxValue ? 0 : arena + o;
            var cl = layers.Select(x => new CudaLayer(A(x.AttnNorm), A(x.Wqkv), A(x.Bqkv), A(x.Wo), A(x.Bo), A(x.MlpNorm), A(x.WGateUp), A(x.BGateUp), A(x.WDown), A(x.BDown))).ToArray();
            // (rotate-half q/k rows were stored in interleaved-pair order above, so the device always rotates adjacent pairs)
            var engine = new CudaLlamaEngine(ctx, c, arena, total, cl, arena + emb, arena + norm, arena + output, RopeLayout.Interleaved, parameters);
            engine.LoadStats = stats;
            GC.KeepAlive(keep);
            return engine;
        }
        catch
        {
            ctx.Dispose();
            throw;
        }
    }

    private static void* Unsafe(ushort[] pinnedArray) => Unsafe(ref MemoryMarshal.GetArrayDataReference(pinnedArray));

    private static void* Unsafe(ref ushort r) => System.Runtime.CompilerServices.Unsafe.AsPointer(ref r);

    internal static ushort ToBf16(float f) => GpuOps.Core.Formats.DTypes.SingleToBF16(f);

    // ------------------------------------------------------------------ buffers

    /// <summary>Activations for up to <see cref="Tokens"/> tokens (and <see cref="Rows"/> logit rows).</summary>
    internal sealed class Workspace : IDisposable
    {
        private readonly CudaContext _ctx;
        private readonly List<ulong> _all = new();
        public readonly int Tokens, Rows, SumSqStride;
        public readonly ulong X, Hn, Qkv, Attn, Gu, Act, Logits, SumSq, Ints, RowIds, RopeCs;
        public readonly ulong Mk, MkBar, MkCand, MkTrace, MkAcc, MkBTrace, MkPart;   // batch 1: persistent kernel arguments, counts, argmax candidates, timestamps, residual, per-block timestamps, attention partials

        public Workspace(CudaLlamaEngine e, int tokens, int rows)
        {
            _ctx = e.Ctx;
            Tokens = tokens;
            Rows = rows;
            try
            {
                X = Alloc((long)tokens * e.H * 4);
                Hn = Alloc((long)Math.Max(tokens, rows) * e.H * 2);
                Qkv = Alloc((long)tokens * e.QkvDim * 2);
                Attn = Alloc((long)tokens * e.QDim * 2);
                Gu = Alloc((long)tokens * 2 * e.I * 2);
                Act = Alloc((long)tokens * e.I * 2);
                Logits = Alloc((long)rows * e.V * 4);
                // batch-1 decode (fused RMSNorm): each slot holds the result, the last-block counter and one partial per GEMV block
                SumSqStride = tokens == 1 ? 2 + e.Ctx.MultiprocessorCount * MaxGemvBlocksPerSm : tokens;
                SumSq = Alloc((2L * e.L + 1) * SumSqStride * 4);
                Check(cuMemsetD8Async(SumSq, 0, (nuint)((2L * e.L + 1) * SumSqStride * 4), e.Ctx.Stream), "cuMemsetD8Async(sumsq)");
                Ints = Alloc(4L * tokens * 4 + 64);   // tokens, slots, positions, counts
                RowIds = Alloc((long)rows * 4);
                if (tokens > 1) RopeCs = Alloc((long)tokens * e.Hd / 2 * 8);
                if (tokens == 1 && e.Ctx.MultiprocessorCount <= MkMaxGrid)
                {
                    Mk = Alloc(Marshal.SizeOf<MkArgs>());
                    // the grid-barrier arrival count, the fused MLP phase's staging count, per head its attention partials' count
                    // (and, for llama.cu's MK_GROUP_QKV experiment, per kv group a count and the q/k/v stagings' count)
                    MkBar = Alloc(e.MkBarBytes);
                    Check(cuMemsetD8Async(MkBar, 0, (nuint)e.MkBarBytes, e.Ctx.Stream), "cuMemsetD8Async(barrier)");
                    MkPart = Alloc(4L * MkMaxGrid * (e.Hd + 2));   // (long contexts) each block's attention partial
                    MkCand = Alloc(8L * MkMaxGrid);
                    MkTrace = Alloc(16L * (5 * e.L + 2));
                    MkAcc = Alloc(8L * e.H);   // the residual stream in 32.32 fixed point
                    long bTraceBytes = 16L * (5 * e.L + 2) * e.Ctx.MultiprocessorCount;
                    MkBTrace = Alloc(bTraceBytes);
                    Check(cuMemsetD8Async(MkBTrace, 0, (nuint)bTraceBytes, e.Ctx.Stream), "cuMemsetD8Async(block trace)");
                    Check(cuMemsetD8Async(MkAcc, 0, (nuint)(8L * e.H), e.Ctx.Stream), "cuMemsetD8Async(residual)");
                }
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        public ulong TokenIds => Ints;
        public ulong SlotIds => Ints + (ulong)(Tokens * 4);
        public ulong Positions => Ints + (ulong)(2 * Tokens * 4);
        public ulong Counts => Ints + (ulong)(3 * Tokens * 4);

        /// <summary>Device bytes this workspace holds.</summary>
        public long Bytes { get; private set; }

        private ulong Alloc(long bytes)
        {
            var p = _ctx.Allocate(Math.Max(bytes, 256), "engine activations");
            _all.Add(p);
            Bytes += Math.Max(bytes, 256);
            return p;
        }

        public void Dispose()
        {
            foreach (var p in _all) _ctx.Free(p);
            _all.Clear();
        }
    }

    /// <summary>One captured decode step of B sequences (slots fixed by the state buffer) and its buffers.</summary>
    internal sealed class DecodeGraph : IDisposable
    {
        public required int B;
        public required Workspace Ws;
        public required ulong Out;      // [capacity][B] ids
        public required int Capacity;
        public CudaGraph? Graph;
        public bool Persistent;
        public ulong MkCache;   // the cache and variant flags the argument block was written for
        public int MkFlags;
        public int MkWorkGrid;  // the grid the persistent kernel's last step divided its work for (its block trace's width; 0: none yet)
        public int MkSitOut;    // and the multiprocessors that sat it out
        public CudaModule? MkModule;   // and the build it ran from (another build: the graph is captured again)
        public int Runs;

        public void Dispose()
        {
            Graph?.Dispose();
            Ws.Dispose();
        }
    }

    public IKvCache CreateCache(int slots, int maxContext) => new CudaKvCache(this, slots, maxContext);

    // ------------------------------------------------------------------ kernels

    private void K(string name, (int, int, int) grid, int block, int shared, params KernelArg[] args) => K(Module, name, grid, block, shared, args);

    private void K(CudaModule module, string name, (int, int, int) grid, int block, int shared, params KernelArg[] args)
    {
        var ev = _profile is null ? null : Ctx.CreateEvent();
        ev?.Record(Ctx.Stream);
        Launcher.Launch(module.Function(name), name, Ctx.Stream, grid, block, shared, args);
        if (ev is not null) EndProfile(name, ev);
    }

    /// <summary>Batch 1..4 decode: q/k/v projection, RoPE and the KV-cache write in one kernel (default); false: GEMV + rope_kv (GPUOPS_ENGINE_FUSED_ROPE=0).</summary>
    public bool FusedRope { get; set; } = Environment.GetEnvironmentVariable("GPUOPS_ENGINE_FUSED_ROPE") != "0";

    // ------------------------------------------------------------------ per-kernel timing (benchmarks)

    private List<(string Name, CudaEvent Start, CudaEvent Stop)>? _profile;

    private void EndProfile(string name, CudaEvent start)
    {
        var stop = Ctx.CreateEvent();
        stop.Record(Ctx.Stream);
        _profile!.Add((name, start, stop));
    }

    private void Timed(string name, Action launch)
    {
        var ev = _profile is null ? null : Ctx.CreateEvent();
        ev?.Record(Ctx.Stream);
        launch();
        if (ev is not null) EndProfile(name, ev);
    }

    /// <summary>
    /// For benchmarks: run <paramref name="body"/> (eager launches, no graph) with an event pair around every kernel and
    /// GEMM; returns milliseconds and launches per kernel name, largest first.
    /// </summary>
    internal IReadOnlyList<(string Name, double Ms, int Launches)> ProfileKernels(Action body)
    {
        Ctx.Synchronize();
        _profile = new();
        try
        {
            body();
            Ctx.Synchronize();
            return _profile.GroupBy(p => p.Name)
                .Select(g => (g.Key, g.Sum(p => (double)CudaEvent.Elapsed(p.Start, p.Stop)), g.Count()))
                .OrderByDescending(x => x.Item2).ToList();
        }
        finally
        {
            foreach (var (_, a, b) in _profile) { a.Dispose(); b.Dispose(); }
            _profile = null;
        }
    }

    private static (int, int, int) G(long x, int y = 1) => ((int)x, y, 1);

    /// <summary>
    /// Enqueue the forward pass of the T tokens in <paramref name="ws"/> (ids/slots/positions already there) on the stream.
    /// <paramref name="chunks"/> (host) gives each sequence chunk's (first row, rows, slot, first position) for prefill
    /// attention; null means every row is a lone decode token (attention per token, slots/positions read on the device).
    /// Logits of rows <paramref name="rowIds"/> (device list, or the first R rows when 0) go to ws.Logits.
    /// </summary>
    private void Enqueue(Workspace ws, CudaKvCache cache, int T, IReadOnlyList<(int Row, int Len, int Slot, int Pos)>? chunks, int R, ulong rowIds, bool gemv,
        bool persistent = false)
    {
        var s = Ctx.Stream;
        int window = _c.SlidingWindow is > 0 ? _c.SlidingWindow.Value : 0;
        if (persistent)
        {
            // batch 1: the whole step (argmax and the decode-state advance included) in one persistent kernel
            K(_mkModule ?? Module, $"decode_b1_hd{Hd}", G(_mkGrid), MkThreads, MkSharedBytes(cache.MaxContext), ws.Mk);
            PersistentSteps++;
            return;
        }

        bool fused = gemv && T == 1;        // batch 1: RMSNorm fused into the GEMVs (sum of squares from the previous epilogue)
        bool fusedRope = gemv && FusedRope; // batch 1..4: RoPE and the KV-cache write in the q/k/v GEMV's epilogue
        K("embed", G(T), 256, 0, ws.TokenIds, Embedding, ws.X, fused ? ws.SumSq : 0UL, H);
        string sfx = $"_b{T}";
        int r4 = 4;
        // prefill: the (cos, sin) of each token's position once for every layer and head
        bool ropeTable = !gemv && ws.RopeCs != 0;
        if (ropeTable) K("rope_table", G(Math.Min(4096, ((long)T * Hd / 2 + 255) / 256)), 256, 0, ws.Positions, InvFreq, ws.RopeCs, T, Hd / 2);
        for (int l = 0; l < L; l++)
        {
            var w = Layers[l];
            // per layer two sum-of-squares slots (before attention, before the MLP), each [T] results + counter + partials
            ulong slot = (ulong)ws.SumSqStride * 4;
            ulong sumIn = ws.SumSq + (ulong)(2 * l) * slot, sumMid = sumIn + slot, sumOut = sumMid + slot;
            ulong kc = cache.Keys(l), vc = cache.Values(l);
            // attention block
            if (!fused) K("rmsnorm", G(T), 256, 0, ws.X, w.AttnNorm, ws.Hn, H, Eps, 0UL);
            if (fusedRope)
            {
                ulong input = fused ? ws.X : ws.Hn, gamma = fused ? w.AttnNorm : 0UL, sum = fused ? sumIn : 0UL;
                int r = fused ? 2 : r4;
                long blocks = GemvBlocks(QkvDim, r);
                K($"gemv_qkv{sfx}_n{(fused ? 1 : 0)}_r{r}", G(blocks), 128, 0, w.Wqkv, w.Bqkv, QkvDim, H, input, gamma, sum, Eps, ws.Qkv, 0UL,
                    ws.SlotIds, ws.Positions, InvFreq, kc, vc, Nh, Nkv, Hd, cache.MaxContext);
            }
            else
            {
                if (fused) Gemv($"gemv{sfx}_n1_e0_r2", QkvDim, 2, w.Wqkv, w.Bqkv, H, ws.X, w.AttnNorm, sumIn, ws.Qkv, 0UL);
                else if (gemv) Gemv($"gemv{sfx}_n0_e0_r4", QkvDim, r4, w.Wqkv, w.Bqkv, H, ws.Hn, 0UL, 0UL, ws.Qkv, 0UL);
                else if (SkipStage != "gemm") Timed("gemm qkv", () => Gemm.Run(ws.Hn, w.Wqkv, ws.Qkv, T, QkvDim, H, false, 0f, s));
                K("rope_kv", G(T), 256, 0, ws.Qkv, gemv ? 0UL : w.Bqkv, ws.SlotIds, ws.Positions, InvFreq, kc, vc, Nh, Nkv, Hd, cache.MaxContext, RopeLayoutCode,
                    ropeTable ? ws.RopeCs : 0UL);
            }

            if (SkipStage == "attention")
            {
            }
            else if (chunks is null || !TensorCoreAttention)
            {
                int smem = (Hd + 1024 + cache.MaxContext) * 4;
                if (smem > 48 * 1024 && smem > _attnSmemSet)
                {
                    Check(cuFuncSetAttribute(Module.Function($"attn_token_hd{Hd}"), CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem), "cuFuncSetAttribute(attn_token)");
                    _attnSmemSet = smem;
                }

                K($"attn_token_hd{Hd}", (T, Nh, 1), 128, smem, ws.Qkv, kc, vc, ws.Attn, ws.SlotIds, ws.Positions, Nh, Nkv, cache.MaxContext, window, Scale);
            }
            else
            {
                string attn = $"{PrefillAttentionKernel}_hd{Hd}";
                int attnSmem = PrefillAttentionSharedBytes(Module.Function(attn), PrefillAttentionKernel, Hd), rowsPer = PrefillAttentionRows(PrefillAttentionKernel);
                foreach (var ch in chunks)
                {
                    ulong q = ws.Qkv + (ulong)((long)ch.Row * QkvDim * 2), o = ws.Attn + (ulong)((long)ch.Row * QDim * 2);
                    K(attn, ((ch.Len + rowsPer - 1) / rowsPer, Nh, 1), 128, attnSmem, q, kc, vc, o, ch.Len, ch.Pos, ch.Slot, Nh, Nkv, cache.MaxContext, window, Scale);
                }
            }

            if (fused)
            {
                Gemv($"gemv{sfx}_n0_e1_r1", H, 1, w.Wo, w.Bo, QDim, ws.Attn, 0UL, 0UL, ws.X, sumMid);
                Gemv($"gemv{sfx}_n1_e2_r2", 2 * I, 2, w.WGateUp, w.BGateUp, H, ws.X, w.MlpNorm, sumMid, ws.Act, 0UL);
                Gemv($"gemv{sfx}_n0_e1_r1", H, 1, w.WDown, w.BDown, I, ws.Act, 0UL, 0UL, ws.X, sumOut);
            }
            else if (gemv)
            {
                Gemv($"gemv{sfx}_n0_e1_r4", H, r4, w.Wo, w.Bo, QDim, ws.Attn, 0UL, 0UL, ws.X, 0UL);
                K("rmsnorm", G(T), 256, 0, ws.X, w.MlpNorm, ws.Hn, H, Eps, 0UL);
                Gemv($"gemv{sfx}_n0_e2_r4", 2 * I, r4, w.WGateUp, w.BGateUp, H, ws.Hn, 0UL, 0UL, ws.Act, 0UL);
                Gemv($"gemv{sfx}_n0_e1_r4", H, r4, w.WDown, w.BDown, I, ws.Act, 0UL, 0UL, ws.X, 0UL);
            }
            else
            {
                if (SkipStage != "gemm") Timed("gemm o", () => Gemm.Run(ws.Attn, w.Wo, ws.X, T, H, QDim, true, 1f, s));
                if (w.Bo != 0) K("add_bias_f32", G(Math.Min(4096, ((long)T * H + 255) / 256)), 256, 0, ws.X, w.Bo, T, H);
                K("rmsnorm", G(T), 256, 0, ws.X, w.MlpNorm, ws.Hn, H, Eps, 0UL);
                if (SkipStage != "gemm") Timed("gemm gate/up", () => Gemm.Run(ws.Hn, w.WGateUp, ws.Gu, T, 2 * I, H, false, 0f, s));
                K("silu_mul_il", (((I / 8) + 255) / 256, Math.Min(T, 65535), 1), 256, 0, ws.Gu, w.BGateUp, ws.Act, T, I);
                if (SkipStage != "gemm") Timed("gemm down", () => Gemm.Run(ws.Act, w.WDown, ws.X, T, H, I, true, 1f, s));
                if (w.BDown != 0) K("add_bias_f32", G(Math.Min(4096, ((long)T * H + 255) / 256)), 256, 0, ws.X, w.BDown, T, H);
            }
        }

        if (fused)
        {
            Gemv($"gemv{sfx}_n1_e3_r1", V, 1, Output, 0UL, H, ws.X, FinalNorm, ws.SumSq + (ulong)(2 * L) * (ulong)ws.SumSqStride * 4, ws.Logits, 0UL);
        }
        else
        {
            K("rmsnorm", G(R), 256, 0, ws.X, FinalNorm, ws.Hn, H, Eps, rowIds);
            if (gemv) Gemv($"gemv{sfx}_n0_e3_r4", V, r4, Output, 0UL, H, ws.Hn, 0UL, 0UL, ws.Logits, 0UL);
            else Timed("gemm lm_head", () => Gemm.Run(ws.Hn, Output, ws.Logits, R, V, H, true, 0f, s));
        }
    }


    /// <summary>
    /// Batch-1 decode as one persistent kernel (decode_b1_hd*: one block of 512 threads per multiprocessor, grid barriers
    /// between phases) instead of ~160 kernels; GPUOPS_ENGINE_PERSISTENT=0 turns it off. Used where the block fits
    /// (shared memory for the staged inputs and the attention scores of MaxContext positions) and head_dim is 64 or 128.
    /// </summary>
    public bool PersistentDecode { get; set; } = Environment.GetEnvironmentVariable("GPUOPS_ENGINE_PERSISTENT") != "0";

    internal const int MkThreads = 512;

    /// <summary>Bytes of the persistent kernel's counts (MkArgs.bar: 3 + heads + kv heads words).</summary>
    private long MkBarBytes => 8L * (3 + Nh + Nkv);
    private int _mkGrid, _mkWorkGrid;
    private CudaModule? _mkModule;
    private readonly Dictionary<string, CudaModule> _mkBuilds = new();   // the builds other than Module's, by their options
    private readonly Dictionary<CudaModule, int> _mkSmemSet = new();     // the dynamic shared memory decode_b1 was allowed, per build
    private readonly Dictionary<CudaModule, int> _sitOutWritten = new(); // the sit-out count each MK_VIRTUAL_BLOCKS build's table holds
    private int[]? _smFastFirst;   // the multiprocessors (%smid) by streaming time, fastest first (sm_rate, measured once)

    /// <summary>
    /// Multiprocessors that sit out the persistent kernel (GPUOPS_ENGINE_SIT_OUT): -1, the default, picks
    /// <see cref="AutoSitOut"/>; 0 none; n that many. With n &gt; 0 the kernel is launched with one block per multiprocessor
    /// from a second build of llama.cu (MK_VIRTUAL_BLOCKS) in which each block takes its work id from a table by %smid, and
    /// the work is divided for the others. The ones sitting out are the fastest streamers (sm_rate over the lm_head
    /// weights, measured once per engine). For the 8B shape on 132 multiprocessors (4 sitting out, 128 work ids, every
    /// phase divided evenly): decode harness 254.5-255.2 tok/s against 252.0-253.1 with every multiprocessor; in four
    /// bench sweeps on H200s +0.4..1.3% over 132 blocks and +0.3..1.1% over a plain 128-block launch
    /// (bench/notes/cuda-engine.md, sessions 9-10). Ignored while <see cref="PersistentGrid"/> is set.
    /// </summary>
    internal int PersistentSitOut { get; set; } = int.TryParse(Environment.GetEnvironmentVariable("GPUOPS_ENGINE_SIT_OUT"), out var so) ? so : -1;

    /// <summary>
    /// The default number of multiprocessors sitting out: the remainder of the multiprocessors over the query heads where
    /// it is at most a tenth of them (then every working block is one of the same number of attention + o blocks per head;
    /// the blocks left over would idle through that phase anyway), else 0. 4 for 32 heads on 132 multiprocessors.
    /// </summary>
    internal int AutoSitOut => AutoSitOutFor(Ctx.MultiprocessorCount, Nh);

    internal static int AutoSitOutFor(int multiprocessors, int heads)
    {
        if (heads < 1 || multiprocessors < heads) return 0;
        int r = multiprocessors % heads;
        return r * 10 <= multiprocessors ? r : 0;
    }

    /// <summary>The multiprocessors that sat out the last persistent decode (%smid), empty where none did.</summary>
    internal IReadOnlyList<int> SittingOut { get; private set; } = Array.Empty<int>();

    /// <summary>
    /// Whether the MK_GROUP_QKV build groups the q/k/v rows for a work grid (llama.cu mk_qkv_map's condition, the attention
    /// + o split being on): a whole number of blocks per head whose shares of the head's q row pairs and of its kv group's
    /// k and v row pairs are whole and take at most 4 rounds of the block's 8 warp pairs.
    /// </summary>
    internal static bool GroupQkvAppliesFor(int workGrid, int heads, int kvHeads, int headDim)
    {
        if (heads < 1 || kvHeads < 1 || heads % kvHeads != 0 || workGrid < heads || workGrid % heads != 0) return false;
        int bph = workGrid / heads, bpg = bph * (heads / kvHeads), pairs = headDim / 2;
        return pairs % bph == 0 && pairs % bpg == 0 && pairs / bph + 2 * (pairs / bpg) <= 4 * (MkThreads / 32 / 2);
    }

    /// <summary>
    /// Whether the last persistent decode's q/k/v rows were made by kv group: built with -DMK_GROUP_QKV=1 (an experiment,
    /// off by default: each kv group's blocks make its q/k/v rows and attention waits on the group's count instead of a
    /// grid barrier; same sums in the same order, so the same bits) and the work grid lets it apply.
    /// </summary>
    internal bool GroupQkvInUse => _mkDefines.Contains("-DMK_GROUP_QKV=1") && (PersistentFlags & 17) == 17 && GroupQkvAppliesFor(_mkWorkGrid, Nh, Nkv, Hd);

    /// <summary>
    /// Extra preprocessor definitions of the persistent kernel's build (GPUOPS_ENGINE_DEFINES, space-separated), for
    /// compile-time experiments in llama.cu such as -DMK_DOWN_ROTATE=1 or -DMK_GROUP_QKV=1 (the bench and the GPU host);
    /// none by default.
    /// Each is -DNAME or -DNAME=VALUE (letters, digits, underscores).
    /// </summary>
    internal IReadOnlyList<string> PersistentDefines
    {
        get => _mkDefines;
        set => _mkDefines = CheckDefines(value);
    }

    private IReadOnlyList<string> _mkDefines = CheckDefines((Environment.GetEnvironmentVariable("GPUOPS_ENGINE_DEFINES") ?? "")
        .Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    internal static IReadOnlyList<string> CheckDefines(IReadOnlyList<string> defines)
    {
        foreach (var d in defines)
            if (!System.Text.RegularExpressions.Regex.IsMatch(d, "^-D[A-Za-z_][A-Za-z0-9_]*(=[A-Za-z0-9_]+)?$"))
                throw new ArgumentException($"'{d}' is not a preprocessor definition of the form -DNAME or -DNAME=VALUE (GPUOPS_ENGINE_DEFINES / PersistentDefines).", nameof(defines));
            else if (d.StartsWith("-DMK_VIRTUAL_BLOCKS", StringComparison.Ordinal))
                throw new ArgumentException("MK_VIRTUAL_BLOCKS comes with multiprocessors sitting out (PersistentSitOut / GPUOPS_ENGINE_SIT_OUT), not as a definition.", nameof(defines));
        return defines.ToArray();
    }

    /// <summary>
    /// The build of llama.cu the persistent kernel runs from: the main one, or one made on first use (NVRTC, cached on
    /// disk like the main build) with MK_VIRTUAL_BLOCKS (sit-out) and <see cref="PersistentDefines"/>.
    /// </summary>
    private CudaModule DecodeModule(bool virtualBlocks)
    {
        var options = new List<string>();
        if (virtualBlocks) options.Add("-DMK_VIRTUAL_BLOCKS");
        options.AddRange(_mkDefines);
        if (options.Count == 0) return Module;
        string key = string.Join(' ', options);
        if (!_mkBuilds.TryGetValue(key, out var m))
        {
            var cubin = KernelCache.Shared.GetCubin("engine/llama.cu", Ctx.Major, Ctx.Minor, extraOptions: options);
            m = new CudaModule(Ctx, cubin, $"engine/llama.cu ({key})");
            _mkBuilds[key] = m;
        }

        return m;
    }

    /// <summary>
    /// The work-id table of the sit-out build: the <paramref name="sitOut"/> fastest multiprocessors get -1, the others
    /// 0.. in %smid order. Measures the multiprocessors' streaming times first (once): sm_rate, one block per
    /// multiprocessor, each reading its share of the lm_head weights, five timed runs after one warm-up.
    /// </summary>
    private void WriteSitOutTable(CudaModule m, int sitOut)
    {
        if (_sitOutWritten.GetValueOrDefault(m, -1) == sitOut) return;
        int sms = Ctx.MultiprocessorCount;
        if (_smFastFirst is null)
        {
            long per = (long)V * H / 8 / sms;
            ulong buf = Ctx.Allocate(16L * sms, "the multiprocessors' streaming times");
            try
            {
                var host = new ulong[2 * sms];
                var total = new Dictionary<int, double>();
                for (int r = 0; r < 6; r++)
                {
                    K("sm_rate", G(sms), 512, 0, Output, per, buf);
                    Ctx.Synchronize();
                    fixed (ulong* hp = host) Check(cuMemcpyDtoH(hp, buf, (nuint)(16 * sms)), "cuMemcpyDtoH(sm_rate)");
                    for (int b = 0; b < sms; b++)
                    {
                        int id = (int)host[2 * b];
                        if (id >= 1024) throw new GpuOpsException("SmIdOutOfRange", ErrorCategory.NotImplemented, $"Multiprocessor id {id} is beyond the sit-out table's 1024.", id);
                        total[id] = r == 0 ? 0 : total.GetValueOrDefault(id) + host[2 * b + 1];   // (run 0: warm-up)
                    }
                }

                if (total.Count != sms)
                    throw new GpuOpsException("SmIdsNotDistinct", ErrorCategory.InvalidResult, $"sm_rate saw {total.Count} distinct multiprocessors of {sms}.", total.Count);
                _smFastFirst = total.OrderBy(x => x.Value).ThenBy(x => x.Key).Select(x => x.Key).ToArray();
            }
            finally
            {
                Ctx.Free(buf);
            }
        }

        var table = new int[1024];
        Array.Fill(table, -1);
        var out_ = new HashSet<int>(_smFastFirst.Take(sitOut));
        int vid = 0;
        foreach (int id in _smFastFirst.OrderBy(x => x))
            if (!out_.Contains(id)) table[id] = vid++;
        var (tp, tb) = m.Global("mk_smvid");
        var (gp, _) = m.Global("mk_vgrid_g");
        if (tb != 4 * 1024) throw new GpuOpsException("SitOutTableSize", ErrorCategory.InvalidResult, $"mk_smvid has {tb} bytes, not {4 * 1024}.", tb);
        Ctx.Synchronize();
        fixed (int* p = table) Check(cuMemcpyHtoD(tp, p, (nuint)(4 * 1024)), "cuMemcpyHtoD(mk_smvid)");
        Check(cuMemcpyHtoD(gp, &vid, 4), "cuMemcpyHtoD(mk_vgrid_g)");
        SittingOut = out_.OrderBy(x => x).ToArray();
        _sitOutWritten[m] = sitOut;
    }

    /// <summary>Dynamic shared memory of decode_b1_*: the staged input of a GEMV phase or the attention scratch (scores of maxContext positions).</summary>
    internal int MkSharedBytes(int maxContext) =>
        Math.Max(Math.Max(H * 4, Math.Max(QDim * 2, I * 2)), (2 * Hd + MkThreads / (Hd / 8) * (Hd + 2) + maxContext) * 4);

    /// <summary>
    /// Check that the persistent kernel can run for this cache (all blocks resident: one per multiprocessor) and write
    /// its argument block (MkArgs in llama.cu) for the graph's workspace. False: use the multi-kernel path.
    /// </summary>
    private bool PreparePersistent(CudaKvCache cache, DecodeGraph dg)
    {
        var ws = dg.Ws;
        if (ws.Mk == 0) return false;
        int smem = MkSharedBytes(cache.MaxContext);
        if (smem > Ctx.MaxSharedMemoryPerBlockOptin) return false;
        int sms = Ctx.MultiprocessorCount;
        int sitOut = PersistentGrid > 0 ? 0 : Math.Clamp(PersistentSitOut < 0 ? AutoSitOut : PersistentSitOut, 0, sms - 1);
        var module = DecodeModule(sitOut > 0);
        var f = module.Function($"decode_b1_hd{Hd}");
        if (smem > _mkSmemSet.GetValueOrDefault(module))
        {
            Check(cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem), "cuFuncSetAttribute(decode_b1)");
            _mkSmemSet[module] = smem;
        }

        int perSm;
        Check(cuOccupancyMaxActiveBlocksPerMultiprocessor(&perSm, f, MkThreads, (nuint)smem), "cuOccupancyMaxActiveBlocksPerMultiprocessor(decode_b1)");
        if (perSm < 1) return false;
        // the launch grid and the grid the work is divided for: the same, or (sit-out) one block per multiprocessor of which
        // sms - sitOut take work ids
        _mkGrid = sitOut > 0 ? sms : PersistentGrid > 0 ? Math.Min(PersistentGrid, sms) : sms;
        _mkWorkGrid = _mkGrid - sitOut;
        if (sitOut > 0) WriteSitOutTable(module, sitOut);
        _mkModule = module;
        if (dg.MkWorkGrid != _mkWorkGrid || dg.MkSitOut != sitOut || dg.MkModule != module)
        {
            // the barrier counts grow by the grid per barrier and each launch rounds them down to a multiple of its grid:
            // start them from zero for another grid (stream-ordered after the earlier launches); the graph holds the old grid
            if (dg.MkWorkGrid != 0)
                Check(cuMemsetD8Async(ws.MkBar, 0, (nuint)MkBarBytes, Ctx.Stream), "cuMemsetD8Async(barrier)");
            dg.Graph?.Dispose();
            dg.Graph = null;
            dg.MkWorkGrid = _mkWorkGrid;
            dg.MkSitOut = sitOut;
            dg.MkModule = module;
        }

        int flags = PersistentFlags;
        if ((flags & MkDownBlocked) != 0 && !EnsureDownBlocked(_mkWorkGrid, flags)) flags &= ~MkDownBlocked;
        if (dg.MkCache == cache.Keys(0) && dg.MkFlags == flags) return true;
        var args = new MkArgs
        {
            Layers = LayerTable, Emb = Embedding, FinalNorm = FinalNorm, Out = Output, InvF = InvFreq,
            Kc = cache.Keys(0), Vc = cache.Values(0), X = ws.X, Qkv = ws.Qkv, Attn = ws.Attn, Act = ws.Act, Logits = ws.Logits,
            Tokens = ws.TokenIds, Slot = ws.SlotIds, Pos = ws.Positions, OutIds = dg.Out, Count = ws.Counts,
            Bar = ws.MkBar, CandV = ws.MkCand, CandI = ws.MkCand + (ulong)(4 * MkMaxGrid), Trace = ws.MkTrace, AccO = ws.MkAcc, BTrace = ws.MkBTrace, Part = ws.MkPart,
            LayerElems = (long)(cache.Keys(1 % L) - cache.Keys(0)) / 2,
            L = L, H = H, I = I, V = V, Nh = Nh, Nkv = Nkv, Hd = Hd, MaxCtx = cache.MaxContext,
            Window = _c.SlidingWindow is > 0 ? _c.SlidingWindow.Value : 0, Eps = Eps, Scale = Scale, Flags = flags,
        };
        if (L == 1) args.LayerElems = 0;
        Check(cuMemcpyHtoD(ws.Mk, &args, (nuint)sizeof(MkArgs)), "cuMemcpyHtoD(decode_b1 arguments)");
        dg.MkCache = cache.Keys(0);
        dg.MkFlags = flags;
        return true;
    }

    /// <summary>Persistent decode kernels enqueued (or captured) so far (tests: which path ran).</summary>
    internal long PersistentSteps { get; private set; }

    /// <summary>
    /// For benchmarks: the last persistent step of <paramref name="cache"/>'s batch-1 graph, block 0's barrier
    /// timestamps: per phase (qkv, attention, o, gate/up, down of each layer, then lm_head and the argmax barrier)
    /// microseconds from the previous barrier's exit to its arrival (work) and to the barrier's exit (waiting).
    /// </summary>
    internal IReadOnlyList<(string Phase, double WorkUs, double WaitUs)> PersistentTrace(IKvCache kv)
    {
        var (_, t) = ReadTrace(kv);
        int n = t.Length / 2;
        var list = new List<(string, double, double)>();
        for (int k = 1; k < n; k++)
            list.Add((TracePhase(k, n), (t[2 * k] - t[2 * k - 1]) / 1000.0, (t[2 * k + 1] - t[2 * k]) / 1000.0));
        return list;
    }

    /// <summary>The batch-1 graph's workspace of <paramref name="kv"/> and block 0's barrier timestamps (2 per barrier) of its last step.</summary>
    private (Workspace Ws, ulong[] T) ReadTrace(IKvCache kv)
    {
        var ws = ((CudaKvCache)kv).Graph(1).Ws;
        var t = new ulong[2 * (5 * L + 1)];
        Ctx.Synchronize();
        fixed (ulong* tp = t) Check(cuMemcpyDtoH(tp, ws.MkTrace, (nuint)(t.Length * 8)), "cuMemcpyDtoH(trace)");
        return (ws, t);
    }

    /// <summary>The name the benchmark gives barrier k of n's phase (by k mod 5; the last one is the lm_head).</summary>
    private static string TracePhase(int k, int n) => k == n - 1 ? "lm_head" : PhaseNames[k % 5];
    private static readonly string[] PhaseNames = { "qkv", "attention", "o", "gate/up", "down" };

    /// <summary>
    /// For benchmarks: every block's timestamps in the last persistent step, per phase (as <see cref="PersistentTrace"/>,
    /// microseconds from block 0's exit of the previous barrier): when the block had staged its input (median, latest)
    /// and when it arrived at the phase's barrier (earliest, median, latest), and block 0's exit of it (release).
    /// </summary>
    internal IReadOnlyList<(string Phase, double StagedMed, double StagedMax, double ArriveMin, double ArriveMed, double ArriveMax, double Release)> PersistentBlockTrace(IKvCache kv)
    {
        var (ws, t) = ReadTrace(kv);
        int n = t.Length / 2, grid = ((CudaKvCache)kv).Graph(1).MkWorkGrid;
        var b = new ulong[2L * n * grid];
        fixed (ulong* bp = b) Check(cuMemcpyDtoH(bp, ws.MkBTrace, (nuint)(b.Length * 8)), "cuMemcpyDtoH(block trace)");
        var list = new List<(string, double, double, double, double, double, double)>();
        static double Med(List<double> v) { v.Sort(); return v.Count == 0 ? double.NaN : v[v.Count / 2]; }
        ulong end = t[2 * n - 1];   // (the step's last barrier exit)
        for (int k = 1; k < n; k++)
        {
            ulong start = t[2 * k - 1], release = t[2 * k + 1];
            List<double> staged = new(), arrived = new();
            for (int g = 0; g < grid; g++)
            {
                ulong st = b[(2L * k) * grid + g], ar = b[(2L * k + 1) * grid + g];
                // (a block with no part in a phase keeps a time from an earlier step, before this phase's start, or the
                // zero it was allocated with; the attention pseudo-phase's "release" is block 0's end of attention,
                // which other blocks may pass)
                if (st >= start && st <= end) staged.Add((st - start) / 1000.0);
                if (ar >= start && ar <= end) arrived.Add((ar - start) / 1000.0);
            }
            list.Add((TracePhase(k, n), Med(staged), staged.Count > 0 ? staged.Max() : double.NaN,
                arrived.Count > 0 ? arrived.Min() : double.NaN, Med(arrived), arrived.Count > 0 ? arrived.Max() : double.NaN, (release - start) / 1000.0));
        }
        return list;
    }

    /// <summary>Most blocks the persistent kernel's candidate arrays hold.</summary>
    internal const int MkMaxGrid = 1024;

    [StructLayout(LayoutKind.Sequential)]
    internal struct MkArgs
    {
        public ulong Layers, Emb, FinalNorm, Out, InvF, Kc, Vc, X, Qkv, Attn, Act, Logits, Tokens, Slot, Pos, OutIds, Count, Bar, CandV, CandI, Trace, AccO, BTrace, Part;
        public long LayerElems;
        public int L, H, I, V, Nh, Nkv, Hd, MaxCtx, Window;
        public float Eps, Scale;
        public int Flags;
    }

    /// <summary>
    /// Variants of the persistent kernel (MkArgs.flags in llama.cu): 1 = one-pass attention (online softmax, all loads
    /// of a round in flight), 2 = blocks without an attention head pull the o-projection weights into L2 meanwhile,
    /// 4 = the attention blocks pull their cached k/v into L2 during the q/k/v phase, 8 = RMSNorm weights and the
    /// residual of each x += row loaded early, 16 = (with 1) attention and the o projection in one phase split over the
    /// heads (one grid barrier fewer per layer), 64 = a warp loads its next row group's first batch before the current
    /// group's sums and epilogue (same bits), 128 = gate/up and down in one phase: each block takes a slice of the
    /// intermediate dimension and adds its part of the down projection to the residual with atomic adds (one grid
    /// barrier fewer per layer; where the slices fit, else the two phases), 512 = (with 16) every head's attention split
    /// over its blocks' share of the positions whatever the context (by default from 385 positions on; tests), 1024 = a
    /// block arrives at a grid barrier before its warps issue the next phase's preloads (the arriving thread's release
    /// fence would otherwise wait for those loads), 2048 = the arrival is the release add alone (no separate sc fence);
    /// 1024 and 2048 only move fences and loads (same bits), 4096 = (with 128) the fused MLP phase reads W_down from a
    /// per-block copy made at the first such decode (each block's columns contiguous; slices of whole 16-byte chunks, so
    /// other down sums than 128 alone; L x H x I x 2 bytes more device memory, made only where max(1 GiB, 5%) of the GPU's
    /// memory stays free, else the kernel runs without 4096: <see cref="DownBlockedNote"/>). The residual (MkArgs.AccO) is
    /// summed in 32.32 fixed point, so every variant gives the same bits run after run. Default 7389 (1 | 4 | 8 | 16 | 64 |
    /// 128 | 1024 | 2048 | 4096); GPUOPS_ENGINE_PERSISTENT_FLAGS overrides it.
    /// </summary>
    internal int PersistentFlags { get; set; } = int.TryParse(Environment.GetEnvironmentVariable("GPUOPS_ENGINE_PERSISTENT_FLAGS"), out var f) ? f : 7389;

    /// <summary>
    /// Blocks of the persistent kernel (at most one per multiprocessor; 0 = one per multiprocessor, the default);
    /// GPUOPS_ENGINE_GRID sets it. A change takes effect at the next batch-1 decode (the grid-barrier counts restart and
    /// the step's graph is captured again). (Measured, session 9: 128 instead of 132 blocks for the 8B shape, where
    /// every phase divides evenly, was +0.5..0.8% in the decode harness but -0.4% in the bench on the written
    /// checkpoint, so the default stays one block per multiprocessor; the bench compares both.)
    /// </summary>
    internal int PersistentGrid { get; set; } = int.TryParse(Environment.GetEnvironmentVariable("GPUOPS_ENGINE_GRID"), out var g) ? g : 0;

    /// <summary>The grid the last batch-1 persistent decode divided its work for (0: none yet).</summary>
    internal int PersistentGridInUse => _mkWorkGrid;

    /// <summary>Multiprocessors of the engine's GPU.</summary>
    internal int MultiprocessorCount => Ctx.MultiprocessorCount;

    /// <summary>Query rows per block of a prefill attention kernel: 128 for attn_prefill2, 64 for attn_prefill.</summary>
    internal static int PrefillAttentionRows(string kernel) => kernel == "attn_prefill2" ? 128 : 64;

    /// <summary>
    /// Dynamic shared memory of {kernel}_hd{hd}: two stages of a 64-key K and V tile (rows padded by 8 elements), and for
    /// attn_prefill2 the 128-row Q tile before them; the function's limit is raised to it (above the 48 KiB default).
    /// </summary>
    internal static int PrefillAttentionSharedBytes(IntPtr function, string kernel, int hd)
    {
        int bytes = (PrefillAttentionRows(kernel) == 128 ? 128 + 4 * 64 : 4 * 64) * (hd + 8) * 2;
        Check(cuFuncSetAttribute(function, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes), $"cuFuncSetAttribute({kernel})");
        return bytes;
    }

    /// <summary>A decode GEMV over N rows in groups of R: at most 8 blocks of 4 warps per multiprocessor, warps striding over the groups.</summary>
    private void Gemv(string name, int n, int r, ulong w, ulong bias, int k, ulong input, ulong gamma, ulong sumIn, ulong y, ulong sumOut) =>
        K(name, G(GemvBlocks(n, r)), 128, 0, w, bias, n, k, input, gamma, sumIn, Eps, y, sumOut);

    /// <summary>Most GEMV blocks per multiprocessor (the batch-1 sum-of-squares slots hold that many partials).</summary>
    internal const int MaxGemvBlocksPerSm = 32;

    private long GemvBlocks(int n, int r) => Math.Min(((n + r - 1) / r + 3) / 4, (long)Ctx.MultiprocessorCount * Math.Clamp(GemvBlocksPerSm, 1, MaxGemvBlocksPerSm));

    /// <summary>Blocks of the decode GEMVs per multiprocessor (GPUOPS_GEMV_BLOCKS_PER_SM, default 8).</summary>
    internal int GemvBlocksPerSm { get; set; } = int.TryParse(Environment.GetEnvironmentVariable("GPUOPS_GEMV_BLOCKS_PER_SM"), out var b) && b > 0 ? b : 8;

    /// <summary>
    /// The tensor-core prefill attention kernel: attn_prefill2 (128 query rows per block, two m16 tiles per warp, Q in
    /// shared memory) or attn_prefill (64 rows, Q in registers); GPUOPS_ENGINE_ATTN names one.
    /// </summary>
    internal string PrefillAttentionKernel { get; set; } = Environment.GetEnvironmentVariable("GPUOPS_ENGINE_ATTN") is "attn_prefill" or "attn_prefill2"
        ? Environment.GetEnvironmentVariable("GPUOPS_ENGINE_ATTN")!
        : "attn_prefill2";

    /// <summary>
    /// For benchmarks: one batch-1 decode GEMV ("qkv", "o", "gateup", "down", "lmhead") alone, <paramref name="reps"/> times
    /// over successive layers' weights (so nothing comes from L2); returns (ms per launch, weight bytes per launch).
    /// </summary>
    internal (double Ms, long Bytes) TimeGemv(string which, int reps)
    {
        using var cache = (CudaKvCache)CreateCache(1, 64);
        var ws = cache.Graph(1).Ws;
        Ctx.Bind();
        Check(cuMemsetD32Async(ws.Ints, 0, (nuint)(4 * ws.Tokens), Ctx.Stream), "memset");
        Check(cuMemsetD8Async(ws.Attn, 0x3C, (nuint)((long)QDim * 2), Ctx.Stream), "memset");
        Check(cuMemsetD8Async(ws.Act, 0x3C, (nuint)((long)I * 2), Ctx.Stream), "memset");
        K("embed", G(1), 256, 0, ws.TokenIds, Embedding, ws.X, ws.SumSq, H);
        Action<int> launch = which switch
        {
            "qkv" => l => K("gemv_qkv_b1_n1_r2", G(GemvBlocks(QkvDim, 2)), 128, 0, Layers[l].Wqkv, Layers[l].Bqkv, QkvDim, H, ws.X, Layers[l].AttnNorm, ws.SumSq, Eps,
                ws.Qkv, 0UL, ws.SlotIds, ws.Positions, InvFreq, cache.Keys(l), cache.Values(l), Nh, Nkv, Hd, cache.MaxContext),
            "o" => l => Gemv("gemv_b1_n0_e1_r1", H, 1, Layers[l].Wo, Layers[l].Bo, QDim, ws.Attn, 0UL, 0UL, ws.Logits, 0UL),
            "gateup" => l => Gemv("gemv_b1_n1_e2_r2", 2 * I, 2, Layers[l].WGateUp, Layers[l].BGateUp, H, ws.X, Layers[l].MlpNorm, ws.SumSq, ws.Act, 0UL),
            "down" => l => Gemv("gemv_b1_n0_e1_r1", H, 1, Layers[l].WDown, Layers[l].BDown, I, ws.Act, 0UL, 0UL, ws.Logits, 0UL),
            _ => _ => Gemv("gemv_b1_n1_e3_r1", V, 1, Output, 0UL, H, ws.X, FinalNorm, ws.SumSq, ws.Logits, 0UL),
        };
        long bytes = which switch { "qkv" => (long)QkvDim * H, "o" => (long)H * QDim, "gateup" => 2L * I * H, "down" => (long)H * I, _ => (long)V * H } * 2;
        for (int i = 0; i < 3; i++) launch(i % L);
        using var e0 = Ctx.CreateEvent();
        using var e1 = Ctx.CreateEvent();
        e0.Record(Ctx.Stream);
        for (int i = 0; i < reps; i++) launch(i % L);
        e1.Record(Ctx.Stream);
        e1.Synchronize();
        return (CudaEvent.Elapsed(e0, e1) / reps, bytes);
    }

    /// <summary>For benchmarks: registers and local (spill) bytes per thread of the named engine kernels.</summary>
    internal IReadOnlyList<(string Name, int Registers, int LocalBytes)> KernelResources(params string[] names)
    {
        var list = new List<(string, int, int)>();
        foreach (var n in names)
        {
            int regs, local;
            var f = Module.Function(n);
            Check(cuFuncGetAttribute(&regs, CU_FUNC_ATTRIBUTE_NUM_REGS, f), "cuFuncGetAttribute(NUM_REGS)");
            Check(cuFuncGetAttribute(&local, CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES, f), "cuFuncGetAttribute(LOCAL_SIZE_BYTES)");
            list.Add((n, regs, local));
        }

        return list;
    }

    /// <summary>For benchmarks only: leave a prefill stage out ("attention" or "gemm") to see its share of the time.</summary>
    internal string? SkipStage { get; set; }

    private Workspace Scratch(int tokens, int rows)
    {
        if (_scratch is { } w && w.Tokens >= tokens && w.Rows >= rows) return w;
        Ctx.Synchronize();
        _scratch?.Dispose();
        _scratch = null;
        int t = Math.Max(tokens, _scratch?.Tokens ?? 0), r = Math.Max(rows, 1);
        _scratch = new Workspace(this, Math.Max(t, 16), Math.Max(r, 16));
        return _scratch;
    }

    // ------------------------------------------------------------------ forward

    public float[][] Forward(IKvCache cache, IReadOnlyList<SequenceChunk> chunks, bool allLogits, CancellationToken cancellationToken = default) =>
        Run(cache, chunks, allLogits, argmax: false, cancellationToken).Logits!;

    public int[] ForwardArgMax(IKvCache cache, IReadOnlyList<SequenceChunk> chunks, CancellationToken cancellationToken = default) =>
        Run(cache, chunks, false, argmax: true, cancellationToken).Ids!;

    private (float[][]? Logits, int[]? Ids) Run(IKvCache kv, IReadOnlyList<SequenceChunk> chunks, bool allLogits, bool argmax, CancellationToken ct)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var cache = kv as CudaKvCache ?? throw GpuOpsException.InvalidArgument("KvCacheMismatch", "This KV cache belongs to another engine.");
        if (!ReferenceEquals(cache.Engine, this)) throw GpuOpsException.InvalidArgument("KvCacheMismatch", "This KV cache belongs to another engine.");
        ct.ThrowIfCancellationRequested();
        int T = SequenceChunk.Validate(chunks, cache, V);

        if (T == 0) return (new float[0][], Array.Empty<int>());
        Ctx.Bind();
        bool decode = chunks.All(ch => ch.Tokens.Length == 1) && T <= CudaKvCache.MaxGraphBatch;
        // (a decode graph's workspace holds exactly T tokens, so ids/slots/positions/counts are uploaded as one block there)
        var host = new int[4 * T];
        var rows = new List<int>();
        var spans = new List<(int Row, int Len, int Slot, int Pos)>();
        {
            int t = 0;
            foreach (var ch in chunks)
            {
                int start = cache.Length(ch.Slot);
                spans.Add((t, ch.Tokens.Length, ch.Slot, start));
                for (int j = 0; j < ch.Tokens.Length; j++, t++)
                {
                    host[t] = ch.Tokens[j];
                    host[T + t] = ch.Slot;
                    host[2 * T + t] = start + j;
                    if (allLogits || j == ch.Tokens.Length - 1) rows.Add(t);
                }
            }
        }

        int R = rows.Count;
        Workspace ws;
        if (decode)
        {
            var dg = cache.Graph(T);
            ws = dg.Ws;
            fixed (int* hp = host) Check(cuMemcpyHtoDAsync(ws.Ints, hp, (nuint)(host.Length * 4), Ctx.Stream), "cuMemcpyHtoDAsync(step)");
            LaunchDecode(cache, dg);
        }
        else
        {
            ws = Scratch(T, R);
            // the workspace may hold more tokens than this step: ids, slots and positions each go to their own region
            fixed (int* hp = host)
            {
                Check(cuMemcpyHtoDAsync(ws.TokenIds, hp, (nuint)(T * 4), Ctx.Stream), "cuMemcpyHtoDAsync(ids)");
                Check(cuMemcpyHtoDAsync(ws.SlotIds, hp + T, (nuint)(T * 4), Ctx.Stream), "cuMemcpyHtoDAsync(slots)");
                Check(cuMemcpyHtoDAsync(ws.Positions, hp + 2 * T, (nuint)(T * 4), Ctx.Stream), "cuMemcpyHtoDAsync(positions)");
            }

            var rowArr = rows.ToArray();
            fixed (int* rp = rowArr) Check(cuMemcpyHtoDAsync(ws.RowIds, rp, (nuint)(rowArr.Length * 4), Ctx.Stream), "cuMemcpyHtoDAsync(rows)");
            Enqueue(ws, cache, T, spans, R, ws.RowIds, gemv: false);
            if (argmax) K("argmax_rows", G(R), 1024, 0, ws.Logits, V, R, ws.TokenIds, ws.Positions, 0UL, 0UL, 0);
        }

        foreach (var ch in chunks) cache.Advance(ch.Slot, ch.Tokens.Length);
        if (argmax)
        {
            var ids = new int[R];
            fixed (int* ip = ids) Check(cuMemcpyDtoHAsync(ip, ws.TokenIds, (nuint)(R * 4), Ctx.Stream), "cuMemcpyDtoHAsync(ids)");
            Ctx.Synchronize();
            return (null, ids);
        }

        var all = new float[(long)R * V];
        fixed (float* lp = all) Check(cuMemcpyDtoHAsync(lp, ws.Logits, (nuint)((long)R * V * 4), Ctx.Stream), "cuMemcpyDtoHAsync(logits)");
        Ctx.Synchronize();
        var result = new float[chunks.Count][];
        int rr = 0;
        for (int c = 0; c < chunks.Count; c++)
        {
            int n = allLogits ? chunks[c].Tokens.Length : 1;
            result[c] = new float[(long)n * V];
            Array.Copy(all, (long)rr * V, result[c], 0, (long)n * V);
            rr += n;
        }

        return (result, null);
    }

    /// <summary>One decode step of a graph's B sequences (ids/slots/positions in its state buffer): eager the first time, then captured and replayed.</summary>
    private void LaunchDecode(CudaKvCache cache, DecodeGraph dg)
    {
        var ws = dg.Ws;
        bool gemv = dg.B <= 4;
        bool persistent = dg.B == 1 && PersistentDecode && PreparePersistent(cache, dg);
        void Body()
        {
            Enqueue(ws, cache, dg.B, null, dg.B, 0UL, gemv, persistent);
            if (!persistent) K("argmax_rows", G(dg.B), 1024, 0, ws.Logits, V, dg.B, ws.TokenIds, ws.Positions, dg.Out, ws.Counts, 1);
        }

        if (dg.Graph is not null && dg.Persistent != persistent)
        {
            dg.Graph.Dispose();
            dg.Graph = null;
        }

        dg.Persistent = persistent;

        if (dg.Graph is null && dg.Runs == 0 || _profile is not null || Environment.GetEnvironmentVariable("GPUOPS_ENGINE_NO_GRAPH") == "1")
        {
            Body();
        }
        else
        {
            dg.Graph ??= Ctx.Capture(Body);
            dg.Graph.Launch();
        }

        dg.Runs++;
    }

    // ------------------------------------------------------------------ device-side greedy decoding (benchmarks)

    public DeviceDecodeResult DecodeGreedy(IKvCache kv, int[] next, int steps, CancellationToken cancellationToken = default)
    {
        var cache = kv as CudaKvCache ?? throw GpuOpsException.InvalidArgument("KvCacheMismatch", "This KV cache belongs to another engine.");
        int B = next.Length;
        if (B < 1 || B > cache.Slots || B > CudaKvCache.MaxGraphBatch)
            throw GpuOpsException.InvalidArgument("InvalidBatch", $"Device decoding takes 1..{Math.Min(cache.Slots, CudaKvCache.MaxGraphBatch)} sequences, got {B}.");
        for (int b = 0; b < B; b++)
            if (cache.Length(b) + steps > cache.MaxContext)
                throw new GpuOpsException("ContextFull", ErrorCategory.LimitsExceeded, $"Slot {b} would need {cache.Length(b) + steps} positions; the context holds {cache.MaxContext}.", b);
        Ctx.Bind();
        var dg = cache.Graph(B);
        var host = new int[4 * B];
        for (int b = 0; b < B; b++)
        {
            host[b] = next[b];
            host[B + b] = b;
            host[2 * B + b] = cache.Length(b);
        }

        fixed (int* hp = host) Check(cuMemcpyHtoDAsync(dg.Ws.Ints, hp, (nuint)(host.Length * 4), Ctx.Stream), "cuMemcpyHtoDAsync(state)");
        // make sure the graph exists before timing (its first run is eager, the second captures it)
        using var start = Ctx.CreateEvent();
        using var stop = Ctx.CreateEvent();
        Ctx.Synchronize();
        var energy = EnergyWindow.TryStartByUuid(Ctx.Uuid);   // (by UUID: NVML may number the GPUs otherwise than CUDA)
        start.Record(Ctx.Stream);
        for (int i = 0; i < steps; i++)
        {
            if ((i & 63) == 63) cancellationToken.ThrowIfCancellationRequested();
            LaunchDecode(cache, dg);
        }

        stop.Record(Ctx.Stream);
        stop.Synchronize();
        double? joules = null;
        if (energy is not null)
        {
            try
            {
                joules = energy.Stop().Sum(r => r.Joules);
            }
            finally
            {
                energy.Dispose();
            }
        }

        double secs = CudaEvent.Elapsed(start, stop) / 1000.0;
        for (int b = 0; b < B; b++) cache.Advance(b, steps);
        var outIds = new int[steps * B];
        fixed (int* op = outIds) Check(cuMemcpyDtoH(op, dg.Out, (nuint)(outIds.Length * 4)), "cuMemcpyDtoH(ids)");
        var ids = new int[steps][];
        for (int i = 0; i < steps; i++) ids[i] = outIds.AsSpan(i * B, B).ToArray();
        return new DeviceDecodeResult(ids, secs, joules);
    }

    public double MeasureCopyBytesPerSecond(long bytes)
    {
        Ctx.Bind();
        bytes = Math.Max(1 << 20, bytes / 2 * 2);
        ulong a = Ctx.Allocate(bytes, "copy benchmark"), b = Ctx.Allocate(bytes, "copy benchmark");
        try
        {
            Check(cuMemsetD8Async(a, 1, (nuint)bytes, Ctx.Stream), "cuMemsetD8Async");
            using var e0 = Ctx.CreateEvent();
            using var e1 = Ctx.CreateEvent();
            var times = new List<float>();
            for (int i = 0; i < 13; i++)
            {
                e0.Record(Ctx.Stream);
                Check(cuMemcpyDtoDAsync(b, a, (nuint)bytes, Ctx.Stream), "cuMemcpyDtoDAsync");
                e1.Record(Ctx.Stream);
                e1.Synchronize();
                if (i >= 3) times.Add(CudaEvent.Elapsed(e0, e1));
            }

            times.Sort();
            return 2.0 * bytes / (times[times.Count / 2] / 1000.0);
        }
        finally
        {
            Ctx.Free(a);
            Ctx.Free(b);
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            Ctx.Synchronize();
            _scratch?.Dispose();
            Gemm.Dispose();
            Module.Dispose();
            foreach (var m in _mkBuilds.Values) m.Dispose();
            Ctx.Free(InvFreq);
            Ctx.Free(LayerTable);
            if (_downBlocked != 0) Ctx.Free(_downBlocked);
            Ctx.Free(_arena);
        }
        finally
        {
            Ctx.Dispose();
        }
    }
}

/// <summary>The CUDA engine's KV cache: bf16 [layers][slots][kvHeads][maxContext][headDim] keys and values, plus each batch size's decode graph.</summary>
public sealed class CudaKvCache : IKvCache
{
    public const int MaxGraphBatch = 32;
    private readonly int[] _lengths;
    private readonly ulong _k, _v;
    private readonly long _layerBytes;
    private readonly Dictionary<int, CudaLlamaEngine.DecodeGraph> _graphs = new();
    private bool _disposed;

    internal CudaKvCache(CudaLlamaEngine engine, int slots, int maxContext)
    {
        if (slots <= 0) throw GpuOpsException.InvalidArgument("KvCacheSlots", $"A KV cache needs at least one slot, got {slots}.");
        if (maxContext <= 0) throw GpuOpsException.InvalidArgument("KvCacheContext", $"MaxContext must be positive, got {maxContext}.");
        Engine = engine;
        Slots = slots;
        MaxContext = maxContext;
        _layerBytes = (long)slots * engine.KvDim * maxContext * 2;
        Bytes = 2 * _layerBytes * engine.L;
        _k = engine.Ctx.Allocate(_layerBytes * engine.L, "the KV cache (keys)");
        try
        {
            _v = engine.Ctx.Allocate(_layerBytes * engine.L, "the KV cache (values)");
        }
        catch
        {
            engine.Ctx.Free(_k);
            throw;
        }

        _lengths = new int[slots];
    }

    internal CudaLlamaEngine Engine { get; }

    public int Slots { get; }

    public int MaxContext { get; }

    public long Bytes { get; }

    internal ulong Keys(int layer) => _k + (ulong)(layer * _layerBytes);

    internal ulong Values(int layer) => _v + (ulong)(layer * _layerBytes);

    public int Length(int slot) => _lengths[slot];

    public void Reset(int slot) => _lengths[slot] = 0;

    public void ResetAll() => Array.Clear(_lengths);

    internal void Advance(int slot, int n) => _lengths[slot] += n;

    internal CudaLlamaEngine.DecodeGraph Graph(int b)
    {
        if (_graphs.TryGetValue(b, out var g)) return g;
        var ws = new CudaLlamaEngine.Workspace(Engine, b, b);
        int capacity = MaxContext + 1;
        ulong outBuf;
        try
        {
            outBuf = Engine.Ctx.Allocate((long)capacity * b * 4, "decode output ids");
        }
        catch
        {
            ws.Dispose();
            throw;
        }

        g = new CudaLlamaEngine.DecodeGraph { B = b, Ws = ws, Out = outBuf, Capacity = capacity };
        _graphs[b] = g;
        return g;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Engine.Ctx.Synchronize();
        foreach (var g in _graphs.Values)
        {
            g.Dispose();
            Engine.Ctx.Free(g.Out);
        }

        _graphs.Clear();
        Engine.Ctx.Free(_k);
        Engine.Ctx.Free(_v);
    }
}
