using System.Diagnostics;
using GpuOps.Core.Hosting;
using GpuOps.Cuda.Driver;
using static GpuOps.Cuda.Driver.CudaApi;

namespace GpuOps.Cuda.Engine;

/// <summary>One piece of the device arena: <see cref="Length"/> bytes from host address <see cref="Source"/> to arena offset <see cref="Destination"/>.</summary>
public readonly record struct UploadSegment(IntPtr Source, long Length, long Destination);

/// <summary>How an upload went (plain data).</summary>
public sealed record UploadStats(long Bytes, double Seconds, int Chunks, int StagingBuffers, long ChunkBytes, int Threads)
{
    public double GigabytesPerSecond => Seconds > 0 ? Bytes / Seconds / 1e9 : 0;
}

/// <summary>
/// Streams host memory (typically a memory-mapped safetensors file, page cache warm) into one device allocation through
/// pinned staging buffers: the arena is cut into chunks; several threads copy the segments that fall into chunk i into
/// pinned buffer i mod N (memcpy in parallel) while cuMemcpyHtoDAsync of the previous chunks runs; an event per buffer
/// says when it may be refilled. Segments may be any size (e.g. single rows, to interleave gate/up rows on the way).
/// </summary>
public static unsafe class CudaWeightUpload
{
    public static UploadStats Upload(CudaContext ctx, ulong arena, long arenaBytes, UploadSegment[] segments,
        Action<double, string>? progress = null, CancellationToken cancellationToken = default,
        long chunkBytes = 64L << 20, int buffers = 3, int threads = 0)
    {
        Array.Sort(segments, (a, b) => a.Destination.CompareTo(b.Destination));
        var ends = new long[segments.Length];
        for (int i = 0; i < segments.Length; i++)
        {
            var s = segments[i];
            if (s.Destination < 0 || s.Length < 0 || s.Destination + s.Length > arenaBytes)
                throw new GpuOpsException("UploadOutOfRange", ErrorCategory.InvalidArgument, $"Upload segment {i} ({s.Destination}+{s.Length}) lies outside the {arenaBytes}-byte arena.");
            ends[i] = s.Destination + s.Length;
        }

        if (threads <= 0) threads = Math.Clamp(Environment.ProcessorCount, 1, 16);
        chunkBytes = Math.Max(1 << 20, Math.Min(chunkBytes, Math.Max(1 << 20, arenaBytes)));
        ctx.Bind();
        var pinned = new PinnedBuffer[buffers];
        var events = new CudaEvent[buffers];
        var used = new bool[buffers];
        var sw = Stopwatch.StartNew();
        int chunks = (int)((arenaBytes + chunkBytes - 1) / chunkBytes);
        try
        {
            for (int b = 0; b < buffers; b++)
            {
                pinned[b] = new PinnedBuffer(ctx, chunkBytes);
                events[b] = ctx.CreateEvent(timing: false);
            }

            var po = new ParallelOptions { MaxDegreeOfParallelism = threads, CancellationToken = cancellationToken };
            for (int c = 0; c < chunks; c++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int b = c % buffers;
                long lo = c * chunkBytes, hi = Math.Min(arenaBytes, lo + chunkBytes);
                if (used[b]) events[b].Synchronize();
                byte* dst = (byte*)pinned[b].Pointer;
                int parts = threads;
                Parallel.For(0, parts, po, p =>
                {
                    long a = lo + (hi - lo) * p / parts, e = lo + (hi - lo) * (p + 1) / parts;
                    if (a >= e) return;
                    // first segment whose end is past a
                    int i = LowerBound(ends, a + 1);
                    for (; i < segments.Length && segments[i].Destination < e; i++)
                    {
                        var s = segments[i];
                        long from = Math.Max(a, s.Destination), to = Math.Min(e, s.Destination + s.Length);
                        if (to <= from) continue;
                        Buffer.MemoryCopy((byte*)s.Source + (from - s.Destination), dst + (from - lo), to - from, to - from);
                    }
                });
                ctx.Bind();
                Check(cuMemcpyHtoDAsync(arena + (ulong)lo, dst, (nuint)(hi - lo), ctx.Stream), "cuMemcpyHtoDAsync_v2(weights)");
                events[b].Record(ctx.Stream);
                used[b] = true;
                progress?.Invoke((c + 1) / (double)chunks, $"{hi / 1e9:F2} of {arenaBytes / 1e9:F2} GB");
            }

            ctx.Synchronize();
            return new UploadStats(arenaBytes, sw.Elapsed.TotalSeconds, chunks, buffers, chunkBytes, threads);
        }
        finally
        {
            try
            {
                ctx.Synchronize();
            }
            catch (CudaException)
            {
                // the original error is more useful
            }

            foreach (var e in events) e?.Dispose();
            foreach (var p in pinned) p?.Dispose();
        }
    }

    /// <summary>The first index whose value is at least <paramref name="v"/>.</summary>
    private static int LowerBound(long[] a, long v)
    {
        int lo = 0, hi = a.Length;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (a[mid] < v) lo = mid + 1;
            else hi = mid;
        }

        return lo;
    }
}
