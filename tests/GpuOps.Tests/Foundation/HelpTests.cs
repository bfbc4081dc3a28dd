using System.Text.RegularExpressions;
using System.Xml.Linq;
using GpuOps.PowerShell.Help;
using GpuOps.Tests.Support;
using Xunit;

namespace GpuOps.Tests.Foundation;

/// <summary>Get-Help's MAML file, written by the build from the cmdlet metadata and the doc comments.</summary>
[Trait("Category", "Module")]
public class HelpTests
{
    private static readonly XNamespace Maml = "http://schemas.microsoft.com/maml/2004/10";
    private static readonly XNamespace Command = "http://schemas.microsoft.com/maml/dev/command/2004/10";
    private static readonly XNamespace Dev = "http://schemas.microsoft.com/maml/dev/2004/10";

    private static string HelpFile => Repo.PathOf("en-US", "GpuOps.PowerShell.dll-Help.xml");

    private static readonly Lazy<IReadOnlyList<MamlHelp.CmdletHelp>> Help = new(() =>
        MamlHelp.Read(Metadata.CmdletAssemblyPath, Path.Combine(Metadata.DepsDirectory, "GpuOps.PowerShell.xml"), Metadata.PowerShellReferencePath));

    private static XElement CommandOf(XDocument doc, string name) =>
        doc.Root!.Elements(Command + "command").Single(c => c.Element(Command + "details")!.Element(Command + "name")!.Value == name);

    [Fact]
    public void The_build_writes_help_for_exactly_the_exported_cmdlets_and_it_is_current()
    {
        Assert.True(File.Exists(HelpFile), $"{HelpFile} is missing: the build runs src/GpuOps.PowerShell.Help after GpuOps.PowerShell");
        var doc = XDocument.Load(HelpFile);
        var names = doc.Root!.Elements(Command + "command").Select(c => c.Element(Command + "details")!.Element(Command + "name")!.Value).ToList();
        var manifest = File.ReadAllText(Repo.PathOf("GpuOps.psd1"));
        var exported = Regex.Matches(Regex.Match(manifest, @"CmdletsToExport\s*=\s*@\((?<l>[^)]*)\)", RegexOptions.Singleline).Groups["l"].Value, "'([^']+)'")
            .Select(m => m.Groups[1].Value);
        Assert.Equal(exported.OrderBy(x => x, StringComparer.Ordinal), names.OrderBy(x => x, StringComparer.Ordinal));
        Assert.Equal(MamlHelp.ToMaml(Help.Value).ToString(), doc.ToString());
    }

    [Fact]
    public void Every_cmdlet_has_a_synopsis_a_description_and_an_example_and_every_parameter_a_description()
    {
        foreach (var c in Help.Value)
        {
            Assert.False(string.IsNullOrWhiteSpace(c.Synopsis), $"{c.Name}: no synopsis");
            Assert.NotEmpty(c.Description);
            Assert.True(c.Examples.Count > 0, $"{c.Name}: no example");
            Assert.All(c.Examples, e => Assert.Contains(c.Name, e.Code, StringComparison.Ordinal));
            foreach (var p in c.Parameters)
                Assert.False(string.IsNullOrWhiteSpace(p.Description), $"{c.Name} -{p.Name}: no description");
        }
    }

