using Orleans;
using Orleans.Concurrency;

namespace DistEmu.Abstractions;

/// <summary>
/// The skew bound (key: run id): no running CPU goes more than the quantum past the slowest running one. A CPU that
/// sleeps on a lock or folio (or a barrier) is not running and holds back no one; its waker's time is where it resumes.
/// </summary>
public interface ITimeKeeperGrain : IGrainWithStringKey
{
    Task Configure(long quantumNs, int[] cpus);
    /// <summary>The caller's CPU is at <paramref name="clock"/>: returns the horizon it may run to, once that covers its clock.</summary>
    Task<long> Sync(int cpu, long clock);
    /// <summary>The CPU sleeps (token identifies this sleep; block and unblock may arrive in either order).</summary>
    [OneWay] Task Block(int cpu, long token);
    [OneWay] Task Unblock(int cpu, long token, long clock);
    Task Done(int cpu);
    /// <summary>The largest difference between a syncing CPU's clock and the slowest running CPU's, in emulated ns.</summary>
    Task<long> MaxSkew();
}
