using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using DistEmu.Kernel.Machine;

namespace DistEmu.Client;

/// <summary>
/// The kinds of option distemu's commands share, as System.CommandLine options whose values are checked while the
/// command line is parsed: a bad value is a parse error worded as before ("--replicate 0: must be in 1..65536").
/// Defaults are applied where the values are read (the records), so "given or not" stays visible.
/// </summary>
internal static class OptionKinds
{
    public static Option<string?> Text(string name, string helpName, string description) => new(name)
    {
        HelpName = helpName,
        Description = description,
        Arity = ArgumentArity.OneOrMore,
        CustomParser = r => r.Tokens[^1].Value,
    };

    /// <summary>A value from a fixed list, offered to shell completion.</summary>
    public static Option<string?> Choice(string name, string description, string? what, IReadOnlyList<string> allowed, string? helpName = null)
    {
        var option = new Option<string?>(name)
        {
            HelpName = helpName ?? string.Join("|", allowed),
            Description = description,
            CustomParser = r => Check(r, v => allowed.Contains(v, StringComparer.Ordinal) ? v
                : throw new UsageException($"{name} '{v}': {(what is null ? "" : what + "; ")}expected {DistEmu.Silo.CommandLineError.Either(allowed)}")),
        };
        option.CompletionSources.Add([.. allowed]);
        return option;
    }

    /// <summary>An integer, then <paramref name="check"/> (the error it returns, or null when the value is fine).</summary>
    public static Option<long?> Long(string name, string description, Func<long, string?>? check = null, string helpName = "N") => new(name)
    {
        HelpName = helpName,
        Description = description,
        CustomParser = r => Check<long?>(r, v =>
        {
            long n = long.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out long parsed) ? parsed
                : throw new UsageException($"{name} '{v}': not an integer");
            return check?.Invoke(n) is { } error ? throw new UsageException(error) : n;
        }),
    };

    /// <summary>An integer in <paramref name="min"/>..<paramref name="max"/>.</summary>
    public static Option<int?> Int(string name, string description, int min, int max, Func<long, string> outOfRange) => new(name)
    {
        HelpName = "N",
        Description = description,
        CustomParser = r => Check<int?>(r, v =>
        {
            long n = long.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out long parsed) ? parsed
                : throw new UsageException($"{name} '{v}': not an integer");
            return n >= min && n <= max ? (int)n : throw new UsageException(outOfRange(n));
        }),
    };

    public static Option<double?> Number(string name, string helpName, string description, Func<double, bool> ok, string expected) => new(name)
    {
        HelpName = helpName,
        Description = description,
        CustomParser = r => Check<double?>(r, v => double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && ok(d)
            ? d : throw new UsageException($"{name} '{v}': {expected}")),
    };

    /// <summary>--duration: "10s", "500ms", "2m", "1h" or plain seconds; the text is kept for messages ("--duration 2s reached").</summary>
    public static Option<(TimeSpan Time, string Text)?> Duration(string description) => new("--duration")
    {
        HelpName = "T",
        Description = description,
        CustomParser = r => Check<(TimeSpan, string)?>(r, v => (RunOptions.ParseDuration(v), v)),
    };

    /// <summary>--param k=v, repeatable; a later k replaces an earlier one.</summary>
    public static Option<Dictionary<string, string>> Params(string description) => new("--param")
    {
        HelpName = "k=v",
        Description = description,
        Arity = ArgumentArity.OneOrMore,
        CustomParser = r =>
        {
            var map = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var token in r.Tokens)
            {
                int k = token.Value.IndexOf('=', StringComparison.Ordinal);
                if (k <= 0)
                {
                    r.AddError($"--param '{token.Value}': expected k=v");
                    return map;
                }
                map[token.Value[..k]] = token.Value[(k + 1)..];
            }
            return map;
        },
    };

    /// <summary>--bug NAME, repeatable: historical bugs switched back in (each named once however often given).</summary>
    public static Option<List<string>> Bugs(string description)
    {
        var option = new Option<List<string>>("--bug")
        {
            HelpName = "NAME",
            Description = description + "\n" + BugList,
            Arity = ArgumentArity.OneOrMore,
            CustomParser = r =>
            {
                var bugs = new List<string>();
                foreach (var token in r.Tokens)
                {
                    if (!DistEmu.Kernel.BugSwitches.Names.ContainsKey(token.Value))
                    {
                        r.AddError($"--bug '{token.Value}': unknown bug switch; expected one of {string.Join(", ", DistEmu.Kernel.BugSwitches.Names.Keys)}");
                        return bugs;
                    }
                    if (!bugs.Contains(token.Value)) bugs.Add(token.Value);
                }
                return bugs;
            },
        };
        option.CompletionSources.Add([.. DistEmu.Kernel.BugSwitches.Names.Keys]);
        return option;
    }

    /// <summary>The --bug names with what each puts back, one a line.</summary>
    private static string BugList => string.Join("\n", DistEmu.Kernel.BugSwitches.Names.Select(b => $"  {b.Key}: {b.Value}"));

    /// <summary>--policies all|a,b (experiment, explore).</summary>
    public static Option<List<FaultPolicy>?> Policies() => new("--policies")
    {
        HelpName = "all|a,b",
        Description = $"fault policies (default: all): {string.Join(", ", FaultPolicies.All.Select(p => $"{p.Name()} ({p.Release()})"))}",
        CustomParser = r => Check(r, ExperimentOptions.ParsePolicies),
    };

    /// <summary>A workload name, offered to completion.</summary>
    public static void CompleteWorkloads(Option option) => option.CompletionSources.Add([.. DistEmu.Kernel.Workloads.Workloads.Names]);

    /// <summary>The preset names, offered to completion (the presets/ folder may be out of reach: then none).</summary>
    public static void CompletePresets(Option option) => option.CompletionSources.Add(_ =>
    {
        try { return MachineLoader.PresetNames().Select(n => new System.CommandLine.Completions.CompletionItem(n)); }
        catch (UsageException) { return []; }
    });

    /// <summary>The option's value if it was given, else null (System.CommandLine makes an empty list of a list option not given).</summary>
    public static T? Given<T>(this ParseResult p, Option<T> option) where T : class? => p.GetResult(option) is null ? null : p.GetValue(option);

    /// <summary>The value of <paramref name="r"/> through <paramref name="convert"/>; a <see cref="UsageException"/> becomes a parse error.</summary>
    public static T? Check<T>(ArgumentResult r, Func<string, T> convert) => DistEmu.Silo.CommandLineError.Checked<T, UsageException>(r, convert);
}
