namespace DistEmu.Cluster.Tests;

/// <summary>
/// <c>run --cluster</c> on a membership table that lists no live silo says so in one line and exits 1, instead of
/// waiting half a minute and printing a cancelled task's stack trace.
/// </summary>
public sealed class NoSiloTests
{
    [Fact]
    public void A_run_on_a_cluster_with_no_registered_silo_says_so_in_one_line_and_exits_1()
    {
        string clusterId = "nobody-" + Guid.NewGuid().ToString("N")[..12];
        var (code, _, stderr) = Cli.Run("run", "--cluster", "redis://" + SiloProcesses.RequireRedis(), "--cluster-id", clusterId,
            "--preset", "small", "--ops", "100");
        Assert.Equal(1, code);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var line = Assert.Single(lines);
        Assert.StartsWith("distemu: error: no silo is registered as active in the membership table redis://", line);
        Assert.Contains($"cluster {clusterId}", line);
    }
}
