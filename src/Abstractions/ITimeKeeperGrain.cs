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

    /// <summary>
    /// Node <paramref name="node"/>'s slowest running CPU is at <paramref name="slowest"/> and the least end of its CPUs
    /// (the earliest time one could leave its run, or its clock outside a run) is <paramref name="minEnd"/>
    /// (long.MaxValue: none runs); <paramref name="claims"/> are its CPUs' claims that changed since its last report.
    /// Reports may arrive out of order: <paramref name="seq"/> orders the clocks, each claim's version orders the claims,
    /// and <paramref name="claimsSent"/> (the claim changes the node has sent so far, these included) says whether an
    /// older report still on its way carries a claim the least end already counts on.
    /// </summary>
    [OneWay] Task Report(int node, long seq, long slowest, int slowestRank, long minEnd, ClaimUpdate[] claims, long claimsSent, bool tainted);

    /// <summary>The largest skew any node time keeper measured (a syncing CPU's clock past what it was allowed, plus the quantum, in emulated ns), and the syncs and lookahead grants of them all.</summary>
    Task<QuantumStats> MaxSkew();
}

/// <summary>
/// The skew bound for the CPUs of one emulated node (key: <see cref="GrainKeys.TimeKeeper"/>, on that node's silo):
/// no running CPU goes more than the quantum past the slowest running CPU of the machine. A CPU that sleeps on a lock
/// or folio (or a barrier) is not running and holds back no one; its waker's time is where it resumes.
/// </summary>
public interface INodeTimeKeeperGrain : IGrainWithStringKey
{
    /// <param name="ranks">Each CPU's task index: which of two CPUs at one emulated ns goes first (the lower), as the sim engine orders ties.</param>
    Task Configure(long quantumNs, int[] cpus, int[] ranks);
    /// <summary>
    /// The caller's CPU is at <paramref name="clock"/>: returns how far it may run, once that covers its clock — the
    /// quantum's horizon, or (not at an <paramref name="exact"/> sync point) further while its claim is cleared.
    /// <paramref name="report"/>: the CPU's lookahead standing (null from a grain running part of its op).
    /// </summary>
    /// <param name="allowed">
    /// How far the CPU was let run before it asked (its horizon, or its grant): the skew is how far past it the CPU got,
    /// plus the quantum. A woken CPU's clock jumped to its waker's release: it asks at what it was allowed.
    /// </param>
    Task<SyncGrant> Sync(int cpu, long clock, bool exact, LookaheadReport? report, long allowed);
    /// <summary>The CPU sleeps (token identifies this sleep; block and unblock may arrive in either order).</summary>
    [OneWay] Task Block(int cpu, long token);
    [OneWay] Task Unblock(int cpu, long token, long clock);
    Task Done(int cpu);
    /// <summary>
    /// From the machine's time keeper, one evaluation of the machine: the horizon is now <paramref name="horizon"/>, and
    /// this node's CPUs <paramref name="clearedCpus"/> (holding claim versions <paramref name="clearedVersions"/>) may run
    /// to <paramref name="bound"/> (pushes may arrive out of order; <paramref name="seq"/> orders them).
    /// </summary>
    [OneWay] Task Horizon(long seq, long horizon, int horizonRank, long bound, int[] clearedCpus, long[] clearedVersions);
    /// <summary>The largest skew this node measured (a syncing CPU's clock past what it was allowed, plus the quantum, in emulated ns), its CPUs' syncs and the grants past the quantum among them.</summary>
    Task<QuantumStats> MaxSkew();
}

/// <summary>What the time keepers saw of a run: the largest skew, how often CPUs synchronised, and how often one was let run past the quantum.</summary>
[GenerateSerializer, Immutable]
public struct QuantumStats
{
    [Id(0)] public long MaxSkewNs;
    /// <summary>Syncs of CPUs (and of grains running part of a CPU's op) with their node's time keeper.</summary>
    [Id(1)] public long Syncs;
    /// <summary>Syncs answered with a grant past the quantum's horizon (a cleared claim).</summary>
    [Id(2)] public long LookaheadGrants;
}

/// <summary>How far a CPU may run before it synchronises again.</summary>
[GenerateSerializer, Immutable]
public struct SyncGrant
{
    /// <summary>
    /// The quantum's horizon, with <see cref="HorizonRank"/>: a CPU of rank r at clock c is within it when
    /// c &lt; Horizon, or c == Horizon and r &lt;= HorizonRank (the slowest running CPU + the quantum, ranked as it is).
    /// </summary>
    [Id(0)] public long Horizon;
    /// <summary>Past the horizon, between exact sync points, while its claim is cleared (long.MinValue: not at all).</summary>
    [Id(1)] public long FreeUntil;
    [Id(2)] public int HorizonRank;
}

/// <summary>A CPU's lookahead standing, sent with its sync (see LookaheadLedger).</summary>
[GenerateSerializer, Immutable]
public sealed class LookaheadReport
{
    /// <summary>The earliest emulated time it could leave its run or touch outside its claim; its clock when not in a run.</summary>
    [Id(0)] public long End;
    /// <summary>The current claim (changes whenever the CPU enters a run, leaves one, or its claim grows).</summary>
    [Id(1)] public ClaimUpdate Claim;
    /// <summary>It ran an op that leaves entries other CPUs' faults act on: no lookahead for the rest of the run.</summary>
    [Id(2)] public bool Tainted;
}

/// <summary>One version of a CPU's claim (a RunClaim: [Lo, Hi) and the files its VMAs map); InRun false: no claim.</summary>
[GenerateSerializer, Immutable]
public struct ClaimUpdate
{
    [Id(0)] public int Cpu;
    [Id(1)] public long Version;
    [Id(2)] public bool InRun;
    [Id(3)] public long Lo;
    [Id(4)] public long Hi;
    [Id(5)] public int[] Files;
    [Id(6)] public bool Eligible;
}
