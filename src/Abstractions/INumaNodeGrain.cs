using Orleans;
using Orleans.Concurrency;

namespace DistEmu.Abstractions;

/// <summary>
/// A NUMA node's frames (key: "run/nodeN"): the buddy allocator the per-CPU lists refill from. It is also where its
/// CPUs' progress and counters meet, as the kernel's per-node counters do, so nothing fans in from every CPU at once.
/// </summary>
public interface INumaNodeGrain : IGrainWithStringKey
{
    /// <summary>rmqueue_bulk: up to <paramref name="max"/> frames, and how many the node has free after it.</summary>
    Task<FrameBatch> AllocBulk(int max);
    /// <summary>Frames back; an entry tagged with NumaNode.HugeFreeTag is a THP's whole block.</summary>
    Task Free(long[] frames);
    /// <summary>An order-9 block (a THP): its head frame, or -1 if the node has none free.</summary>
    Task<long> AllocHuge();
    /// <summary>
    /// Start (or, with <paramref name="attach"/>, attach) task <c>tasks[i]</c> on CPU <c>cpus[i]</c> of this node, a
    /// bounded number at a time; returns once every one has. Interleaves with the allocator, which the started tasks use.
    /// </summary>
    [AlwaysInterleave] Task StartCpus(int[] tasks, int[] cpus, bool attach);
    Task<StatsMessage> GetStats();
    /// <summary>
    /// A CPU of this node says how far its task got (ops begun, entries into the fault handler, clock); <paramref name="done"/>
    /// at its end, awaited before the CPU tells the machine, so a run's last status holds every CPU's final count.
    /// </summary>
    [AlwaysInterleave] Task Progress(int cpu, long ops, long faults, long clock, bool done);
    /// <summary>The sums of this node's CPUs' latest reports; with <paramref name="detail"/>, the CPUs still running, least advanced first.</summary>
    [AlwaysInterleave] Task<NodeProgress> GetProgress(bool detail);
    /// <summary>
    /// This node's counters merged with those of <paramref name="cpus"/> and of mm <paramref name="mmId"/>'s VMA grains
    /// <paramref name="vmaIds"/> (the ones placed on this node), read a few at a time. A grain whose silo Orleans declared
    /// dead is named in <see cref="StatsMessage.Lost"/>; a slow one is waited for.
    /// </summary>
    Task<StatsMessage> Collect(int[] cpus, int mmId, int[] vmaIds);
    /// <summary>The silo this activation lives on (for placement checks).</summary>
    Task<string> Where();
}

/// <summary>Frames taken from a node's free list, and how many it has free after it.</summary>
[GenerateSerializer, Immutable]
public sealed class FrameBatch
{
    [Id(0)] public long[] Frames = [];
    [Id(1)] public long FreeAfter;
}
