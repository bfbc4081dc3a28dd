using System.Collections;
using System.Management.Automation;
using GpuOps.Core.Engine;

namespace GpuOps.PowerShell;

/// <summary>
/// -Model given as text: a file or folder of that name (against the current PowerShell location) is a model path;
/// otherwise the name of the one model loaded in this session with that name (Get-GpuModel's Name) is that loaded
/// model. So a result's Model column piped on (Invoke-GpuInference ... | ConvertFrom-GpuToken) names the model that
/// made it, not a folder of that name under the current location. A file or folder object (Get-Item, Get-ChildItem)
/// is that model path. Anything else goes to PowerShell's own conversion (a path that the command then reports as
/// missing).
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class ModelTransformationAttribute : ArgumentTransformationAttribute
{
    public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
    {
        var v = inputData is PSObject p ? p.BaseObject : inputData;
        if (v is string s) return One(engineIntrinsics, s) ?? inputData;
        if (v is FileSystemInfo fsi) return new GpuModelHandle(fsi.FullName);
        if (v is IList list && v is not string)
        {
            var items = new object[list.Count];
            for (int i = 0; i < items.Length; i++)
            {
                var e = list[i] is PSObject pe ? pe.BaseObject : list[i];
                items[i] = e switch
                {
                    string es => One(engineIntrinsics, es),
                    FileSystemInfo ef => new GpuModelHandle(ef.FullName),
                    _ => null,
                } ?? list[i]!;
            }

            return items;
        }

        return inputData;
    }

    private static GpuModelHandle? One(EngineIntrinsics engine, string text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        try
        {
            var full = engine.SessionState.Path.GetUnresolvedProviderPathFromPSPath(text);
            if (File.Exists(full) || Directory.Exists(full)) return new GpuModelHandle(text);
        }
        catch (Exception ex) when (ex is ProviderNotFoundException or System.Management.Automation.DriveNotFoundException or NotSupportedException or ArgumentException or PSInvalidOperationException)
        {
            // (not a file-system path: maybe a loaded model's name)
        }

        var named = GpuModelHandle.All.Where(h => string.Equals(h.Name, text, StringComparison.OrdinalIgnoreCase)).Take(2).ToList();
        return named.Count == 1 ? named[0] : null;
    }
}
