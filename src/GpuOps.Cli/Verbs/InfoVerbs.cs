using System.CommandLine;
using GpuOps.Core.Operations;

namespace GpuOps.Cli.Verbs;

/// <summary><c>gpuops info</c>: versions, native libraries found, GPUs.</summary>
public sealed class InfoVerbs : ICliVerbProvider
{
    public void Register(RootCommand root, CliContext context)
    {
        var info = new Command("info", "Show GpuOps' version, the NVIDIA libraries found and the GPUs the CUDA driver sees.");
        info.SetAction((parse, ct) => Task.FromResult(context.Run(parse, new GetInfoOperation(), ct)));
        root.Subcommands.Add(info);
    }
}
