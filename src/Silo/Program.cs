using Microsoft.Extensions.Hosting;

namespace DistEmu.Silo;

/// <summary>The silo program: one silo until SIGTERM/Ctrl-C (the generic host's console lifetime stops it cleanly).</summary>
public static class SiloProgram
{
    /// <summary>Exit codes: 0 stopped cleanly, 1 the silo failed, 2 bad input.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Any(a => a is "-h" or "--help"))
        {
            stdout.WriteLine(SiloSettings.Help);
            return 0;
        }
        SiloSettings s;
        try
        {
            s = SiloSettings.Parse(args);
        }
        catch (SiloArgsException e)
        {
            stderr.WriteLine($"distemu silo: error: {e.Message}");
            return 2;
        }
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
