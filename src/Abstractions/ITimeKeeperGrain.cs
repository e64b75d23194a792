using Orleans;
using Orleans.Concurrency;

namespace DistEmu.Abstractions;

/// <summary>
/// The skew bound at the top of the hierarchy (key: run id): the machine's time keeper hears only from the node time
/// keepers (<see cref="INodeTimeKeeperGrain"/>) — each node's slowest running CPU — never from the CPUs, and tells
/// every node the horizon (slowest node + quantum) whenever it moves.
/// </summary>
public interface ITimeKeeperGrain : IGrainWithStringKey
{
    /// <summary>The nodes that run CPUs of this run (each starts with its slowest CPU at emulated time 0).</summary>
    Task Configure(long quantumNs, int[] nodes);

    /// <summary>Node <paramref name="node"/>'s slowest running CPU is at <paramref name="slowest"/> (long.MaxValue: none runs); reports may arrive out of order, <paramref name="seq"/> orders them.</summary>
    [OneWay] Task Report(int node, long seq, long slowest);

    /// <summary>The largest skew any node time keeper measured: a syncing CPU's clock minus the slowest running CPU's it knew of, in emulated ns.</summary>
    Task<long> MaxSkew();
}

/// <summary>
/// The skew bound for the CPUs of one emulated node (key: <see cref="GrainKeys.TimeKeeper"/>, on that node's silo):
/// no running CPU goes more than the quantum past the slowest running CPU of the machine. A CPU that sleeps on a lock
/// or folio (or a barrier) is not running and holds back no one; its waker's time is where it resumes.
/// </summary>
public interface INodeTimeKeeperGrain : IGrainWithStringKey
{
    Task Configure(long quantumNs, int[] cpus);
    /// <summary>The caller's CPU is at <paramref name="clock"/>: returns the horizon it may run to, once that covers its clock.</summary>
    Task<long> Sync(int cpu, long clock);
    /// <summary>The CPU sleeps (token identifies this sleep; block and unblock may arrive in either order).</summary>
    [OneWay] Task Block(int cpu, long token);
    [OneWay] Task Unblock(int cpu, long token, long clock);
    Task Done(int cpu);
    /// <summary>From the machine's time keeper: the horizon is now <paramref name="horizon"/> (pushes may arrive out of order; <paramref name="seq"/> orders them).</summary>
    [OneWay] Task Horizon(long seq, long horizon);
    /// <summary>The largest difference between a syncing CPU's clock and the slowest running CPU's this node knew of, in emulated ns.</summary>
    Task<long> MaxSkew();
}
