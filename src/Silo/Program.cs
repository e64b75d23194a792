using System.CommandLine;
using Microsoft.Extensions.DependencyInjection;
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

    /// <summary>
    /// How long after SIGTERM the silo may take to leave the cluster before the process ends anyway. Orleans' stop does
    /// not always honour the host's shutdown timeout (SiloHosting: 10 s): with the membership store gone (redis stopped
    /// first) it was still stopping after 90 s, past any orchestrator's grace period (Kubernetes' is 30 s).
    /// </summary>
    private static readonly TimeSpan StopBound = TimeSpan.FromSeconds(20);

    /// <summary>
    /// Runs one silo with settings already checked (distemu silo parses them with its own command line). The process is
    /// the silo's: when its stop outlasts <see cref="StopBound"/> it ends the process itself.
    /// </summary>
    public static async Task<int> RunAsync(SiloSettings s, TextWriter stdout, TextWriter stderr)
    {
        try
        {
            var host = SiloHosting.BuildSilo(s);
            await host.StartAsync();
            stdout.WriteLine($"silo up: {s.Advertise}:{s.SiloPort} (gateway {s.GatewayPort}), cluster {s.ClusterId}, service {s.ServiceId}, clustering {s.Clustering}{(s.Membership is { } m ? " at " + m : "")}");
            stdout.Flush();
            var stopping = new TaskCompletionSource();
            host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.Register(() => stopping.TrySetResult());
            var shutdown = host.WaitForShutdownAsync();
            await Task.WhenAny(shutdown, stopping.Task);
            if (await Task.WhenAny(shutdown, Task.Delay(StopBound)) != shutdown)
            {
                stderr.WriteLine($"distemu silo: stopped without leaving the cluster cleanly ({StopBound.TotalSeconds:F0} s after SIGTERM; is the membership store gone?): the other silos will find this one dead through membership");
                stderr.Flush();
                stdout.Flush();
                Environment.Exit(0); // the host's own threads may never let the process end
            }
            host.Dispose();
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
