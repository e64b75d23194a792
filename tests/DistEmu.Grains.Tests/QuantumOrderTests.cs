using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;
using DistEmu.Kernel.Workloads;
using DistEmu.Silo;

namespace DistEmu.Grains.Tests;

/// <summary>
/// A quantum of one emulated ns orders the grains as the sim engine orders its events: the contention three CPUs meet
/// on mmap_lock while each maps, touches and unmaps its own memory (page_fault1's cycle, or page_fault3's round on a
/// shared file of its own, whose every fault takes mmap_lock for read on merged) is the sim engine's, lock by lock,
/// and so are the counters of the TLB shootdowns every munmap sends to the mm's other CPUs. The CPUs start a few
/// hundred ns apart. (page_fault1 itself, every CPU in lockstep and every mmap and munmap a tie, gives the sim engine's
/// results too on a quiet host, but not always on a busy one: in one of three runs beside two busy loops, one
/// mmap_lock acquisition came as a steal from a woken writer where the sim engine had none.)
/// </summary>
[Collection("one silo")]
public sealed class QuantumOrderTests(OneSilo cluster)
{
    private const long Page = 4096, Region = 2L << 20, Base = 0x7f00_0000_0000;

    /// <param name="file">page_fault3's cycle instead: each CPU maps its own tmpfs file shared.</param>
    private static SimRunOptions Cycles(bool file) => new()
    {
        Machine = EngineRuns.Small(FaultPolicy.Merged),
        Workload = file ? "page-fault3" : "page-fault1", // the files page-fault3's tasks map
        Tasks = 3,
        OpsPerTask = 10_000,
        Script = Enumerable.Range(0, 3).ToDictionary(task => task, task =>
        {
            long mine = Base + task * 2 * Region;
            var ops = new List<Op> { Op.Compute(1 + task * 170) };
            // A file mapped again starts cold under orleans (its page cache goes with the mapping; docs/POLICIES.md): one
            // round of page_fault3, where every fault takes mmap_lock for read on merged and the CPUs meet there.
            for (int cycle = 0; cycle < (file ? 1 : 3); cycle++)
            {
                ops.Add(file ? Op.MapFile(mine, Region, fileId: task, shared: true) : Op.MapAnon(mine, Region));
                for (long p = 0; p < Region / Page; p++) ops.Add(Op.Write(mine + p * Page));
                ops.Add(Op.Unmap(mine, Region));
            }
            return (IReadOnlyList<Op>)ops;
        }),
    };

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Under_a_1ns_quantum_mmap_lock_contention_fault_latency_and_shootdowns_are_the_sim_engines(bool file)
    {
        var o = Cycles(file);
        var sim = SimRun.Run(o);
        var r = await OrleansRun.Run(cluster.Grains, o, stallTimeout: TimeSpan.FromSeconds(30), quantumNs: 1);
        Assert.True(r.Status == "completed", $"{r.Status}: {r.Reason}");
        Assert.Equal(0, r.Machine.Sanitizer.Total);
        // Every lock class, both modes: acquisitions, contentions, waits and holds (mmap_lock's are where the CPUs meet).
        foreach (var (s, g) in sim.Machine.LockStats.Entries.Zip(r.Machine.LockStats.Entries))
        {
            string what = $"{s.Class.Name()} {s.Mode.Name()}: sim {s.Acquisitions} acquisitions, {s.Contentions} contended, waits {s.Wait.Total} ns (max {s.Wait.Max}), " +
                $"holds {s.Hold.Total} ns (max {s.Hold.Max}); orleans {g.Acquisitions}, {g.Contentions}, {g.Wait.Total} ns ({g.Wait.Max}), {g.Hold.Total} ns ({g.Hold.Max})";
            Assert.True((s.Acquisitions, s.Contentions, s.Wait.Total, s.Wait.Max, s.Hold.Total, s.Hold.Max) == (g.Acquisitions, g.Contentions, g.Wait.Total, g.Wait.Max, g.Hold.Total, g.Hold.Max), what);
        }
        Assert.True(sim.Machine.LockStats[LockClass.MmapLock, LockMode.Write].Contentions > 0, "no CPU waited for mmap_lock: the test no longer shows anything");
        // Each fault's latency is the sim engine's: the histograms hold the same values.
        var (sf, rf) = (sim.Machine.FaultLatency, r.Machine.FaultLatency);
        Assert.True((sf.Count, sf.Total, sf.Max, sf.P50, sf.P99) == (rf.Count, rf.Total, rf.Max, rf.P50, rf.P99),
            $"fault latency: sim {sf.Count} faults, total {sf.Total} ns, p50 {sf.P50}, p99 {sf.P99}, max {sf.Max}; orleans {rf.Count}, {rf.Total}, {rf.P50}, {rf.P99}, {rf.Max}");
        // Every munmap shoots down the TLBs of every CPU of the mm that has a translation in it, not only its own.
        var (sv, rv) = (sim.Machine.VmStat, r.Machine.VmStat);
        Assert.True(sv.nr_tlb_remote_flush > 0, "the sim engine sent no remote shootdown: the test no longer shows anything");
        Assert.Equal((sv.nr_tlb_remote_flush, sv.nr_tlb_remote_flush_received), (rv.nr_tlb_remote_flush, rv.nr_tlb_remote_flush_received));
        // A CPU's own munmap and mmap leave its next lookup on the new tree: no stale-snapshot MISS the kernel would not count.
        Assert.Equal(sv.vma_lock_miss, rv.vma_lock_miss);
        Assert.Equal(sv.pgfault, rv.pgfault);
    }
}
