using DistEmu.Abstractions;
using DistEmu.Grains.Placement;
using DistEmu.Grains.Support;
using Orleans.Concurrency;

namespace DistEmu.Grains;

/// <summary>
/// The top of the quantum hierarchy (Graphite's skew bound, node → machine): it keeps only each node's slowest
/// running CPU, as the node time keepers report it, and pushes the horizon — the slowest node plus the quantum — to
/// every node whenever it moves. So per quantum it hears from the nodes, not from every CPU. Reentrant: MaxSkew
/// awaits the nodes.
/// </summary>
[Reentrant]
[NumaPlacement]
public sealed class TimeKeeperGrain : Grain, ITimeKeeperGrain
{
    private long _quantum;
    private readonly Dictionary<int, (long Seq, long Slowest)> _nodes = new();
    private long _horizon;
    private long _pushes;

    public Task Configure(long quantumNs, int[] nodes)
    {
        DelayDeactivation(RunLifetime.Hold);
        _quantum = quantumNs;
        foreach (int n in nodes) _nodes[n] = (0, 0);
        _horizon = Horizon();
        return Task.CompletedTask;
    }

    /// <summary>The slowest running node + quantum (long.MaxValue when no CPU runs).</summary>
    private long Horizon()
    {
        long min = long.MaxValue;
        foreach (var (_, slowest) in _nodes.Values) min = Math.Min(min, slowest);
        return min == long.MaxValue ? long.MaxValue : min + _quantum;
    }

    public Task Report(int node, long seq, long slowest)
    {
        if (_nodes.TryGetValue(node, out var known) && seq <= known.Seq) return Task.CompletedTask; // an older report overtaken by a newer one
        _nodes[node] = (seq, slowest);
        long h = Horizon();
        if (h != _horizon)
        {
            _horizon = h;
            long push = ++_pushes;
            string run = this.GetPrimaryKeyString();
            foreach (int n in _nodes.Keys)
                _ = GrainFactory.GetGrain<INodeTimeKeeperGrain>(GrainKeys.TimeKeeper(run, n)).Horizon(push, h);
        }
        return Task.CompletedTask;
    }

    public async Task<long> MaxSkew()
    {
        DelayDeactivation(RunLifetime.Release);
        string run = this.GetPrimaryKeyString();
        var skews = await Task.WhenAll(_nodes.Keys.Select(n => GrainFactory.GetGrain<INodeTimeKeeperGrain>(GrainKeys.TimeKeeper(run, n)).MaxSkew()));
        return skews.DefaultIfEmpty(0).Max();
    }
}
