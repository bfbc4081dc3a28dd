using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace GpuOps.Core.Tokenizers;

/// <summary>
/// A .NET regex with code-point semantics for characters outside the BMP, as Hugging Face's Oniguruma regexes
/// have: .NET matches UTF-16 code units, so an astral letter (a surrogate pair) would not match \p{L}.
/// Before matching, each surrogate pair is replaced by one BMP stand-in of the same Unicode general category
/// (chosen so that it appears in no pattern literal); match positions are mapped back to the original string.
/// </summary>
public sealed class CodePointRegex
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Regex> Compiled = new(StringComparer.Ordinal);
    private readonly Regex _regex;

    public CodePointRegex(string pattern)
    {
        Pattern = pattern;
        try
        {
            // Compiling costs tens of milliseconds: share one compiled regex per pattern.
            _regex = Compiled.GetOrAdd(pattern, p => new Regex(p, RegexOptions.CultureInvariant | RegexOptions.Compiled, TimeSpan.FromSeconds(10)));
        }
        catch (RegexParseException ex)
        {
            throw new ArgumentException($"pattern '{pattern}' is not a regex .NET understands ({ex.Message}).", ex);
        }
    }

    public string Pattern { get; }

    /// <summary>Non-overlapping matches, leftmost first: (start, length) in UTF-16 units of <paramref name="text"/>.</summary>
    public List<(int Start, int Length)> Matches(string text)
    {
        var result = new List<(int, int)>();
        if (text.Length == 0) return result;
        bool astral = false;
        foreach (char ch in text)
        {
            if (char.IsSurrogate(ch)) { astral = true; break; }
        }

        if (!astral)
        {
            for (var m = _regex.Match(text); m.Success; m = m.NextMatch())
            {
                if (m.Length > 0) result.Add((m.Index, m.Length));
            }

            return result;
        }

        var shadow = new StringBuilder(text.Length);
        var map = new List<int>(text.Length + 1);
        for (int i = 0; i < text.Length; i++)
        {
            map.Add(i);
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                shadow.Append(StandIn(CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(text[i], text[i + 1]))));
                i++;
            }
            else
            {
                shadow.Append(text[i]);
            }
        }

        map.Add(text.Length);
        var s = shadow.ToString();
        for (var m = _regex.Match(s); m.Success; m = m.NextMatch())
        {
            if (m.Length == 0) continue;
            int start = map[m.Index], end = map[m.Index + m.Length];
            result.Add((start, end - start));
        }

        return result;
    }

    private static char StandIn(UnicodeCategory c) => c switch
    {
        UnicodeCategory.UppercaseLetter => '\u2C00',
        UnicodeCategory.LowercaseLetter => '\u2C30',
        UnicodeCategory.TitlecaseLetter => '\u01C5',
        UnicodeCategory.ModifierLetter => '\u02B0',
        UnicodeCategory.OtherLetter => '\uA500',
        UnicodeCategory.NonSpacingMark => '\u0300',
        UnicodeCategory.SpacingCombiningMark => '\u0903',
        UnicodeCategory.EnclosingMark => '\u20DD',
        UnicodeCategory.DecimalDigitNumber => '\u0660',
        UnicodeCategory.LetterNumber => '\u2160',
        UnicodeCategory.OtherNumber => '\u2460',
        UnicodeCategory.ConnectorPunctuation => '\u203F',
        UnicodeCategory.DashPunctuation => '\u2010',
        UnicodeCategory.OpenPunctuation => '\u2045',
        UnicodeCategory.ClosePunctuation => '\u2046',
        UnicodeCategory.InitialQuotePunctuation => '\u2039',
        UnicodeCategory.FinalQuotePunctuation => '\u203A',
        UnicodeCategory.OtherPunctuation => '\u203C',
        UnicodeCategory.MathSymbol => '\u2200',
        UnicodeCategory.CurrencySymbol => '\u20A0',
        UnicodeCategory.ModifierSymbol => '\u02C2',
        UnicodeCategory.OtherSymbol => '\u2600',
        UnicodeCategory.Format => '\u00AD',
        UnicodeCategory.PrivateUse => '\uE000',
        UnicodeCategory.Control => '\u0001',
        _ => '\u0378', // unassigned
    };
}
