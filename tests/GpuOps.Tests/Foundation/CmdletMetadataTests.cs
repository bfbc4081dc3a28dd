using System.Reflection;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using GpuOps.Tests.Support;
using Xunit;

namespace GpuOps.Tests.Foundation;

/// <summary>Microsoft's cmdlet guidelines, checked on the built module's metadata.</summary>
[Trait("Category", "Module")]
public class CmdletMetadataTests
{
    /// <summary>Verbs that change state: their cmdlets must support ShouldProcess (-WhatIf/-Confirm).</summary>
    private static readonly HashSet<string> StateChangingVerbs = new(StringComparer.OrdinalIgnoreCase)
    {
        "Set", "Restore", "Remove", "New", "Clear", "Reset", "Stop", "Start", "Optimize", "Export", "Update",
        "Install", "Uninstall", "Enable", "Disable", "Register", "Unregister", "Rename", "Move", "Copy", "Write",
        "Save", "Publish", "Unpublish", "Lock", "Unlock", "Suspend", "Resume", "Restart", "Merge", "Rename",
    };

    /// <summary>Nouns whose cmdlets change hardware settings: ConfirmImpact High.</summary>
    private static readonly string[] HardwareNouns = ["GpuPowerLimit", "GpuClock", "GpuPersistenceMode", "GpuComputeMode"];

    public static IEnumerable<(Type Type, string Verb, string Noun, CustomAttributeData Attr)> Cmdlets()
    {
        var cmdletBase = Metadata.PowerShellType("System.Management.Automation.Cmdlet");
        foreach (var t in Metadata.CmdletAssembly.GetExportedTypes())
        {
            if (t.IsAbstract || !t.IsSubclassOf(cmdletBase)) continue;
            var a = t.GetCustomAttributesData().FirstOrDefault(x => x.AttributeType.FullName == "System.Management.Automation.CmdletAttribute");
            Assert.True(a is not null, $"{t.FullName} derives from Cmdlet but has no [Cmdlet] attribute");
            yield return (t, (string)a!.ConstructorArguments[0].Value!, (string)a.ConstructorArguments[1].Value!, a);
        }
    }

    private static HashSet<string> ApprovedVerbs()
    {
        var verbs = new HashSet<string>(StringComparer.Ordinal);
        foreach (var cls in new[] { "VerbsCommon", "VerbsCommunications", "VerbsData", "VerbsDiagnostic", "VerbsLifecycle", "VerbsSecurity", "VerbsOther" })
        {
            foreach (var f in Metadata.PowerShellType("System.Management.Automation." + cls).GetFields().Where(f => f.IsLiteral))
            {
                verbs.Add((string)f.GetRawConstantValue()!);
            }
        }

        return verbs;
    }

    [Fact]
    public void The_module_exports_cmdlets()
    {
        Assert.NotEmpty(Cmdlets());
        Assert.Contains(Cmdlets(), c => c.Verb == "Get" && c.Noun == "GpuOpsInfo");
    }

    [Fact]
    public void Every_cmdlet_uses_an_approved_verb()
    {
        var approved = ApprovedVerbs();
        Assert.Contains("Optimize", approved);
        foreach (var c in Cmdlets())
        {
            Assert.True(approved.Contains(c.Verb), $"{c.Verb}-{c.Noun}: '{c.Verb}' is not an approved verb");
        }
    }

    [Fact]
    public void Every_noun_is_singular_and_starts_with_Gpu()
    {
        foreach (var c in Cmdlets())
        {
            Assert.StartsWith("Gpu", c.Noun, StringComparison.Ordinal);
            bool plural = c.Noun.EndsWith('s') && !c.Noun.EndsWith("ss", StringComparison.Ordinal) && !c.Noun.EndsWith("us", StringComparison.Ordinal) && !c.Noun.EndsWith("sis", StringComparison.Ordinal);
            Assert.False(plural, $"{c.Verb}-{c.Noun}: the noun looks plural");
        }
    }

    [Fact]
    public void Every_cmdlet_declares_OutputType()
    {
        foreach (var c in Cmdlets())
        {
            var output = c.Type.GetCustomAttributesData().Where(x => x.AttributeType.FullName == "System.Management.Automation.OutputTypeAttribute").ToList();
            Assert.True(output.Count > 0, $"{c.Verb}-{c.Noun} has no [OutputType]");
        }
    }

