using Orleans;
using Orleans.Concurrency;

namespace DistEmu.Abstractions;

/// <summary>A NUMA node's frames (key: "run/nodeN"): the buddy allocator the per-CPU lists refill from.</summary>
public interface INumaNodeGrain : IGrainWithStringKey
{
    Task<long[]> AllocBulk(int max);
    Task Free(long[] frames);
    /// <summary>
    /// Start (or, with <paramref name="attach"/>, attach) task <c>tasks[i]</c> on CPU <c>cpus[i]</c> of this node, a
    /// bounded number at a time; returns once every one has. Interleaves with the allocator, which the started tasks use.
    /// </summary>
    [AlwaysInterleave] Task StartCpus(int[] tasks, int[] cpus, bool attach);
    Task<StatsMessage> GetStats();
    /// <summary>The silo this activation lives on (for placement checks).</summary>
    Task<string> Where();
}
