using System.CommandLine;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;
using DistEmu.Replay;
using DistEmu.Silo;

namespace DistEmu.Client;

/// <summary>
/// The distemu command line (System.CommandLine): generated help per command, typo corrections, shell completion
/// (the [suggest] directive) and response files (@file). Exit codes: 0 done, 1 the run failed, 2 bad input, which is
/// one line "distemu: error: what and where" (DESIGN.md "Command line").
/// </summary>
public static class Cli
{
    public const long DefaultOps = 20_000;

    private const string Description = "distemu — emulate large NUMA machines at the level of the Linux mm fault/locking protocol";

    /// <summary>The command tree; its actions write to <paramref name="stdout"/> and <paramref name="stderr"/>.</summary>
    internal static RootCommand Commands(TextWriter stdout, TextWriter stderr)
    {
        var root = new RootCommand(Description) { HelpName = "distemu" };
        root.Subcommands.Add(new RunCommandLine().Run(o => RunExecution.Run(o, stdout, stderr)));
        root.Subcommands.Add(new RunCommandLine().Replay(o => RunExecution.Run(o, stdout, stderr)));
        root.Subcommands.Add(PresetsCommandLine.Create(stdout));
        root.Subcommands.Add(new ExperimentCommandLine().Create(o => ExperimentCommand.Run(o, stdout, stderr)));
        root.Subcommands.Add(new ExploreCommandLine().Create(o => ExploreCommand.Run(o, stdout, stderr)));
        root.Subcommands.Add(ClusterCommandLine.Create(stdout));
        root.Subcommands.Add(DbCommandLine.Create(stdout, stderr));
        root.Subcommands.Add(SiloSubcommand.Create(stdout, stderr));
        // `distemu help` as before; bare `distemu` shows the same help but is a usage error (exit 2).
        var help = new Command("help", "show this help") { Hidden = true };
        help.SetAction(_ => ShowHelp(root, stdout));
        root.Subcommands.Add(help);
        RepeatedOptions.LastOneWins(root);
        root.SetAction(_ =>
        {
            ShowHelp(root, stdout);
            return 2;
        });
        return root;
    }

    private static int ShowHelp(RootCommand root, TextWriter stdout) =>
        root.Parse(["--help"]).Invoke(new InvocationConfiguration { Output = stdout, Error = TextWriter.Null });

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        try
        {
            var parsed = Commands(stdout, stderr).Parse(args);
            if (CommandLineError.Of(parsed, "distemu") is { } error)
            {
                stderr.WriteLine($"distemu: error: {error.Message}");
                if (error.Suggestions.Count > 0) stderr.WriteLine($"distemu: did you mean {CommandLineError.Either(error.Suggestions)}?");
                return 2;
            }
            // Ctrl-C is the commands' own (each keeps partial results); exceptions are mapped to exit codes below.
            return parsed.Invoke(new InvocationConfiguration
            {
                Output = stdout,
                Error = stderr,
                EnableDefaultExceptionHandler = false,
                ProcessTerminationTimeout = null,
            });
        }
        catch (UsageException e)
        {
            stderr.WriteLine($"distemu: error: {e.Message}");
            return 2;
        }
        catch (SiloArgsException e)
        {
            stderr.WriteLine($"distemu: error: {e.Message}");
            return 2;
        }
        catch (KernelConfigException e)
        {
            stderr.WriteLine($"distemu: error: {e.Message}");
            return 2;
        }
        catch (PerfTraceFormatException e)
        {
            stderr.WriteLine($"distemu: error: {e.Message} (--lenient skips such lines)");
            return 2;
        }
        catch (ClusterUnreachableException e)
        {
            stderr.WriteLine($"distemu: error: {e.Message}");
            return 1;
        }
        catch (Exception e)
        {
            stderr.WriteLine($"distemu: error: the run failed: {e.GetType().Name}: {e.Message}");
            stderr.WriteLine(e.ToString());
            return 1;
        }
    }
}
