using DistEmu.Client;

namespace DistEmu.Cluster.Tests;

/// <summary>
/// A silo told to stop (SIGTERM) stops, even when its membership store went first (a deploy that stops redis before the
/// silos): Orleans' own stop then never ends, and an orchestrator would have to kill the silo. It says so and exits 0.
/// </summary>
public sealed class SiloStopTests
{
    [Fact]
    public async Task A_silo_whose_redis_is_gone_still_stops_on_sigterm_and_says_it_left_uncleanly()
    {
        // One silo process on a redis-server of its own (LocalCluster starts both and waits until the silo is active).
        using var cluster = await LocalCluster.StartAsync(1, membership: null, "stop-" + Guid.NewGuid().ToString("N")[..8], TimeSpan.FromMinutes(2));
        var silo = cluster.Silos[0];
        var redis = cluster.Redis!;

        redis.Kill();
        await redis.WaitForExitAsync();
        LocalCluster.Terminate(silo);

        // The silo gives Orleans 20 s to leave the cluster; a generous cap here only keeps a hang from stalling the suite.
        using var cap = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await silo.WaitForExitAsync(cap.Token);
        silo.WaitForExit(); // the output readers are done
        Assert.True(silo.ExitCode == 0, $"exit code {silo.ExitCode}:\n{cluster.Log()}");
        Assert.Contains("stopped without leaving the cluster cleanly", cluster.Log());
    }
}
