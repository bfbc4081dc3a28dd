using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace GpuOps.PowerShell.Help;

/// <summary>
/// MAML help (the XML Get-Help reads for compiled cmdlets) from a cmdlet assembly's metadata, opened with
/// MetadataLoadContext against PowerShell's reference assembly, and its XML documentation file. What it takes:
/// the type's <c>&lt;para type="synopsis"&gt;</c> (else the summary's first sentence) and
/// <c>&lt;para type="description"&gt;</c> paragraphs, every <c>&lt;example&gt;</c> (its <c>&lt;code&gt;</c> and the
/// text after it), each parameter's summary, and from the metadata the syntax of every parameter set, positions,
/// pipeline input, aliases, wildcards, ValidateSet / enum values, -WhatIf/-Confirm where the cmdlet supports
/// ShouldProcess, input types (what binds from the pipeline) and output types ([OutputType]).
/// </summary>
public static class MamlHelp
{
    private static readonly XNamespace Msh = "http://msh";
    private static readonly XNamespace Maml = "http://schemas.microsoft.com/maml/2004/10";
    private static readonly XNamespace Command = "http://schemas.microsoft.com/maml/dev/command/2004/10";
    private static readonly XNamespace Dev = "http://schemas.microsoft.com/maml/dev/2004/10";
    private const string Sma = "System.Management.Automation.";
    private const string AllSets = "__AllParameterSets";

    /// <summary>One cmdlet's help as plain data (the MAML is written from this; tests read it too).</summary>
    public sealed record CmdletHelp(string Name, string Verb, string Noun, string Synopsis, IReadOnlyList<string> Description,
        IReadOnlyList<ParameterHelp> Parameters, IReadOnlyList<SyntaxHelp> Syntax, IReadOnlyList<string> InputTypes,
        IReadOnlyList<string> OutputTypes, IReadOnlyList<(string Code, string Remarks)> Examples, IReadOnlyList<string> RelatedLinks);

    public sealed record ParameterHelp(string Name, string TypeName, string TypeFullName, bool IsSwitch, string Description,
        IReadOnlyList<string> Aliases, bool Globbing, IReadOnlyList<string> Values, IReadOnlyDictionary<string, ParameterSetUse> Sets);

    /// <summary>How a parameter appears in one parameter set.</summary>
    public sealed record ParameterSetUse(bool Mandatory, int? Position, bool ByValue, bool ByPropertyName);

    public sealed record SyntaxHelp(string SetName, IReadOnlyList<ParameterHelp> Parameters);

