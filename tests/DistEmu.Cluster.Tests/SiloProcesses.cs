using System.Diagnostics;
using DistEmu.Client;
using DistEmu.Silo;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace DistEmu.Cluster.Tests;

/// <summary>
/// A cluster of silo processes (<see cref="LocalCluster"/>) on a membership table — by default the redis server named by
/// DISTEMU_TEST_REDIS, or a PostgreSQL database (adonet clustering; scripts/test.sh starts both servers) — with a
/// cluster id of its own, and a cluster client on it. Dispose kills the processes.
/// </summary>
public sealed class SiloProcesses : IDisposable
{
    public const string RedisVariable = "DISTEMU_TEST_REDIS";
    public const string PostgresVariable = "DISTEMU_TEST_POSTGRES";

    private readonly LocalCluster _cluster;

    public Membership Membership => _cluster.Membership;
    /// <summary>The redis server's HOST:PORT (redis membership).</summary>
    public string Redis => Membership.Address;
    /// <summary>What --cluster takes: redis://HOST:PORT or the postgres:// URL.</summary>
    public string Connection => Membership.Kind == "redis" ? "redis://" + Membership.Address : Membership.Address;
    public string ClusterId => _cluster.ClusterId;
    public ClusterTarget Target => _cluster.Target;
    /// <summary>The silo processes, in start order.</summary>
    public IReadOnlyList<Process> Processes => _cluster.Silos;
    public IReadOnlyList<int> SiloPorts => _cluster.SiloPorts;
    public IClusterClient Client => _cluster.Client;

    public static string RequireRedis() => Environment.GetEnvironmentVariable(RedisVariable) is { Length: > 0 } r ? r
        : throw new InvalidOperationException($"{RedisVariable} is not set: the cluster tests need a redis server (HOST:PORT); scripts/test.sh installs and starts one");

    /// <summary>The PostgreSQL server for the adonet tests, as postgres://USER@HOST:PORT/DATABASE (a superuser: tests create databases).</summary>
    public static string RequirePostgres() => Environment.GetEnvironmentVariable(PostgresVariable) is { Length: > 0 } p ? p
        : throw new InvalidOperationException($"{PostgresVariable} is not set: the PostgreSQL membership tests need a server (postgres://USER@HOST:PORT/DATABASE); scripts/test.sh installs and starts one");

    public SiloProcesses(int count, Membership? membership = null)
    {
        membership ??= Membership.Redis(RequireRedis(), m => new InvalidOperationException(m), RedisVariable);
        _cluster = LocalCluster.StartAsync(count, membership, "test-" + Guid.NewGuid().ToString("N")[..12], TimeSpan.FromSeconds(60)).GetAwaiter().GetResult();
    }

    public string Log() => _cluster.Log();

    /// <summary>Kills the silo process at <paramref name="siloAddress"/> (as ClusterStatus names it), with no goodbye.</summary>
    public void Kill(string siloAddress)
    {
        int index = SiloPorts.ToList().IndexOf(Cli.PortOf(siloAddress));
        if (index < 0) throw new InvalidOperationException($"no silo process for {siloAddress}");
        Processes[index].Kill(entireProcessTree: true);
    }

    public void Dispose() => _cluster.Dispose();
}
