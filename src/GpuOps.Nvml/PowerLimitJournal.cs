using System.Text;
using System.Text.Json;
using GpuOps.Core.Hosting;

namespace GpuOps.Nvml;

/// <summary>What the journal remembers about one GPU: its power limit before GpuOps first changed it.</summary>
public sealed record PowerLimitJournalEntry(
    string Uuid,
    int GpuIndex,
    string Name,
    uint OriginalMilliwatts,
    uint? DefaultMilliwatts,
    DateTimeOffset WrittenAt,
    int ProcessId,
    string HostName,
    string Reason);

/// <summary>
/// The power-limit journal: one JSON file per GPU UUID, written atomically (temp file in the same folder, flushed
/// to disk, then renamed over the old one) BEFORE the first change, so <c>Restore-GpuPowerLimit</c> can put back
/// the original limit in a later process, after a crash or a kill. Folder: GPUOPS_STATE_DIR if set, otherwise
/// GpuOps/power-journal under the user's local application data.
/// </summary>
public static class PowerLimitJournal
{
    public const string StateDirVariable = "GPUOPS_STATE_DIR";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static string Directory
    {
        get
        {
            var env = Environment.GetEnvironmentVariable(StateDirVariable);
            if (!string.IsNullOrWhiteSpace(env)) return Path.Combine(env, "power-journal");
            var local = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify);
            if (string.IsNullOrEmpty(local)) local = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share");
            return Path.Combine(local, "GpuOps", "power-journal");
        }
    }

    public static string PathFor(string uuid)
    {
        var safe = new StringBuilder();
        foreach (var ch in uuid) safe.Append(char.IsLetterOrDigit(ch) || ch == '-' ? ch : '_');
        return Path.Combine(Directory, $"power-limit-{safe}.json");
    }

    public static PowerLimitJournalEntry? Read(string uuid)
    {
        var path = PathFor(uuid);
        if (!File.Exists(path)) return null;
        try
        {
            return JsonSerializer.Deserialize<PowerLimitJournalEntry>(File.ReadAllText(path), Json);
        }
        catch (JsonException ex)
        {
            throw new GpuOpsException("JournalCorrupt", ErrorCategory.InvalidData,
                $"The power-limit journal {path} cannot be read ({ex.Message}).", path, ex,
                "Check the file; delete it if it is damaged and restore the limit with Restore-GpuPowerLimit -Default.");
        }
    }

    public static IReadOnlyList<PowerLimitJournalEntry> ReadAll()
    {
        if (!System.IO.Directory.Exists(Directory)) return [];
        var list = new List<PowerLimitJournalEntry>();
        foreach (var f in System.IO.Directory.GetFiles(Directory, "power-limit-*.json"))
        {
            try
            {
                var e = JsonSerializer.Deserialize<PowerLimitJournalEntry>(File.ReadAllText(f), Json);
                if (e is not null) list.Add(e);
            }
            catch (JsonException)
            {
            }
        }

        return list.OrderBy(e => e.GpuIndex).ToList();
    }

    /// <summary>Write (atomically) an entry unless one exists; returns the entry in force and whether it was written now.</summary>
    public static (PowerLimitJournalEntry Entry, bool Created) EnsureOriginal(PowerLimitJournalEntry candidate, bool replace = false)
    {
        var existing = Read(candidate.Uuid);
        if (existing is not null && !replace) return (existing, false);
        Write(candidate);
        return (candidate, true);
    }

    public static void Write(PowerLimitJournalEntry entry)
    {
        var dir = Directory;
        try
        {
            System.IO.Directory.CreateDirectory(dir);
            var path = PathFor(entry.Uuid);
            var tmp = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
            var bytes = JsonSerializer.SerializeToUtf8Bytes(entry, Json);
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                fs.Write(bytes);
                fs.Flush(flushToDisk: true);
            }

            File.Move(tmp, path, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new GpuOpsException("JournalWriteFailed", ErrorCategory.WriteError,
                $"Cannot write the power-limit journal in {dir} ({ex.Message}); the limit was not changed.", dir, ex,
                $"Make the folder writable or point {StateDirVariable} at a writable folder.");
        }
    }

    public static void Delete(string uuid)
    {
        var path = PathFor(uuid);
        if (File.Exists(path)) File.Delete(path);
    }
}