    /// <summary>The help of every exported, non-abstract cmdlet class in the assembly, sorted by name.</summary>
    public static IReadOnlyList<CmdletHelp> Read(string cmdletAssemblyPath, string xmlDocPath, string powerShellReferencePath)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(cmdletAssemblyPath))!;
        var paths = Directory.GetFiles(RuntimeEnvironment.GetRuntimeDirectory(), "*.dll")
            .Concat(Directory.GetFiles(dir, "*.dll").Where(p => !Path.GetFileName(p).Equals(Path.GetFileName(cmdletAssemblyPath), StringComparison.OrdinalIgnoreCase)))
            .Append(powerShellReferencePath).Append(Path.GetFullPath(cmdletAssemblyPath))
            .GroupBy(Path.GetFileName, StringComparer.OrdinalIgnoreCase).Select(g => g.Last());
        using var mlc = new MetadataLoadContext(new PathAssemblyResolver(paths), "System.Private.CoreLib");
        var asm = mlc.LoadFromAssemblyPath(Path.GetFullPath(cmdletAssemblyPath));
        var cmdletBase = mlc.LoadFromAssemblyPath(powerShellReferencePath).GetType(Sma + "Cmdlet", throwOnError: true)!;
        var docs = XmlDocs.Load(xmlDocPath);

        var found = new List<(Type Type, CustomAttributeData Attr)>();
        foreach (var t in asm.GetExportedTypes())
        {
            if (t.IsAbstract || !t.IsSubclassOf(cmdletBase)) continue;
            var a = t.GetCustomAttributesData().FirstOrDefault(x => x.AttributeType.FullName == Sma + "CmdletAttribute");
            if (a is not null) found.Add((t, a));
        }

        var names = found.Select(f => ((string)f.Attr.ConstructorArguments[0].Value!, (string)f.Attr.ConstructorArguments[1].Value!)).ToList();
        return found.Select(f => ReadCmdlet(f.Type, f.Attr, docs, names)).OrderBy(c => c.Name, StringComparer.Ordinal).ToList();
    }

    private static CmdletHelp ReadCmdlet(Type t, CustomAttributeData cmdletAttr, XmlDocs docs, List<(string Verb, string Noun)> all)
    {
        string verb = (string)cmdletAttr.ConstructorArguments[0].Value!, noun = (string)cmdletAttr.ConstructorArguments[1].Value!;
        bool shouldProcess = Named(cmdletAttr, "SupportsShouldProcess", false);
        string? defaultSet = Named<string?>(cmdletAttr, "DefaultParameterSetName", null);
        var typeDoc = docs.Member("T:" + t.FullName);

        var parameters = new List<ParameterHelp>();
        foreach (var p in t.GetProperties(BindingFlags.Public | BindingFlags.Instance)
                     .GroupBy(p => p.Name).Select(g => g.OrderBy(p => Depth(p.DeclaringType!)).Last()))
        {
            var sets = new Dictionary<string, ParameterSetUse>(StringComparer.Ordinal);
            foreach (var a in p.GetCustomAttributesData().Where(a => a.AttributeType.FullName == Sma + "ParameterAttribute"))
            {
                int pos = Named(a, "Position", int.MinValue);
                sets[Named(a, "ParameterSetName", AllSets)] = new ParameterSetUse(Named(a, "Mandatory", false), pos == int.MinValue ? null : pos,
                    Named(a, "ValueFromPipeline", false), Named(a, "ValueFromPipelineByPropertyName", false));
            }

            if (sets.Count == 0) continue;
            var attrs = p.GetCustomAttributesData();
            var aliases = attrs.Where(a => a.AttributeType.FullName == Sma + "AliasAttribute")
                .SelectMany(a => Strings(a.ConstructorArguments)).ToList();
            var values = attrs.Where(a => a.AttributeType.FullName == Sma + "ValidateSetAttribute")
                .SelectMany(a => Strings(a.ConstructorArguments)).ToList();
            var pt = p.PropertyType;   // (Nullable.GetUnderlyingType does not know MetadataLoadContext's types: by name)
            if (pt.IsGenericType && pt.GetGenericTypeDefinition().FullName == "System.Nullable`1") pt = pt.GetGenericArguments()[0];
            var et = pt.IsArray ? pt.GetElementType()! : pt;
            if (values.Count == 0 && et.IsEnum) values = et.GetFields(BindingFlags.Public | BindingFlags.Static).Select(f => f.Name).ToList();
            bool isSwitch = pt.FullName == Sma + "SwitchParameter";
            parameters.Add(new ParameterHelp(p.Name, ShortTypeName(pt), pt.FullName ?? pt.Name, isSwitch,
                docs.Text(docs.Member("P:" + p.DeclaringType!.FullName + "." + p.Name)), aliases,
                attrs.Any(a => a.AttributeType.FullName == Sma + "SupportsWildcardsAttribute"), values, sets));
        }

        // parameters in declaration order of the class hierarchy (base first), as Get-Command shows them
        parameters = parameters.OrderBy(p => Order(t, p.Name)).ToList();
        if (shouldProcess)
        {
            var everySet = new Dictionary<string, ParameterSetUse> { [AllSets] = new(false, null, false, false) };
            parameters.Add(new ParameterHelp("WhatIf", "SwitchParameter", Sma + "SwitchParameter", true,
                "Shows what would happen if the cmdlet runs. The cmdlet is not run.", ["wi"], false, [], everySet));
            parameters.Add(new ParameterHelp("Confirm", "SwitchParameter", Sma + "SwitchParameter", true,
                "Prompts you for confirmation before running the cmdlet.", ["cf"], false, [], everySet));
        }

        var setNames = parameters.SelectMany(p => p.Sets.Keys).Where(s => s != AllSets).Distinct().ToList();
        if (setNames.Count == 0) setNames.Add(AllSets);
        setNames = setNames.OrderBy(s => s == defaultSet ? 0 : 1).ThenBy(s => s, StringComparer.Ordinal).ToList();
        var syntax = setNames.Select(s => new SyntaxHelp(s, parameters
            .Where(p => p.Sets.ContainsKey(s) || p.Sets.ContainsKey(AllSets))
            .Select(p => p with { Sets = new Dictionary<string, ParameterSetUse> { [s] = p.Sets.TryGetValue(s, out var u) ? u : p.Sets[AllSets] } })
            .OrderBy(p => p.Sets.Values.First().Position ?? int.MaxValue).ThenBy(p => p.Sets.Values.First().Mandatory ? 0 : 1)
            .ToList())).ToList();

        var inputs = parameters.Where(p => p.Sets.Values.Any(u => u.ByValue)).Select(p => p.TypeFullName)
            .Concat(parameters.Any(p => p.Sets.Values.Any(u => u.ByPropertyName && !u.ByValue)) ? ["System.Management.Automation.PSObject (by property name: " +
                string.Join(", ", parameters.Where(p => p.Sets.Values.Any(u => u.ByPropertyName)).SelectMany(p => p.Aliases.Prepend(p.Name))) + ")"] : [])
            .Distinct().ToList();
        var outputs = t.GetCustomAttributesData().Where(a => a.AttributeType.FullName == Sma + "OutputTypeAttribute")
            .SelectMany(a => a.ConstructorArguments).SelectMany(c => c.Value is IEnumerable<CustomAttributeTypedArgument> many ? many.Select(m => m.Value) : [c.Value])
            .Select(v => v is Type ty ? ty.FullName ?? ty.Name : v?.ToString() ?? "").Where(s => s.Length > 0).Distinct().ToList();

        string synopsis = docs.Paras(typeDoc, "synopsis").FirstOrDefault() ?? FirstSentence(docs.Text(typeDoc));
        var description = docs.Paras(typeDoc, "description");
        var examples = typeDoc?.Descendants("example").Select(e => (
            Code: Normalize(string.Join("\n", e.Elements("code").Select(c => c.Value.Trim()))),
            Remarks: Normalize(string.Concat(e.Nodes().Where(n => n is not XElement { Name.LocalName: "code" }).Select(n => n is XElement x ? x.Value : n.ToString()))))).ToList() ?? [];
        var related = all.Where(c => c.Noun == noun && c.Verb != verb).Select(c => $"{c.Verb}-{c.Noun}").OrderBy(s => s, StringComparer.Ordinal).ToList();
        return new CmdletHelp($"{verb}-{noun}", verb, noun, synopsis, description, parameters, syntax, inputs, outputs, examples, related);
    }

    /// <summary>The MAML document for <paramref name="cmdlets"/>.</summary>
    public static XDocument ToMaml(IEnumerable<CmdletHelp> cmdlets) =>
        new(new XDeclaration("1.0", "utf-8", null),
            new XElement(Msh + "helpItems", new XAttribute("schema", "maml"),
                cmdlets.Select(c => new XElement(Command + "command",
                    new XAttribute(XNamespace.Xmlns + "maml", Maml), new XAttribute(XNamespace.Xmlns + "command", Command), new XAttribute(XNamespace.Xmlns + "dev", Dev),
                    new XElement(Command + "details",
                        new XElement(Command + "name", c.Name),
                        Description([c.Synopsis]),
                        new XElement(Command + "verb", c.Verb),
                        new XElement(Command + "noun", c.Noun)),
                    Description(c.Description.Count > 0 ? c.Description : [c.Synopsis]),
                    new XElement(Command + "syntax", c.Syntax.Select(s => new XElement(Command + "syntaxItem",
                        new XElement(Maml + "name", c.Name),
                        s.Parameters.Select(p => Parameter(p, p.Sets.Values.First(), inSyntax: true))))),
                    new XElement(Command + "parameters", c.Parameters.Select(p => Parameter(p, Merge(p.Sets.Values), inSyntax: false))),
                    new XElement(Command + "inputTypes", (c.InputTypes.Count > 0 ? c.InputTypes : ["None"]).Select(t => new XElement(Command + "inputType",
                        new XElement(Dev + "type", new XElement(Maml + "name", t)), Description([])))),
                    new XElement(Command + "returnValues", c.OutputTypes.Select(t => new XElement(Command + "returnValue",
                        new XElement(Dev + "type", new XElement(Maml + "name", t)), Description([])))),
                    new XElement(Command + "examples", c.Examples.Select((e, i) => new XElement(Command + "example",
                        new XElement(Maml + "title", $"-------------------------- Example {i + 1} --------------------------"),
                        new XElement(Dev + "code", e.Code),
                        new XElement(Dev + "remarks", new XElement(Maml + "para", e.Remarks))))),
                    new XElement(Command + "relatedLinks", c.RelatedLinks.Select(l => new XElement(Maml + "navigationLink",
                        new XElement(Maml + "linkText", l), new XElement(Maml + "uri"))))))));

    private static XElement Parameter(ParameterHelp p, ParameterSetUse u, bool inSyntax)
    {
        var e = new XElement(Command + "parameter",
            new XAttribute("required", u.Mandatory ? "true" : "false"),
            new XAttribute("variableLength", p.TypeName.EndsWith("[]", StringComparison.Ordinal) ? "true" : "false"),
            new XAttribute("globbing", p.Globbing ? "true" : "false"),
            new XAttribute("pipelineInput", (u.ByValue, u.ByPropertyName) switch
            {
                (true, true) => "True (ByPropertyName, ByValue)",
                (true, false) => "True (ByValue)",
                (false, true) => "True (ByPropertyName)",
                _ => "False",
            }),
            new XAttribute("position", u.Position is int pos ? pos.ToString(System.Globalization.CultureInfo.InvariantCulture) : "named"),
            new XAttribute("aliases", p.Aliases.Count > 0 ? string.Join(", ", p.Aliases) : "none"),
            new XElement(Maml + "name", p.Name),
            Description(p.Description.Length > 0 ? [p.Description] : []));
        if (inSyntax && p.Values.Count > 0)
            e.Add(new XElement(Command + "parameterValueGroup", p.Values.Select(v => new XElement(Command + "parameterValue",
                new XAttribute("required", "false"), new XAttribute("variableLength", "false"), v))));
        else if (!(inSyntax && p.IsSwitch))
            e.Add(new XElement(Command + "parameterValue", new XAttribute("required", p.IsSwitch ? "false" : "true"),
                new XAttribute("variableLength", p.TypeName.EndsWith("[]", StringComparison.Ordinal) ? "true" : "false"), p.TypeName));
        if (!inSyntax)
        {
            e.Add(new XElement(Dev + "type", new XElement(Maml + "name", p.TypeFullName), new XElement(Maml + "uri")));
            e.Add(new XElement(Dev + "defaultValue", p.IsSwitch ? "False" : "None"));
        }

        return e;
    }

    private static ParameterSetUse Merge(IEnumerable<ParameterSetUse> uses)
    {
        var l = uses.ToList();
        return new ParameterSetUse(l.All(u => u.Mandatory), l.Select(u => u.Position).Distinct().Count() == 1 ? l[0].Position : null,
            l.Any(u => u.ByValue), l.Any(u => u.ByPropertyName));
    }

    private static XElement Description(IEnumerable<string> paras) =>
        new(Maml + "description", paras.Select(p => new XElement(Maml + "para", p)));

    private static string ShortTypeName(Type t)
    {
        if (t.IsArray) return ShortTypeName(t.GetElementType()!) + "[]";
        return t.FullName switch
        {
            "System.String" => "string",
            "System.Int32" => "int",
            "System.Int64" => "long",
            "System.Double" => "double",
            "System.Boolean" => "bool",
            "System.Object" => "Object",
            _ => t.Name,
        };
    }

    private static int Depth(Type t)
    {
        int d = 0;
        for (var b = t.BaseType; b is not null; b = b.BaseType) d++;
        return d;
    }

    /// <summary>Base class members first, then declaration (metadata) order.</summary>
    private static int Order(Type t, string property)
    {
        var chain = new List<Type>();
        for (var b = t; b is not null; b = b.BaseType) chain.Insert(0, b);
        int i = 0;
        foreach (var c in chain)
            foreach (var p in c.GetProperties(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly))
            {
                if (p.Name == property) return i;
                i++;
            }

        return int.MaxValue;
    }

    private static T Named<T>(CustomAttributeData a, string name, T fallback)
    {
        foreach (var n in a.NamedArguments)
            if (n.MemberName == name) return (T)n.TypedValue.Value!;
        return fallback;
    }

    private static IEnumerable<string> Strings(IEnumerable<CustomAttributeTypedArgument> args) =>
        args.SelectMany(a => a.Value is IEnumerable<CustomAttributeTypedArgument> many ? many.Select(m => m.Value as string) : [a.Value as string])
            .Where(s => !string.IsNullOrEmpty(s)).Select(s => s!);

    internal static string Normalize(string s) =>
        string.Join("\n", s.Replace("\r", "").Split('\n').Select(l => Regex.Replace(l.Trim(), @"\s+", " "))).Trim();

    private static string FirstSentence(string s)
    {
        var m = Regex.Match(s, @"^.*?[.!?](\s|$)");
        return m.Success ? m.Value.Trim() : s;
    }

    /// <summary>The XML documentation file: members by id, their text with see/paramref resolved.</summary>
    private sealed class XmlDocs
    {
        private readonly Dictionary<string, XElement> _members;

        private XmlDocs(Dictionary<string, XElement> members) => _members = members;

        public static XmlDocs Load(string path) =>
            new(XDocument.Load(path).Descendants("member").Where(m => m.Attribute("name") is not null)
                .GroupBy(m => m.Attribute("name")!.Value).ToDictionary(g => g.Key, g => g.First()));

        public XElement? Member(string id) => _members.GetValueOrDefault(id);

        /// <summary>The summary's paragraphs of one type (synopsis, description).</summary>
        public IReadOnlyList<string> Paras(XElement? member, string type) =>
            member?.Element("summary")?.Elements("para").Where(p => (string?)p.Attribute("type") == type).Select(Flat).Where(s => s.Length > 0).ToList() ?? [];

        /// <summary>A member's description: its description paragraphs, else its whole summary as one paragraph.</summary>
        public string Text(XElement? member)
        {
            var summary = member?.Element("summary");
            if (summary is null) return "";
            var described = summary.Elements("para").Where(p => (string?)p.Attribute("type") == "description").Select(Flat).ToList();
            return described.Count > 0 ? string.Join(" ", described) : Flat(summary);
        }

        private static string Flat(XElement e) =>
            Regex.Replace(string.Concat(e.Nodes().Select(n => n switch
            {
                XElement { Name.LocalName: "see" or "seealso" } x => Cref(x),
                XElement { Name.LocalName: "paramref" or "typeparamref" } x => (string?)x.Attribute("name") ?? "",
                XElement x => Flat(x) + " ",
                XText tx => tx.Value,
                _ => "",
            })), @"\s+", " ").Trim();

        private static string Cref(XElement x)
        {
            var cref = (string?)x.Attribute("cref") ?? (string?)x.Attribute("langword") ?? x.Value;
            var name = cref.Contains(':') ? cref[(cref.IndexOf(':') + 1)..] : cref;
            name = name.Split('(')[0];
            return name.Contains('.') ? name[(name.LastIndexOf('.') + 1)..] : name;
        }
    }
}
