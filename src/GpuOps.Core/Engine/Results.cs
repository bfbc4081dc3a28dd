namespace GpuOps.Core.Engine;

/// <summary>What one prompt produced (Invoke-GpuInference / gpuops generate). Plain data.</summary>
public sealed record GpuInferenceResult(
    string Model,
    string Device,
    int Sequence,
    string Prompt,
    string Text,
    int[] Ids,
    int[] PromptIds,
    int PromptTokens,
    int GeneratedTokens,
    string FinishReason,
    int BatchSize,
    double TimeToFirstTokenMs,
    double PrefillTokensPerSecond,
    double DecodeTokensPerSecond,
    double TotalSeconds,
    double? EnergyJoules,
    double? JoulesPerToken);

/// <summary>One new token, written as it is produced with -Stream / --stream. Plain data.</summary>
public sealed record GpuInferenceToken(int Sequence, int Index, int TokenId, string Text, bool IsLast, string? FinishReason);

/// <summary>Measure-GpuPerplexity / gpuops perplexity. <see cref="Tokens"/> is the number of scored tokens. Plain data.</summary>
public sealed record GpuPerplexityResult(
    string Model,
    string Device,
    string Path,
    int Context,
    double Ppl,
    long Tokens,
    int Windows,
    long StreamTokens,
    double NegativeLogLikelihood,
    double Seconds,
    double TokensPerSecond,
    bool Subset);

/// <summary>
/// One row of Measure-GpuInference: prefill throughput at a prompt length, or decode throughput at a batch size with
/// the bandwidth bound beside it (weight bytes read per step over the measured copy bandwidth). Plain data.
/// </summary>
public sealed record GpuInferenceBenchmark(
    string Model,
    string Device,
    string Phase,
    int PromptLength,
    int BatchSize,
    int Tokens,
    double Seconds,
    double TokensPerSecond,
    long WeightBytesPerStep,
    double? CopyBandwidthGBps,
    double? BoundTokensPerSecond,
    double? FractionOfBound,
    double? TimeToFirstTokenMs,
    double? JoulesPerToken,
    string? Note);
