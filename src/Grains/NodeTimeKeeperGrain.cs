using DistEmu.Abstractions;
using DistEmu.Grains.Placement;
using DistEmu.Grains.Support;
using DistEmu.Kernel.Sched;
using Orleans.Concurrency;

namespace DistEmu.Grains;

/// <summary>
/// The quantum for one emulated node's CPUs (the lower level of Graphite's skew bound, on the node's silo): each CPU
/// reports its clock here when it reaches its horizon and waits until the slowest running CPU of the machine is within
/// the quantum — or, between exact sync points, until its clock is below the lookahead bound while its claim is
/// cleared (<see cref="LookaheadLedger"/>: CPUs whose runs touch nothing in common need not keep each other's order).
/// The node tells the machine's time keeper when its slowest running CPU or the least end of its CPUs moves, and its
/// CPUs' claim changes; it learns the horizon, the bound and which of its CPUs are cleared from it. Sleeping CPUs are
/// left out of the slowest, so a wait for a lock never waits for its own holder's time. Reentrant: Sync calls are
/// parked turns.
/// </summary>
[Reentrant]
[NumaPlacement]
public sealed class NodeTimeKeeperGrain : Grain, INodeTimeKeeperGrain
{
    private long _quantum;
    private int _node;
    private readonly Dictionary<int, long> _clock = new();
    /// <summary>
    /// Each CPU's end as it last reported it itself: in a run, the end it gave; outside one, its clock then. Not the
    /// clocks that grains running part of its ops (or its wake-ups) bring: the CPU may have entered a new run since its
    /// last report, and its clock there says nothing of a claim the keepers have not seen.
    /// </summary>
    private readonly Dictionary<int, long> _end = new();
    private readonly Dictionary<int, ClaimUpdate> _claim = new();
    private readonly List<ClaimUpdate> _claimsToSend = new();
    private readonly Dictionary<int, long> _cleared = new();
    private long _bound = long.MinValue;
    private bool _tainted;
    private bool _taintSent;
    private readonly Dictionary<int, HashSet<long>> _sleeps = new();
    private readonly HashSet<(int, long)> _earlyWakes = new();
    /// <summary>Sleeps ended by a sync from their CPU (it runs) before their Unblock arrived: that Unblock finds nothing more to do.</summary>
    private readonly HashSet<(int, long)> _endedBySync = new();
    private readonly List<(int Cpu, long Clock, bool Exact, TaskCompletionSource<SyncGrant> Go)> _parked = new();
    private long _horizon;
    /// <summary>With <see cref="_horizon"/>: the rank up to which a CPU at exactly that clock is within it.</summary>
    private int _horizonRank;
    /// <summary>Each CPU's task index: which of two CPUs at one emulated ns goes first (the sim engine's order of ties).</summary>
    private readonly Dictionary<int, int> _rank = new();
    private long _horizonSeq;
    private (long Slowest, int SlowestRank, long MinEnd) _reported;
    private long _reportSeq;
    private long _claimsSent;
    private long _maxSkew;
    private long _syncs;
    private long _grants;

    public Task Configure(long quantumNs, int[] cpus, int[] ranks)
    {
        DelayDeactivation(RunLifetime.Hold);
        _quantum = quantumNs;
        _node = GrainKeys.NodeOf(this.GetPrimaryKeyString());
        for (int i = 0; i < cpus.Length; i++) (_clock[cpus[i]], _rank[cpus[i]]) = (0, ranks[i]);
        // Every CPU of the machine starts at 0, task 0 first: the machine's first horizon.
        (_horizon, _horizonRank) = (quantumNs, 0);
        _reported = (0, 0, 0);
        return Task.CompletedTask;
    }

