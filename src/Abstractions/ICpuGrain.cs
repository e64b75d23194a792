using Orleans;
using Orleans.Concurrency;

namespace DistEmu.Abstractions;

/// <summary>An emulated CPU running one task (key: "run/nodeK/cpuN"): its clock, software TLB, tree snapshot and op stream.</summary>
public interface ICpuGrain : IGrainWithStringKey
{
    /// <summary>Run task <paramref name="taskIndex"/> of the workload in mm <paramref name="mmId"/>; returns at once.</summary>
    Task Start(int taskIndex, int mmId);
    /// <summary>Set up task <paramref name="taskIndex"/> in mm <paramref name="mmId"/> with no stream of its own: a replay feeds it with <see cref="RunBatch"/>.</summary>
    Task Attach(int taskIndex, int mmId);
    /// <summary>Run <paramref name="ops"/> in order, not starting before emulated time <paramref name="notBeforeNs"/>; returns the CPU's clock after.</summary>
    Task<long> RunBatch(OpMessage[] ops, long notBeforeNs);
    /// <summary>The fed task has no more ops: hand back its frames and report it done to the machine.</summary>
    Task Detach();
    /// <summary>A TLB shootdown IPI for [startVpn, endVpn); returning is the acknowledgement.</summary>
    [AlwaysInterleave] Task InvalidateTlb(long startVpn, long endVpn);
    /// <summary>Stop the task after its current op.</summary>
    [AlwaysInterleave] Task Stop();
    Task<StatsMessage> GetStats();
    /// <summary>The silo this activation lives on (for placement checks).</summary>
    [AlwaysInterleave] Task<string> Where();
}
