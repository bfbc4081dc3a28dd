using GpuOps.PowerShell.Help;

// gpuops-help <cmdlet assembly> <its XML documentation file> <PowerShell reference assembly> <output MAML file>
if (args.Length != 4)
{
    Console.Error.WriteLine("usage: GpuOps.PowerShell.Help <cmdlet assembly> <xml doc> <System.Management.Automation reference> <output .xml>");
    return 2;
}

try
{
    var help = MamlHelp.Read(args[0], args[1], args[2]);
    var missing = help.Where(c => c.Synopsis.Length == 0).Select(c => c.Name).ToList();
    if (missing.Count > 0) Console.Error.WriteLine($"warning: no synopsis for {string.Join(", ", missing)}");
    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(args[3]))!);
    var tmp = args[3] + ".tmp";
    MamlHelp.ToMaml(help).Save(tmp);
    File.Move(tmp, args[3], overwrite: true);
    Console.WriteLine($"MAML help for {help.Count} cmdlets: {args[3]}");
    return 0;
}
catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Xml.XmlException or BadImageFormatException or FileNotFoundException)
{
    Console.Error.WriteLine($"error: {ex.Message}");
    return 1;
}
