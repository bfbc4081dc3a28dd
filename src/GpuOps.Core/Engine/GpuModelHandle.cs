using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.Loader;
using GpuOps.Core.Native;
using GpuOps.Core.Hosting;
using GpuOps.Core.Models;

namespace GpuOps.Core.Engine;

/// <summary>
/// A loaded model: a live object holding its weights in memory (the only non-plain-data object of the inference
/// operations). Returned by Import-GpuModel, used by Invoke-GpuInference / Measure-GpuPerplexity /
/// Measure-GpuInference, freed by Remove-GpuModel.
/// </summary>
public sealed class GpuModelHandle : IDisposable
{
    private static int _nextId;
    private static readonly ConcurrentDictionary<int, GpuModelHandle> Loaded = new();
    private IInferenceEngine? _engine;
    private readonly LlamaConfig? _config;
    private readonly ITokenizer? _tokenizer;
    private readonly GenerationDefaults? _generation;

    internal GpuModelHandle(string path, string format, string device, IInferenceEngine engine, ITokenizer tokenizer, GenerationDefaults generation)
    {
        Id = Interlocked.Increment(ref _nextId);
        Path = path;
        Name = System.IO.Path.GetFileName(path.TrimEnd('/', '\\'));
        Format = format;
        Device = device;
        _engine = engine;
        _tokenizer = tokenizer;
        _generation = generation;
        _config = engine.Config;
        DType = engine.DType;
        ParameterCount = engine.ParameterCount;
        WeightBytes = engine.WeightBytes;
        LoadedAt = DateTimeOffset.Now;
        Loaded[Id] = this;
    }