    /// <summary>This node's slowest running CPU, the lowest-ranked of those at that clock ((long.MaxValue, int.MaxValue) when none runs).</summary>
    private (long Clock, int Rank) Slowest()
    {
        (long Clock, int Rank) min = (long.MaxValue, int.MaxValue);
        foreach (var (cpu, clock) in _clock)
        {
            if (_sleeps.TryGetValue(cpu, out var s) && s.Count > 0) continue;
            int rank = _rank.GetValueOrDefault(cpu);
            if (clock < min.Clock || (clock == min.Clock && rank < min.Rank)) min = (clock, rank);
        }
        return min;
    }

    /// <summary>Whether CPU <paramref name="cpu"/> at <paramref name="clock"/> is within the quantum's horizon (ties by rank).</summary>
    private bool WithinHorizon(int cpu, long clock) =>
        clock < _horizon || (clock == _horizon && _rank.GetValueOrDefault(cpu) <= _horizonRank);

    /// <summary>
    /// The least end of this node's CPUs, sleeping ones included (a sleeper wakes at its waker's time, which may lie
    /// anywhere past its own clock), each as the CPU last reported it itself (<see cref="_end"/>).
    /// </summary>
    private long MinEnd()
    {
        long min = long.MaxValue;
        foreach (var cpu in _clock.Keys)
        {
            long end = _end.GetValueOrDefault(cpu);
            if (end < min) min = end;
        }
        return min;
    }

    /// <summary>Tells the machine what moved (the slowest CPU, the least end, claims, a taint), then lets go whoever is now covered.</summary>
    private void Changed()
    {
        var slowest = Slowest();
        var now = (slowest.Clock, slowest.Rank, MinEnd());
        if (now != _reported || _claimsToSend.Count > 0 || _tainted != _taintSent)
        {
            _taintSent = _tainted;
            _reported = now;
            var claims = _claimsToSend.ToArray();
            _claimsToSend.Clear();
            _claimsSent += claims.Length;
            _ = GrainFactory.GetGrain<ITimeKeeperGrain>(GrainKeys.RunOf(this.GetPrimaryKeyString())).Report(_node, ++_reportSeq, now.Item1, now.Item2, now.Item3, claims, _claimsSent, _tainted);
        }
        Release();
    }

    /// <summary>How far CPU <paramref name="cpu"/> may run past the horizon: the bound, if the claim it holds now is the one the machine cleared.</summary>
    private long Grant(int cpu) =>
        _claim.TryGetValue(cpu, out var c) && c.InRun && _cleared.TryGetValue(cpu, out long v) ? LookaheadLedger.Grant(_bound, v, c.Version) : long.MinValue;

    private bool MayGo(int cpu, long clock, bool exact) => WithinHorizon(cpu, clock) || (!exact && clock < Grant(cpu));

    private SyncGrant GrantOf(int cpu)
    {
        // No CPU runs, as far as the machine has heard: yet this one does (a wake whose Unblock is still on its way, or
        // the others' reports). A horizon without end would let it run lax until it next asks, which it never would:
        // it gets one quantum from its own clock instead and asks again.
        var (horizon, rank) = _horizon == long.MaxValue
            ? (SaturatingAdd(_clock.GetValueOrDefault(cpu), _quantum), _rank.GetValueOrDefault(cpu))
            : (_horizon, _horizonRank);
        var g = new SyncGrant { Horizon = horizon, HorizonRank = rank, FreeUntil = Grant(cpu) };
        // Counted only when it lets the CPU go further than the horizon from where it stands.
        if (g.FreeUntil > Math.Max(g.Horizon, _clock.GetValueOrDefault(cpu))) _grants++;
        return g;
    }

    private static long SaturatingAdd(long a, long b) => a > long.MaxValue - b ? long.MaxValue : a + b;

    private void Release()
    {
        for (int i = _parked.Count - 1; i >= 0; i--)
        {
            var p = _parked[i];
            if (!MayGo(p.Cpu, p.Clock, p.Exact)) continue;
            p.Go.SetResult(GrantOf(p.Cpu));
            _parked.RemoveAt(i);
        }
    }

