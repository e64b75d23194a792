using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;
using DistEmu.Kernel.Workloads;
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
        // Each fault's VMA attempt ends as under the sim engine, across silos too: a fault that reaches a new VMA's grain
        // before the grain has heard that the mmap's write section ended brings the mm_lock_seq its tree showed.
        var (sv, rv) = (sim.Machine.VmStat, r.Machine.VmStat);
        Assert.True((sv.vma_lock_success, sv.vma_lock_retry, sv.vma_lock_abort, sv.vma_lock_miss) == (rv.vma_lock_success, rv.vma_lock_retry, rv.vma_lock_abort, rv.vma_lock_miss),
            $"success/retry/abort/miss: sim {sv.vma_lock_success}/{sv.vma_lock_retry}/{sv.vma_lock_abort}/{sv.vma_lock_miss}, orleans {rv.vma_lock_success}/{rv.vma_lock_retry}/{rv.vma_lock_abort}/{rv.vma_lock_miss}");
        Assert.Equal((sv.nr_tlb_remote_flush, sv.nr_tlb_remote_flush_received), (rv.nr_tlb_remote_flush, rv.nr_tlb_remote_flush_received));
        Assert.Equal(sim.Machine.VmStat.Faults, r.Machine.VmStat.Faults);
        Assert.True(r.Machine.Frames.Conserved, EngineRuns.Describe(r));
        Assert.Equal(0, r.Machine.Sanitizer.Total);
        // Without lookahead every CPU asks its time keeper about every emulated microsecond: 2.5-3 calls a fault more
        // than lax on this run. With it, only frame refills (exact sync points), system calls and the syncs around them.
        double laxPerFault = (double)laxCalls / lax.Machine.VmStat.Faults, perFault = (double)calls / r.Machine.VmStat.Faults;
        Assert.True(perFault < laxPerFault + 0.5, $"{perFault:F2} grain calls per fault under the quantum, {laxPerFault:F2} lax");
    }

    private const long Page = 4096, Region = 2L << 20, Base = 0x7f00_0000_0000;

    /// <summary>
    /// Four CPUs: each maps its own 2 MiB, then (past a barrier) writes 512 pages — of its own mapping, or, with
    /// <paramref name="shared"/>, of cpu0's, so that every run's claim is the same VMA.
    /// </summary>
    private static SimRunOptions Script(bool shared) => new()
    {
        Machine = EngineRuns.Small(FaultPolicy.Merged),
        Tasks = 4,
        OpsPerTask = 1_000,
        Script = Enumerable.Range(0, 4).ToDictionary(cpu => cpu, cpu =>
        {
            long mine = Base + cpu * 2 * Region, target = shared ? Base : mine;
            var ops = new List<Op> { Op.MapAnon(mine, Region), Op.Barrier() };
            // Shared: each CPU writes its own quarter of cpu0's mapping, so the writes are not all faults on one page.
            long first = shared ? cpu * Region / 4 : 0, count = shared ? Region / 4 / Page : Region / Page;
            for (long p = 0; p < count; p++) ops.Add(Op.Write(target + first + p * Page));
            return (IReadOnlyList<Op>)ops;
        }),
    };

    [Fact]
    public async Task No_cpu_is_let_past_the_quantum_while_its_run_shares_a_vma_with_another()
    {
        var shared = await OrleansRun.Run(cluster.Grains, Script(shared: true), stallTimeout: TimeSpan.FromSeconds(30), quantumNs: 1_000);
        var disjoint = await OrleansRun.Run(cluster.Grains, Script(shared: false), stallTimeout: TimeSpan.FromSeconds(30), quantumNs: 1_000);
        Assert.True(shared.Status == "completed" && disjoint.Status == "completed", $"{shared.Reason}; {disjoint.Reason}");
        Assert.Equal(0, shared.Machine.Sanitizer.Total);
        // The same writes in the same VMA: every run's claim meets the others', so every sync keeps the quantum's order.
        // (A CPU that enters its run before the others have said theirs may be cleared, but only up to where they stood
        // at the barrier, which it has passed: no grant lets it go anywhere, and none is counted.) One grant may come at
        // the very end: once the others are done, the last CPU's claim meets nobody's, and it is cleared to the end of
        // its last run (on a busy host one CPU can lag that far behind in host time).
        Assert.True(shared.QuantumSyncs is { Syncs: > 0, LookaheadGrants: <= 1 }, $"shared VMA: {shared.QuantumSyncs} (syncs, grants past the quantum); own: {disjoint.QuantumSyncs}");
        // Each CPU in its own VMA (and its own page-table pages): their claims are cleared.
        Assert.True(disjoint.QuantumSyncs is { LookaheadGrants: > 0 }, $"own VMAs: {disjoint.QuantumSyncs}");
    }
}
