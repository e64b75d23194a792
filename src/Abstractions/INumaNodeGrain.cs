using Orleans;

namespace DistEmu.Abstractions;

/// <summary>A NUMA node's frames (key: "run/nodeN"): the buddy allocator the per-CPU lists refill from.</summary>
public interface INumaNodeGrain : IGrainWithStringKey
{
    Task<long[]> AllocBulk(int max);
    Task Free(long[] frames);
    Task<StatsMessage> GetStats();
    /// <summary>The silo this activation lives on (for placement checks).</summary>
    Task<string> Where();
}
