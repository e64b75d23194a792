namespace DistEmu.Kernel.Sched;

/// <summary>
/// The orleans engine's conservative lookahead over a whole machine (the sim engine's run-ahead rules, for CPUs that
/// learn of each other only through their time keepers). Each CPU in a run of loads, stores and think time has a
/// <see cref="RunClaim"/> and an end: the earliest emulated time it could start an op outside the run or touch anything
/// outside its claim; a CPU outside a run has no claim and its end is its clock. A CPU whose claim meets no other
/// CPU's is <em>cleared</em>: it may run without synchronising while its clock is below the <see cref="Bound"/>, the
/// least end of every CPU (its own included, since past its own end it may touch what another was let run on).
/// Until then no other CPU can touch what it touches, so the order of their work does not matter; everything else
/// keeps the quantum's order. Once a CPU runs an op that leaves entries other CPUs' faults act on (NUMA hinting,
/// migration, swap-out, fork: <see cref="Sim.RunAhead.Taints"/>), nobody is cleared again.
/// A clearance is for one version of a CPU's claim: one given before the claim changed does not cover the new one.
/// </summary>
public sealed class LookaheadLedger
{
    private readonly Dictionary<int, long> _nodeEnds = new();
    private readonly Dictionary<int, (int Node, long Version, RunClaim Claim)> _claims = new();
    private readonly Dictionary<int, List<(int Cpu, long Version)>> _clearedByNode = new();
    private bool _stale = true;

    /// <summary>An op that taints the run was seen: no CPU is cleared from now on.</summary>
    public bool Tainted { get; private set; }

    /// <summary>The least end of any CPU on node <paramref name="node"/> is <paramref name="end"/> (long.MaxValue: none runs).</summary>
    public void NodeEnd(int node, long end) => _nodeEnds[node] = end;

    /// <summary>CPU <paramref name="cpu"/> of <paramref name="node"/> holds claim version <paramref name="version"/>: <paramref name="claim"/>, or null when it is not in a run.</summary>
    public void Claim(int node, int cpu, long version, RunClaim? claim)
    {
        if (claim is null) _claims.Remove(cpu);
        else _claims[cpu] = (node, version, claim);
        _stale = true;
    }

    public void Taint()
    {
        Tainted = true;
        _stale = true;
    }

    /// <summary>The least end of every CPU: how far a cleared CPU may run (long.MinValue when nobody may).</summary>
    public long Bound
    {
        get
        {
            if (Tainted || _nodeEnds.Count == 0) return long.MinValue;
            long least = long.MaxValue;
            foreach (long e in _nodeEnds.Values) least = Math.Min(least, e);
            return least;
        }
    }

    /// <summary>The cleared CPUs of <paramref name="node"/>, each with the version of its claim that was cleared.</summary>
    public IReadOnlyList<(int Cpu, long Version)> ClearedOf(int node)
    {
        if (_stale) Evaluate();
        return _clearedByNode.TryGetValue(node, out var list) ? list : [];
    }

    /// <summary>How far a CPU may run past its quantum: the bound if the version it holds is the one cleared, else nowhere.</summary>
    public static long Grant(long bound, long clearedVersion, long heldVersion) =>
        clearedVersion == heldVersion ? bound : long.MinValue;

    private void Evaluate()
    {
        _stale = false;
        foreach (var list in _clearedByNode.Values) list.Clear();
        if (Tainted) return;
        var cpus = _claims.Keys.ToList();
        var meets = RunClaim.Meetings(cpus.Select(c => _claims[c].Claim).ToList());
        for (int k = 0; k < cpus.Count; k++)
        {
            var (node, version, claim) = _claims[cpus[k]];
            if (!claim.Eligible || meets[k]) continue;
            if (!_clearedByNode.TryGetValue(node, out var list)) _clearedByNode[node] = list = new();
            list.Add((cpus[k], version));
        }
    }
}