    public Task<SyncGrant> Sync(int cpu, long clock, bool exact, LookaheadReport? report, long allowed)
    {
        _syncs++;
        // A CPU that syncs runs: a sleep still recorded for it was ended by a wake whose Unblock is still on its way (the
        // two one-way messages arrive in any order). Counted as asleep, it would hold no one back, and with every other
        // CPU asleep the horizon would open to the end of time for the CPU that woke.
        if (_sleeps.TryGetValue(cpu, out var sleeps) && sleeps.Count > 0)
        {
            foreach (long token in sleeps) _endedBySync.Add((cpu, token));
            sleeps.Clear();
        }
        if (_clock.TryGetValue(cpu, out var old) && clock < old) clock = old;
        // The skew: how far past what it was allowed (its horizon, or its grant) the CPU got before it asked, plus the
        // quantum: one op's overshoot (a munmap's zap of a page-table page is one step) shows here.
        if (allowed != long.MaxValue && _quantum != long.MaxValue) _maxSkew = Math.Max(_maxSkew, clock - allowed + _quantum);
        _clock[cpu] = clock;
        if (report != null)
        {
            // A report on a claim older than the one held here says nothing of where the CPU stands now.
            bool newer = !_claim.TryGetValue(cpu, out var held) || held.Version < report.Claim.Version;
            if (newer || held.Version == report.Claim.Version)
                _end[cpu] = report.Claim.InRun ? Math.Max(report.End, clock) : clock;
            if (newer)
            {
                _claim[cpu] = report.Claim;
                _claimsToSend.Add(report.Claim);
            }
            _tainted |= report.Tainted;
        }
        Changed();
        if (MayGo(cpu, clock, exact)) return Task.FromResult(GrantOf(cpu));
        var go = new TaskCompletionSource<SyncGrant>(TaskCreationOptions.RunContinuationsAsynchronously);
        _parked.Add((cpu, clock, exact, go));
        return go.Task;
    }

    public Task Horizon(long seq, long horizon, int horizonRank, long bound, int[] clearedCpus, long[] clearedVersions)
    {
        if (seq <= _horizonSeq) return Task.CompletedTask; // an older push overtaken by a newer one
        _horizonSeq = seq;
        (_horizon, _horizonRank) = (horizon, horizonRank);
        _bound = bound;
        _cleared.Clear();
        for (int i = 0; i < clearedCpus.Length; i++) _cleared[clearedCpus[i]] = clearedVersions[i];
        Release();
        return Task.CompletedTask;
    }

    public Task Block(int cpu, long token)
    {
        if (!_earlyWakes.Remove((cpu, token)))
        {
            if (!_sleeps.TryGetValue(cpu, out var s)) _sleeps[cpu] = s = new HashSet<long>();
            s.Add(token);
        }
        Changed();
        return Task.CompletedTask;
    }

    public Task Unblock(int cpu, long token, long clock)
    {
        if (!(_sleeps.TryGetValue(cpu, out var s) && s.Remove(token)) && !_endedBySync.Remove((cpu, token)))
            _earlyWakes.Add((cpu, token));
        if (_clock.TryGetValue(cpu, out var old) && clock > old) _clock[cpu] = clock;
        Changed();
        return Task.CompletedTask;
    }

    public Task Done(int cpu)
    {
        _clock.Remove(cpu);
        _sleeps.Remove(cpu);
        if (_claim.TryGetValue(cpu, out var held) && held.InRun)
        {
            var gone = new ClaimUpdate { Cpu = cpu, Version = held.Version + 1, InRun = false, Files = [] };
            _claim[cpu] = gone;
            _claimsToSend.Add(gone);
        }
        Changed();
        return Task.CompletedTask;
    }

    public Task<QuantumStats> MaxSkew()
    {
        DelayDeactivation(RunLifetime.Release);
        return Task.FromResult(new QuantumStats { MaxSkewNs = _maxSkew, Syncs = _syncs, LookaheadGrants = _grants });
    }
}