    /// <summary>
    /// A path standing for a model, not loaded (<see cref="IsPathOnly"/>). PowerShell uses this constructor to turn
    /// a path given to <c>-Model</c> into a handle; the cmdlet resolves the path against the current PowerShell
    /// location and the operation loads the model for that one command and frees it afterwards.
    /// </summary>
    public GpuModelHandle(string path)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new ArgumentException("A model path is empty.", nameof(path));
        Id = 0;   // (not a loaded model: loaded handles number 1, 2, 3... without gaps)
        Path = path;
        Name = System.IO.Path.GetFileName(path.TrimEnd('/', '\\'));
        Format = string.Empty;
        Device = "cpu";
        DType = string.Empty;
        IsPathOnly = true;
    }

    /// <summary>True for a handle that only carries a path (see <see cref="GpuModelHandle(string)"/>).</summary>
    public bool IsPathOnly { get; }

    /// <summary>Process-unique id of a loaded model's handle, from 1 in load order; 0 for a handle that only carries a path.</summary>
    public int Id { get; }

    public string Name { get; }

    public string Path { get; }

    /// <summary>"safetensors" or "gguf".</summary>
    public string Format { get; }

    /// <summary>"cpu" (or "cuda:N").</summary>
    public string Device { get; }

    /// <summary>Compute dtype of the weights in memory.</summary>
    public string DType { get; }

    public string Architecture => _config?.Architecture ?? string.Empty;

    public string ModelType => _config?.ModelType ?? string.Empty;

    public LlamaConfig Config => _config ?? throw NotLoaded();

    public long ParameterCount { get; }

    /// <summary>Bytes the weights take in memory.</summary>
    public long WeightBytes { get; }

    /// <summary>
    /// Bytes the loaded model holds now beside its weights (read live; 0 once removed): activation workspaces and, on
    /// CUDA, the batch-1 decode kernel's per-block copy of W_down, made by the first decode that uses it (for a
    /// Llama-3-8B shape 3.5 GiB; where memory is short it is not made and decode reads W_down in place).
    /// </summary>
    public long WorkspaceBytes => _engine?.WorkspaceBytes ?? 0;

    public DateTimeOffset LoadedAt { get; }

    /// <summary>False once Remove-GpuModel has freed it.</summary>
    public bool IsLoaded => _engine is not null;

    /// <summary>The model's tokenizer; a clear error once the handle has been removed, as for <see cref="Engine"/>.</summary>
    public ITokenizer Tokenizer => _engine is not null && _tokenizer is not null ? _tokenizer : throw NotLoaded();

    public GenerationDefaults Generation => _generation ?? throw NotLoaded();

    /// <summary>Handles loaded in this process and not yet removed.</summary>
    public static IReadOnlyList<GpuModelHandle> All => Loaded.Values.OrderBy(h => h.Id).ToList();

    /// <summary>The engine; a clear error once the handle has been removed.</summary>
    public IInferenceEngine Engine => _engine ?? throw NotLoaded();

    private GpuOpsException NotLoaded() => IsPathOnly
        ? new GpuOpsException("ModelNotLoaded", ErrorCategory.InvalidOperation, $"'{Path}' is a model path, not a loaded model.", this,
            recommendedAction: "Load it with Import-GpuModel.")
        : new GpuOpsException("ModelRemoved", ErrorCategory.InvalidOperation, $"Model '{Name}' (handle {Id}) has been removed.", this,
            recommendedAction: "Import it again with Import-GpuModel.");

    public void Dispose()
    {
        var e = Interlocked.Exchange(ref _engine, null);
        e?.Dispose();
        Loaded.TryRemove(Id, out _);
    }

    public override string ToString() => IsPathOnly ? Path : $"{Name} ({Device}, {DType}, handle {Id})";

    /// <summary>
    /// Parse "cpu", "cuda", "cuda:N" or "auto" (CUDA when a GPU and the CUDA engine are present, otherwise the CPU);
    /// anything else is an argument error. Returns (kind, index).
    /// </summary>
    public static (string Kind, int Index) ParseDevice(string? device)
    {
        string d = (device ?? "cpu").Trim().ToLowerInvariant();
        if (d is "auto") return (CudaEngineAvailable ? "cuda" : "cpu", 0);
        if (d is "cpu") return ("cpu", 0);
        if (d is "cuda" or "gpu") return ("cuda", 0);
        if ((d.StartsWith("cuda:", StringComparison.Ordinal) || d.StartsWith("gpu:", StringComparison.Ordinal))
            && int.TryParse(d[(d.IndexOf(':') + 1)..], out int i) && i >= 0) return ("cuda", i);
        throw GpuOpsException.InvalidArgument("InvalidDevice", $"Device '{device}' is not one of cpu, cuda, cuda:N.", device);
    }

    /// <summary>
    /// Throws the errors <see cref="Load"/> would give for an unsupported device or dtype (before any path is read):
    /// cuda needs GpuOps.Cuda and a GPU and computes in bfloat16; the CPU computes in float32. Returns (kind, index).
    /// </summary>
    public static (string Kind, int Index) CheckDevice(string? device, string? dtype)
    {
        var (kind, index) = ParseDevice(device);
        if (kind == "cuda")
        {
            if (CudaFactory.Value is null)
            {
                throw new GpuOpsException("CudaEngineNotAvailable", ErrorCategory.NotImplemented,
                    $"Inference on cuda:{index} needs GpuOps.Cuda, which this build does not have; the CPU engine is there.", device,
                    recommendedAction: "Use -Device cpu (CLI: --device cpu).");
            }

            if (!NativeLibraries.IsAvailable(NativeLibraryKind.CudaDriver) || NativeProbe.CudaDevices(out _).Count == 0)
            {
                throw new GpuOpsException("CudaEngineNotAvailable", ErrorCategory.ResourceUnavailable,
                    $"Inference on cuda:{index} needs an NVIDIA GPU and its driver, and this machine has none.", device,
                    recommendedAction: "Use -Device cpu (CLI: --device cpu), or run on a machine with a CUDA GPU.");
            }

            string cdt = (dtype ?? "auto").Trim().ToLowerInvariant();
            if (cdt is not ("auto" or "bfloat16" or "bf16"))
            {
                throw new GpuOpsException("DTypeNotSupported", ErrorCategory.InvalidArgument,
                    $"The CUDA engine computes in bfloat16; DType '{dtype}' is not supported on the GPU.", dtype,
                    recommendedAction: "Use -DType bfloat16 or auto.");
            }

            return (kind, index);
        }

        string dt = (dtype ?? "auto").Trim().ToLowerInvariant();
        if (dt is not ("auto" or "float32" or "f32" or "fp32"))
        {
            throw new GpuOpsException("DTypeNotSupported", ErrorCategory.InvalidArgument,
                $"The CPU engine computes in float32; DType '{dtype}' is not supported on the CPU.", dtype,
                recommendedAction: "Use -DType float32 or auto.");
        }

        return (kind, index);
    }

    /// <summary>Whether this build has the CUDA inference engine (GpuOps.Cuda) and the driver sees a GPU.</summary>
    public static bool CudaEngineAvailable => CudaFactory.Value is not null && NativeProbe.CudaDevices(out _).Count > 0;

    /// <summary>GpuOps.Cuda's CudaEngineFactory.Create(ModelBundle, int device, Action&lt;double,string&gt;?, CancellationToken), found by reflection (Core does not reference it).</summary>
    private static readonly Lazy<MethodInfo?> CudaFactory = new(() =>
    {
        try
        {
            var alc = AssemblyLoadContext.GetLoadContext(typeof(GpuModelHandle).Assembly) ?? AssemblyLoadContext.Default;
            var asm = alc.LoadFromAssemblyName(new AssemblyName("GpuOps.Cuda"));
            return asm.GetType("GpuOps.Cuda.Engine.CudaEngineFactory")?.GetMethod("Create", BindingFlags.Public | BindingFlags.Static);
        }
        catch (Exception ex) when (ex is FileNotFoundException or FileLoadException or BadImageFormatException)
        {
            return null;
        }
    });

    /// <summary>
    /// Load a model directory or .gguf file onto a device. <paramref name="progress"/> gets (fraction, tensor name).
    /// </summary>
    public static GpuModelHandle Load(string path, string? device, string? dtype, Action<double, string>? progress, CancellationToken cancellationToken)
    {
        var p = LoadParts(path, device, dtype, progress, cancellationToken);
        return new GpuModelHandle(p.Path, p.Format, p.Device, p.Engine, p.Tokenizer, p.Generation);
    }

    private static (string Path, string Format, string Device, IInferenceEngine Engine, ITokenizer Tokenizer, GenerationDefaults Generation) LoadParts(
        string path, string? device, string? dtype, Action<double, string>? progress, CancellationToken cancellationToken)
    {
        var (kind, index) = CheckDevice(device, dtype);
        if (kind == "cuda")
        {
            var cb = ModelFiles.Open(path);
            try
            {
                var engine = (IInferenceEngine)CudaFactory.Value!.Invoke(null, new object?[] { cb, index, progress, cancellationToken })!;
                return (cb.Path, cb.Format, engine.Device, engine, cb.Tokenizer, cb.Generation);
            }
            catch (TargetInvocationException tie) when (tie.InnerException is not null)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(tie.InnerException).Throw();
                throw;
            }
            finally
            {
                cb.Dispose();
            }
        }

        using var bundle = ModelFiles.Open(path);
        var weights = LlamaWeights.Load(bundle.Config, bundle.Weights, progress, cancellationToken);
        return (bundle.Path, bundle.Format, "cpu", new LlamaCpuEngine(weights), bundle.Tokenizer, bundle.Generation);
    }
}