    [Fact]
    public void State_changing_cmdlets_support_ShouldProcess_and_hardware_ones_confirm_high()
    {
        foreach (var c in Cmdlets())
        {
            bool supports = Metadata.Named(c.Attr, "SupportsShouldProcess", false);
            if (StateChangingVerbs.Contains(c.Verb))
            {
                Assert.True(supports, $"{c.Verb}-{c.Noun} changes state but does not declare SupportsShouldProcess");
            }

            if (HardwareNouns.Contains(c.Noun) && c.Verb != "Get")
            {
                var impactArg = c.Attr.NamedArguments.FirstOrDefault(n => n.MemberName == "ConfirmImpact");
                Assert.True(impactArg.MemberName is not null && Convert.ToInt32(impactArg.TypedValue.Value) == 3,
                    $"{c.Verb}-{c.Noun} changes hardware settings: ConfirmImpact must be High");
            }
        }
    }

    [Fact]
    public void Public_cmdlet_types_do_not_derive_from_or_implement_engine_types()
    {
        // The cmdlet assembly loads before the isolated load context is installed: its exported types may not
        // need GpuOps.Core (or other engine assemblies) just to be loaded.
        foreach (var t in Metadata.CmdletAssembly.GetExportedTypes())
        {
            for (var b = t.BaseType; b is not null; b = b.BaseType)
            {
                Assert.False(b.Assembly.GetName().Name is "GpuOps.Core" or "GpuOps.Nvml" or "GpuOps.Cuda", $"{t.FullName} derives from {b.FullName}");
            }

            foreach (var i in t.GetInterfaces())
            {
                Assert.False(i.Assembly.GetName().Name is "GpuOps.Core" or "GpuOps.Nvml" or "GpuOps.Cuda", $"{t.FullName} implements {i.FullName}");
            }
        }
    }

    [Fact]
    public void Manifest_exports_exactly_the_cmdlet_classes()
    {
        var manifest = File.ReadAllText(Repo.PathOf("GpuOps.psd1"));
        var block = Regex.Match(manifest, @"CmdletsToExport\s*=\s*@\((?<list>[^)]*)\)", RegexOptions.Singleline);
        Assert.True(block.Success, "CmdletsToExport = @(...) not found in GpuOps.psd1");
        var exported = Regex.Matches(block.Groups["list"].Value, "'([^']+)'").Select(m => m.Groups[1].Value).ToHashSet();
        var actual = Cmdlets().Select(c => $"{c.Verb}-{c.Noun}").ToHashSet();
        Assert.Equal(actual.OrderBy(x => x), exported.OrderBy(x => x));
        Assert.Matches(@"RootModule\s*=\s*'module/GpuOps\.psm1'", manifest);
        Assert.Matches(@"CompatiblePSEditions\s*=\s*@\('Core'\)", manifest);
        Assert.Matches(@"PowerShellVersion\s*=\s*'7\.4'", manifest);
        foreach (var key in new[] { "Description", "LicenseUri", "ProjectUri", "Tags" }) Assert.Contains(key, manifest);
    }

    [Fact]
    public void Format_files_exist_and_their_views_name_existing_types()
    {
        var manifest = File.ReadAllText(Repo.PathOf("GpuOps.psd1"));
        var block = Regex.Match(manifest, @"FormatsToProcess\s*=\s*@\((?<list>[^)]*)\)", RegexOptions.Singleline);
        var files = Regex.Matches(block.Groups["list"].Value, "'([^']+)'").Select(m => m.Groups[1].Value).ToList();
        Assert.NotEmpty(files);
        var onDisk = Directory.GetFiles(Repo.PathOf("module", "formats"), "*.ps1xml").Select(f => "module/formats/" + Path.GetFileName(f));
        Assert.Equal(onDisk.OrderBy(x => x), files.OrderBy(x => x));
        foreach (var f in files)
        {
            var doc = XDocument.Load(Repo.PathOf(f.Split('/')));
            var names = doc.Descendants("ViewSelectedBy").Elements("TypeName").Select(e => e.Value.Trim()).ToList();
            Assert.NotEmpty(names);
            foreach (var n in names)
            {
                Assert.True(Metadata.FindType(n) is not null, $"{f}: view for unknown type {n}");
            }
        }
    }

    [Fact]
    public void Pipeline_parameters_bind_by_value_or_property_name()
    {
        var paramAttr = "System.Management.Automation.ParameterAttribute";
        foreach (var c in Cmdlets())
        {
            foreach (var p in c.Type.GetProperties())
            {
                foreach (var a in p.GetCustomAttributesData().Where(x => x.AttributeType.FullName == paramAttr))
                {
                    // A parameter that takes pipeline input by value must also take it by property name, so that
                    // objects from other GpuOps cmdlets (which carry e.g. Index/Uuid/Path) bind.
                    if (Metadata.Named(a, "ValueFromPipeline", false) && p.PropertyType.FullName != "System.Management.Automation.PSObject")
                    {
                        Assert.True(Metadata.Named(a, "ValueFromPipelineByPropertyName", false) || p.PropertyType.IsClass,
                            $"{c.Verb}-{c.Noun} -{p.Name}: pipeline by value without by property name");
                    }
                }
            }
        }
    }
}
