using System.CommandLine;

namespace DistEmu.Silo;

/// <summary>
/// A single-valued option given twice takes its later value (as the hand parsers did), so a response file can set
/// defaults that the rest of the command line overrides. System.CommandLine refuses a second value by default; each
/// such option here takes any number of occurrences, one value each, and its parser reads the last.
/// </summary>
public static class RepeatedOptions
{
    public static void LastOneWins(Command command)
    {
        foreach (var option in command.Options)
            if (option.Arity.MaximumNumberOfValues == 1 && option.Arity.MinimumNumberOfValues == 1)
                option.Arity = ArgumentArity.OneOrMore;
        foreach (var sub in command.Subcommands) LastOneWins(sub);
    }
}
