using System.CommandLine;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;

namespace DistEmu.Silo;

/// <summary>
/// A failed parse of a System.CommandLine command line as the one line a user acts on ("what and where"), and the
/// typo corrections System.CommandLine offers for a mistyped option or command. distemu and the silo program each
/// print it with their own prefix and exit 2.
/// </summary>
public sealed record CommandLineError(string Message, IReadOnlyList<string> Suggestions)
{
    /// <summary>The first error of <paramref name="result"/>, or null when it parsed cleanly.</summary>
    /// <param name="program">How the help is asked for, e.g. "distemu" (the hint names "distemu run --help").</param>
    public static CommandLineError? Of(ParseResult result, string program)
    {
        if (result.Errors.Count == 0) return null;
        var command = result.CommandResult.Command;
        string path = CommandPath(result.CommandResult);
        string help = path.Length == 0 ? $"{program} --help" : $"{program} {path} --help";
        string where = path.Length == 0 ? "" : path + ": ";
        if (result.UnmatchedTokens.Count > 0)
        {
            string token = result.UnmatchedTokens[0];
            string message = token.StartsWith('-') ? $"{where}unknown option '{token}' (see {help})"
                : command.Subcommands.Any(c => !c.Hidden) ? $"{where}unknown command '{token}'; expected {Either(command.Subcommands.Where(c => !c.Hidden).Select(c => c.Name))} (see {help})"
                : $"{where}unexpected argument '{token}'";
            return new CommandLineError(message, TypoCorrections(result));
        }
        var error = result.Errors[0];
        var option = error.SymbolResult as OptionResult ?? (error.SymbolResult as ArgumentResult)?.Parent as OptionResult;
        // System.CommandLine's own wording for a bare option ("Required argument missing for option") names no value.
        if (option is { Tokens.Count: 0 } && option.Option.Arity.MinimumNumberOfValues > 0)
            return new CommandLineError($"{option.Option.Name}: missing value", []);
        return new CommandLineError(error.Message, []);
    }

    /// <summary>
    /// A custom option parser's value: <paramref name="r"/>'s last token (a later --x replaces an earlier one, as response
    /// files need) through <paramref name="convert"/>; the program's own usage exception <typeparamref name="TError"/>
    /// becomes a parse error, reported like System.CommandLine's own.
    /// </summary>
    public static T? Checked<T, TError>(ArgumentResult r, Func<string, T> convert) where TError : Exception
    {
        try
        {
            return convert(r.Tokens[^1].Value);
        }
        catch (TError e)
        {
            r.AddError(e.Message);
            return default;
        }
    }

    /// <summary>"a, b or c".</summary>
    public static string Either(IEnumerable<string> names)
    {
        var list = names.ToList();
        return list.Count <= 1 ? string.Concat(list) : string.Join(", ", list.Take(list.Count - 1)) + " or " + list[^1];
    }

    /// <summary>The subcommand names from the root down, e.g. "cluster status" ("" at the root).</summary>
    private static string CommandPath(CommandResult result)
    {
        var names = new List<string>();
        for (var r = result; r != null; r = r.Parent as CommandResult)
            if (r.Command is not RootCommand) names.Add(r.Command.Name);
        names.Reverse();
        return string.Join(" ", names);
    }

    /// <summary>
    /// System.CommandLine's corrections for the first unmatched token: its parse-error action prints them (a line naming
    /// the token, then one line per candidate); it is run with help off and its output captured.
    /// </summary>
    private static List<string> TypoCorrections(ParseResult result)
    {
        if (result.Action is not ParseErrorAction action) return [];
        action.ShowHelp = false;
        action.ShowTypoCorrections = true;
        var said = new StringWriter();
        result.Invoke(new InvocationConfiguration { Output = said, Error = TextWriter.Null, EnableDefaultExceptionHandler = false });
        return said.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Skip(1).TakeWhile(line => !line.Contains(' ', StringComparison.Ordinal)).ToList();
    }
}
