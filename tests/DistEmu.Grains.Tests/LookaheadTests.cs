using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;
using DistEmu.Silo;

namespace DistEmu.Grains.Tests;

/// <summary>
/// Under a quantum, the time keepers let CPUs whose runs touch nothing in common run past it (LookaheadLedger), so a
/// quantum costs little where CPUs share nothing, and results stay those of the quantum's order.
/// </summary>
[Collection("two silos")]
public sealed class LookaheadTests(TwoSilos cluster)
{
    [Theory]
    [InlineData("page-fault1")]
    [InlineData("page-fault3")]
    public async Task Disjoint_cpus_under_a_1us_quantum_cost_little_more_than_lax_and_count_what_the_sim_engine_counts(string workload)
    {
        // Per task: mmap 16 MiB, 4,096 writes, munmap, repeated; each CPU's runs lie in its own mapping (page-fault3: of
        // its own file), on two nodes of two silos, so the machine's time keeper clears claims from both.
        var o = EngineRuns.Options(workload, FaultPolicy.Merged, ops: 5000) with { Params = new Dictionary<string, string> { ["size_mb"] = "16" } };
        long before = cluster.CallsPerSilo().Sum();
        var lax = await OrleansRun.Run(cluster.Grains, o, stallTimeout: TimeSpan.FromSeconds(30));
        long laxCalls = cluster.CallsPerSilo().Sum() - before;
        before = cluster.CallsPerSilo().Sum();
        var r = await OrleansRun.Run(cluster.Grains, o, stallTimeout: TimeSpan.FromSeconds(30), quantumNs: 1_000);
        long calls = cluster.CallsPerSilo().Sum() - before;
        Assert.True(lax.Status == "completed" && r.Status == "completed", $"{lax.Status}: {lax.Reason}; {r.Status}: {r.Reason}");
        var sim = SimRun.Run(o);
        Assert.Equal(sim.Ops, r.Ops);
        Assert.Equal(sim.Machine.VmStat.pgfault, r.Machine.VmStat.pgfault);
        Assert.Equal(sim.Machine.VmStat.vma_lock_success, r.Machine.VmStat.vma_lock_success);
        Assert.Equal(sim.Machine.VmStat.vma_lock_retry, r.Machine.VmStat.vma_lock_retry);
        Assert.Equal(sim.Machine.VmStat.Faults, r.Machine.VmStat.Faults);
        Assert.True(r.Machine.Frames.Conserved, EngineRuns.Describe(r));
        Assert.Equal(0, r.Machine.Sanitizer.Total);
        // Without lookahead every CPU asks its time keeper about every emulated microsecond: 2.5-3 calls a fault more
        // than lax on this run. With it, only frame refills (exact sync points), system calls and the syncs around them.
        double laxPerFault = (double)laxCalls / lax.Machine.VmStat.Faults, perFault = (double)calls / r.Machine.VmStat.Faults;
        Assert.True(perFault < laxPerFault + 0.5, $"{perFault:F2} grain calls per fault under the quantum, {laxPerFault:F2} lax");
    }
}
