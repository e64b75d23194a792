using System.CommandLine;
using Microsoft.Extensions.Hosting;

namespace DistEmu.Silo;

/// <summary>The silo program: one silo until SIGTERM/Ctrl-C (the generic host's console lifetime stops it cleanly).</summary>
public static class SiloProgram
{
    /// <summary>The silo program's command line: its options and generated help, named as distemu's silo command.</summary>
    public static RootCommand RootCommand(SiloCommandLine options)
    {
        var root = new RootCommand(SiloCommandLine.Description) { HelpName = "distemu silo" };
        options.AddTo(root);
        RepeatedOptions.LastOneWins(root);
        return root;
    }

    /// <summary>Exit codes: 0 stopped cleanly, 1 the silo failed, 2 bad input.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var options = new SiloCommandLine();
        var parsed = RootCommand(options).Parse(args);
        if (CommandLineError.Of(parsed, "distemu silo") is { } error)
        {
            stderr.WriteLine($"distemu silo: error: {error.Message}");
            if (error.Suggestions.Count > 0) stderr.WriteLine($"distemu silo: did you mean {CommandLineError.Either(error.Suggestions)}?");
            return 2;
        }
        if (parsed.Action is not null)
            return parsed.Invoke(new() { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false }); // --help, --version, [suggest]
        SiloSettings s;
        try
        {
            s = options.Read(parsed);
        }
        catch (SiloArgsException e)
        {
            stderr.WriteLine($"distemu silo: error: {e.Message}");
            return 2;
        }
        return await RunAsync(s, stdout, stderr);
    }

    /// <summary>Runs one silo with settings already checked (distemu silo parses them with its own command line).</summary>
    public static async Task<int> RunAsync(SiloSettings s, TextWriter stdout, TextWriter stderr)
    {
        try
        {
            using var host = SiloHosting.BuildSilo(s);
            await host.StartAsync();
            stdout.WriteLine($"silo up: {s.Advertise}:{s.SiloPort} (gateway {s.GatewayPort}), cluster {s.ClusterId}, service {s.ServiceId}, clustering {s.Clustering}{(s.Membership is { } m ? " at " + m : "")}");
            stdout.Flush();
            await host.WaitForShutdownAsync();
            return 0;
        }
        catch (Exception e)
        {
            stderr.WriteLine($"distemu silo: error: the silo failed: {e.GetType().Name}: {e.Message}");
            stderr.WriteLine(e.ToString());
            return 1;
        }
    }
}

internal static class Program
{
    public static Task<int> Main(string[] args) => SiloProgram.RunAsync(args, Console.Out, Console.Error);
}