    [Fact]
    public void Syntax_follows_the_parameter_sets_positions_and_ShouldProcess()
    {
        var doc = XDocument.Load(HelpFile);
        var set = CommandOf(doc, "Set-GpuPowerLimit");
        var items = set.Element(Command + "syntax")!.Elements(Command + "syntaxItem").ToList();
        Assert.Equal(2, items.Count);
        // the default set (Watts) first, -Watts mandatory at position 0; -Percent only in the second, named
        var first = items[0].Elements(Command + "parameter").ToList();
        var watts = first.Single(p => p.Element(Maml + "name")!.Value == "Watts");
        Assert.Equal(("true", "0"), ((string)watts.Attribute("required")!, (string)watts.Attribute("position")!));
        Assert.DoesNotContain(first, p => p.Element(Maml + "name")!.Value == "Percent");
        var percent = items[1].Elements(Command + "parameter").Single(p => p.Element(Maml + "name")!.Value == "Percent");
        Assert.Equal("named", (string)percent.Attribute("position")!);
        Assert.Contains(first, p => p.Element(Maml + "name")!.Value == "WhatIf");
        Assert.Contains(first, p => p.Element(Maml + "name")!.Value == "Confirm");
        var index = set.Element(Command + "parameters")!.Elements(Command + "parameter").Single(p => p.Element(Maml + "name")!.Value == "Index");
        Assert.Equal("True (ByPropertyName)", (string)index.Attribute("pipelineInput")!);
        Assert.Equal("GpuIndex", (string)index.Attribute("aliases")!);
        Assert.Equal("System.Int32[]", index.Element(Dev + "type")!.Element(Maml + "name")!.Value);
        Assert.Equal("GpuOps.Nvml.GpuPowerLimit", set.Element(Command + "returnValues")!.Descendants(Maml + "name").Single().Value);

        // no -WhatIf where the cmdlet changes nothing; ValidateSet values offered in the syntax; wildcards flagged
        var get = CommandOf(doc, "Get-GpuModel");
        Assert.DoesNotContain(get.Descendants(Command + "parameter"), p => p.Element(Maml + "name")!.Value == "WhatIf");
        var name = get.Element(Command + "parameters")!.Elements(Command + "parameter").Single(p => p.Element(Maml + "name")!.Value == "Name");
        Assert.Equal("true", (string)name.Attribute("globbing")!);
        var dtype = CommandOf(doc, "Import-GpuModel").Element(Command + "syntax")!.Descendants(Command + "parameter").First(p => p.Element(Maml + "name")!.Value == "DType");
        Assert.Equal(["auto", "float32", "bfloat16"], dtype.Element(Command + "parameterValueGroup")!.Elements().Select(e => e.Value));

        // nullable parameters by their value type
        var minWatts = CommandOf(doc, "Optimize-GpuPowerLimit").Element(Command + "parameters")!.Elements(Command + "parameter").Single(p => p.Element(Maml + "name")!.Value == "MinWatts");
        Assert.Equal("double", minWatts.Element(Command + "parameterValue")!.Value);

        // a model handle piped in is the input type of Invoke-GpuInference
        var inputs = CommandOf(doc, "Invoke-GpuInference").Element(Command + "inputTypes")!.Descendants(Maml + "name").Select(e => e.Value).ToList();
        Assert.Contains("GpuOps.Core.Engine.GpuModelHandle", inputs);
        Assert.Contains("System.String[]", inputs);
    }

    [Fact]
    public void Doc_comment_text_is_flattened_with_cross_references_by_name()
    {
        var dir = Directory.CreateTempSubdirectory("gpuops-help-").FullName;
        try
        {
            var xml = Path.Combine(dir, "GpuOps.PowerShell.xml");
            // the real metadata, with one member's doc replaced
            var docs = XDocument.Load(Path.Combine(Metadata.DepsDirectory, "GpuOps.PowerShell.xml"));
            var member = docs.Descendants("member").Single(m => (string?)m.Attribute("name") == "P:GpuOps.PowerShell.Cmdlets.GetGpuModelCommand.Id");
            member.ReplaceNodes(XElement.Parse("<summary>\n  Handle ids, as <see cref=\"P:GpuOps.Core.Engine.GpuModelHandle.Id\"/>\n   shows them.\n</summary>"));
            docs.Save(xml);
            var help = MamlHelp.Read(Metadata.CmdletAssemblyPath, xml, Metadata.PowerShellReferencePath);
            var id = help.Single(c => c.Name == "Get-GpuModel").Parameters.Single(p => p.Name == "Id");
            Assert.Equal("Handle ids, as Id shows them.", id.Description);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
