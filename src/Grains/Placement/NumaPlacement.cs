using System.Collections.Concurrent;
using DistEmu.Abstractions;
using DistEmu.Grains.Support;
using DistEmu.Kernel.Machine;
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
/// Node k of N goes to the silo the machine file's placement map assigns (<see cref="PlacementMap"/>, carried in the
/// run's <see cref="RunConfig.NodeSilos"/>), else to silo k·S/N of the S compatible silos sorted by address (an even
/// spread, the same on every silo for the same silo set). A grain of no node (machine, mm, time keeper) stays on the
/// first silo: the machine grain is placed before any configuration exists to read. The node count and map are the
/// run's (its machine grain's configuration), read once per run and silo.
/// </summary>
public sealed class NumaPlacementDirector(IGrainFactory grains, IClusterMembershipService membership) : IPlacementDirector
{
    private readonly ConcurrentDictionary<string, Task<(int Nodes, int[]? SiloOfNode)>> _runs = new();
    /// <summary>Membership versions for which waiting for every active silo's manifest timed out (not waited for again).</summary>
    private readonly ConcurrentDictionary<MembershipVersion, bool> _incomplete = new();

    /// <summary>How long a placement waits for the manifests of silos that membership already lists as active.</summary>
    public TimeSpan ManifestWait { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The index, among <paramref name="silos"/> silos sorted by address, of the silo of node <paramref name="node"/> of <paramref name="nodes"/>.</summary>
    public static int SiloIndex(int node, int nodes, int silos) =>
        node <= 0 || nodes <= 1 ? 0 : (int)Math.Min(silos - 1, (long)Math.Min(node, nodes - 1) * silos / nodes);

    public async Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var silos = await CompatibleSilos(target, context);
        if (silos.Length == 0) throw new OrleansException($"no compatible silo for {target.GrainIdentity}");
        if (silos.Length == 1) return silos[0];
        var sorted = silos.ToArray();
        Array.Sort(sorted);
        string key = target.GrainIdentity.Key.ToString() ?? "";
        int node = GrainKeys.NodeOf(key);
        if (node < 0) return sorted[0];
        var (nodes, map) = await RunOf(GrainKeys.RunOf(key));
        return sorted[PlacementMap.SiloIndex(map, node, nodes, sorted.Length)];
    }

    /// <summary>
    /// The silos this one may place on. A silo that just joined is active in membership before its grain manifest has
    /// reached this silo, and only then does it count as compatible here. A placement made in that gap would choose from
    /// fewer silos than the other silos choose from, and put a node's grains (or the machine's, the mm's, the wait
    /// graph's) somewhere else than the rest of the run. So placement waits, up to <see cref="ManifestWait"/> once per
    /// membership version, until every active member is compatible.
    /// </summary>
    private async Task<SiloAddress[]> CompatibleSilos(PlacementTarget target, IPlacementContext context)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            var silos = context.GetCompatibleSilos(target);
            var snapshot = membership.CurrentSnapshot;
            int active = snapshot.Members.Values.Count(m => m.Status == SiloStatus.Active);
            if (silos.Length >= active || _incomplete.ContainsKey(snapshot.Version)) return silos;
            if (waited.Elapsed > ManifestWait)
            {
                _incomplete[snapshot.Version] = true;
                return silos;
            }
            await Task.Delay(50);
        }
    }

    private Task<(int, int[]?)> RunOf(string run)
    {
        var task = _runs.GetOrAdd(run, r => Read(r));
        if (task.IsFaulted) _runs.TryRemove(run, out _);
        return task;
    }

    private async Task<(int, int[]?)> Read(string run)
    {
        var config = await grains.GetGrain<IMachineGrain>(run).GetConfig();
        MachineSpec spec = MachineJson.Deserialize(config.MachineJson);
        return (spec.Nodes, config.NodeSilos);
    }
}
