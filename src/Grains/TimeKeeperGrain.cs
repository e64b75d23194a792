using DistEmu.Abstractions;
using DistEmu.Grains.Placement;
using DistEmu.Grains.Support;
using DistEmu.Kernel.Sched;
using Orleans.Concurrency;

namespace DistEmu.Grains;

/// <summary>
/// The top of the quantum hierarchy (Graphite's skew bound, node → machine): it keeps each node's slowest running CPU
/// and least end, as the node time keepers report them, and the machine's lookahead ledger (every CPU's claim): the
/// horizon is the slowest node plus the quantum, and a CPU whose claim meets no other may run to the least end of any
/// CPU (<see cref="LookaheadLedger"/>). Each push to a node is one evaluation — horizon, bound and that node's cleared
/// CPUs together — and goes out when any of them moves. So it hears from the nodes, not from every CPU. Reentrant:
/// MaxSkew awaits the nodes.
/// </summary>
[Reentrant]
[NumaPlacement]
public sealed class TimeKeeperGrain : Grain, ITimeKeeperGrain
{
    private long _quantum;
    private readonly Dictionary<int, (long Seq, long Slowest, int Rank)> _nodes = new();
    /// <summary>
    /// Per node: claim changes received so far, and the newest least end with the claim count it was computed with. A
    /// least end is used only once every claim it was computed with has arrived: a report that overtook an older one
    /// may count on a CPU being in a run whose claim is still on its way, and clearing others against it would let them
    /// run into that claim.
    /// </summary>
    private readonly Dictionary<int, (long Received, long MinEnd, long ClaimsSent)> _ends = new();
    private readonly Dictionary<int, long> _claimVersions = new();
    private readonly LookaheadLedger _ledger = new();
    /// <summary>What each node was last told: horizon, bound, cleared CPUs.</summary>
    private readonly Dictionary<int, ((long, int) Horizon, long Bound, (int Cpu, long Version)[] Cleared)> _told = new();
    private long _pushes;

    public Task Configure(long quantumNs, int[] nodes)
    {
        DelayDeactivation(RunLifetime.Hold);
        _quantum = quantumNs;
        foreach (int n in nodes)
        {
            _nodes[n] = (0, 0, 0);
            _ends[n] = (0, 0, 0);
            _ledger.NodeEnd(n, 0);
            _told[n] = (Horizon(), long.MinValue, []);
        }
        return Task.CompletedTask;
    }

    /// <summary>
    /// The slowest running CPU (the lowest-ranked at that clock) + the quantum, with its rank: a CPU at a clock below
    /// it, or at it and ranked no higher, may go ((long.MaxValue, int.MaxValue) when no CPU runs). So CPUs at one clock
    /// meet the horizon in task order, as the sim engine takes its events (with a quantum of 1, page-fault1 in lockstep
    /// gives the sim engine's results exactly).
    /// </summary>
    private (long Clock, int Rank) Horizon()
    {
        (long Clock, int Rank) min = (long.MaxValue, int.MaxValue);
        foreach (var (_, slowest, rank) in _nodes.Values)
            if (slowest < min.Clock || (slowest == min.Clock && rank < min.Rank)) min = (slowest, rank);
        return min.Clock == long.MaxValue ? min : (min.Clock + _quantum, min.Rank);
    }

    public Task Report(int node, long seq, long slowest, int slowestRank, long minEnd, ClaimUpdate[] claims, long claimsSent, bool tainted)
    {
        // Claims are ordered by their own versions, whatever order the reports carrying them arrive in.
        foreach (var c in claims)
        {
            if (_claimVersions.TryGetValue(c.Cpu, out long known) && known >= c.Version) continue;
            _claimVersions[c.Cpu] = c.Version;
            _ledger.Claim(node, c.Cpu, c.Version, c.InRun ? new RunClaim(c.Lo, c.Hi, c.Files ?? [], c.Eligible) : null);
        }
        if (tainted && !_ledger.Tainted) _ledger.Taint();
        var ends = _ends.GetValueOrDefault(node);
        ends.Received += claims.Length;
        if (!_nodes.TryGetValue(node, out var known2) || seq > known2.Seq) // an older report overtaken by a newer one keeps only its claims
        {
            _nodes[node] = (seq, slowest, slowestRank);
            (ends.MinEnd, ends.ClaimsSent) = (minEnd, claimsSent);
        }
        _ends[node] = ends;
        // The node's least end only grows, so keeping the last one whose claims have all arrived is the safe side.
        if (ends.Received >= ends.ClaimsSent) _ledger.NodeEnd(node, ends.MinEnd);
        Push();
        return Task.CompletedTask;
    }

    /// <summary>One evaluation of the machine, to every node for which it changed anything.</summary>
    private void Push()
    {
        var horizon = Horizon();
        long bound = _ledger.Bound;
        string run = this.GetPrimaryKeyString();
        foreach (int n in _nodes.Keys)
        {
            var cleared = _ledger.ClearedOf(n);
            var told = _told[n];
            bool sameCleared = told.Cleared.Length == cleared.Count && told.Cleared.SequenceEqual(cleared);
            // The bound matters to a node only while one of its CPUs is cleared.
            if (told.Horizon == horizon && sameCleared && (told.Bound == bound || cleared.Count == 0)) continue;
            var now = (horizon, bound, cleared.ToArray());
            _told[n] = now;
            _ = GrainFactory.GetGrain<INodeTimeKeeperGrain>(GrainKeys.TimeKeeper(run, n))
                .Horizon(++_pushes, horizon.Clock, horizon.Rank, bound, now.Item3.Select(c => c.Cpu).ToArray(), now.Item3.Select(c => c.Version).ToArray());
        }
    }

    public async Task<QuantumStats> MaxSkew()
    {
        DelayDeactivation(RunLifetime.Release);
        string run = this.GetPrimaryKeyString();
        var nodes = await Task.WhenAll(_nodes.Keys.Select(n => GrainFactory.GetGrain<INodeTimeKeeperGrain>(GrainKeys.TimeKeeper(run, n)).MaxSkew()));
        return new QuantumStats
        {
            MaxSkewNs = nodes.Select(s => s.MaxSkewNs).DefaultIfEmpty(0).Max(),
            Syncs = nodes.Sum(s => s.Syncs),
            LookaheadGrants = nodes.Sum(s => s.LookaheadGrants),
        };
    }
}
