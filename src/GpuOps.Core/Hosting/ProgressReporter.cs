using System.Diagnostics;

namespace GpuOps.Core.Hosting;

/// <summary>
/// Throttled progress: forwards at most one update per <see cref="MinInterval"/> (default 200 ms), plus
/// the first one and the completion, so hot loops can report every iteration for free.
/// </summary>
public sealed class ProgressReporter
{
    private readonly IOperationHost _host;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private long _lastTicks = long.MinValue;
    private bool _started;

    public ProgressReporter(IOperationHost host, int activityId, string activity, TimeSpan? minInterval = null, int parentActivityId = -1)
    {
        _host = host;
        ActivityId = activityId;
        Activity = activity;
        MinInterval = minInterval ?? TimeSpan.FromMilliseconds(200);
        ParentActivityId = parentActivityId;
    }

    public int ActivityId { get; }
    public string Activity { get; }
    public TimeSpan MinInterval { get; }
    public int ParentActivityId { get; }
    public int Forwarded { get; private set; }

    /// <summary>Report progress; <paramref name="fraction"/> in [0,1] or negative when unknown.</summary>
    public void Report(double fraction, string status, string? currentOperation = null, bool force = false)
    {
        long now = _clock.ElapsedTicks;
        if (!force && _started && now - _lastTicks < MinInterval.TotalSeconds * Stopwatch.Frequency)
        {
            return;
        }

        _started = true;
        _lastTicks = now;
        int percent = fraction < 0 ? -1 : (int)Math.Clamp(Math.Floor(fraction * 100), 0, 100);
        int remaining = -1;
        if (fraction > 0.01 && fraction < 1)
        {
            double elapsed = _clock.Elapsed.TotalSeconds;
            remaining = (int)Math.Ceiling(elapsed / fraction * (1 - fraction));
        }

        Forwarded++;
        _host.WriteProgress(new ProgressInfo(ActivityId, Activity, status, percent, remaining, currentOperation, false, ParentActivityId));
    }

    public void Complete(string status = "Done")
    {
        Forwarded++;
        _host.WriteProgress(new ProgressInfo(ActivityId, Activity, status, 100, 0, null, true, ParentActivityId));
    }
}
