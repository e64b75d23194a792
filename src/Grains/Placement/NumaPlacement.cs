using System.Collections.Concurrent;
using DistEmu.Abstractions;
using DistEmu.Kernel.Machine;
using DistEmu.Grains.Support;
using Orleans.Placement;
using Orleans.Runtime.Placement;

namespace DistEmu.Grains.Placement;

/// <summary>
/// NUMA-affine placement (DESIGN principle 6): the grains of one emulated NUMA node live on one silo, so cross-silo
/// calls model cross-node traffic. The node comes from the grain's key (<see cref="GrainKeys.NodeOf"/>).
/// </summary>
[Serializable, GenerateSerializer, Immutable, SuppressReferenceTracking]
public sealed class NumaPlacement : PlacementStrategy
{
    public static NumaPlacement Singleton { get; } = new();
}

/// <summary>Places the grain's activations with <see cref="NumaPlacement"/>.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class NumaPlacementAttribute() : PlacementAttribute(NumaPlacement.Singleton);

/// <summary>
/// Node k of N goes to silo k·S/N of the S compatible silos sorted by address (an even spread, the same on every silo
/// for the same silo set). A grain of no node (machine, mm, time keeper, when so placed) goes with node 0. The node
/// count is the run's (its machine grain's configuration), read once per run and silo.
/// </summary>
public sealed class NumaPlacementDirector(IGrainFactory grains) : IPlacementDirector
{
    private readonly ConcurrentDictionary<string, Task<int>> _nodes = new();

    /// <summary>The index, among <paramref name="silos"/> silos sorted by address, of the silo of node <paramref name="node"/> of <paramref name="nodes"/>.</summary>
    public static int SiloIndex(int node, int nodes, int silos) =>
        node <= 0 || nodes <= 1 ? 0 : (int)Math.Min(silos - 1, (long)Math.Min(node, nodes - 1) * silos / nodes);

    public async Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var silos = context.GetCompatibleSilos(target);
        if (silos.Length == 0) throw new OrleansException($"no compatible silo for {target.GrainIdentity}");
        if (silos.Length == 1) return silos[0];
        var sorted = silos.ToArray();
        Array.Sort(sorted);
        string key = target.GrainIdentity.Key.ToString() ?? "";
        int node = GrainKeys.NodeOf(key);
        if (node <= 0) return sorted[0];
        int nodes = await NodesOf(GrainKeys.RunOf(key));
        return sorted[SiloIndex(node, nodes, sorted.Length)];
    }

    private Task<int> NodesOf(string run)
    {
        var task = _nodes.GetOrAdd(run, r => Read(r));
        if (task.IsFaulted) _nodes.TryRemove(run, out _);
        return task;
    }

    private async Task<int> Read(string run)
    {
        var config = await grains.GetGrain<IMachineGrain>(run).GetConfig();
        MachineSpec spec = MachineJson.Deserialize(config.MachineJson);
        return spec.Nodes;
    }
}
