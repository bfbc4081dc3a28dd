namespace GpuOps.Cli;

public static class Program
{
    public static int Main(string[] args) => GpuOpsCli.Run(args, Console.Out, Console.Error);
}
