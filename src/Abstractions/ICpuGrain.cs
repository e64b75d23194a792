using Orleans;
using Orleans.Concurrency;

namespace DistEmu.Abstractions;

/// <summary>An emulated CPU running one task (key: "run/nodeK/cpuN"): its clock, software TLB, tree snapshot and op stream.</summary>
public interface ICpuGrain : IGrainWithStringKey
{
    /// <summary>Run task <paramref name="taskIndex"/> of the workload in mm <paramref name="mmId"/>; returns at once.</summary>
    Task Start(int taskIndex, int mmId);
    /// <summary>A TLB shootdown IPI for [startVpn, endVpn); returning is the acknowledgement.</summary>
    [AlwaysInterleave] Task InvalidateTlb(long startVpn, long endVpn);
    /// <summary>Stop the task after its current op.</summary>
    [AlwaysInterleave] Task Stop();
    Task<StatsMessage> GetStats();
    /// <summary>The silo this activation lives on (for placement checks).</summary>
    [AlwaysInterleave] Task<string> Where();
}
