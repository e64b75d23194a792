using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;
using DistEmu.Kernel.Workloads;
using DistEmu.Silo;

namespace DistEmu.Grains.Tests;

/// <summary>
/// A quantum of one emulated ns orders the grains as the sim engine orders its events: the contention three CPUs meet
/// on mmap_lock while each maps, touches and unmaps its own memory (page_fault1's cycle) is the sim engine's, lock by
/// lock, and so are the counters of the TLB shootdowns every munmap sends to the mm's other CPUs. The CPUs start a few
/// hundred ns apart, so no two requests tie (ties are the one order the engines decide differently: the sim engine by
/// task, the grains by arrival).
/// </summary>
[Collection("one silo")]
public sealed class QuantumOrderTests(OneSilo cluster)
{
    private const long Page = 4096, Region = 2L << 20, Base = 0x7f00_0000_0000;

    private static SimRunOptions Cycles() => new()
    {
        Machine = EngineRuns.Small(FaultPolicy.Merged),
        Tasks = 3,
        OpsPerTask = 10_000,
        Script = Enumerable.Range(0, 3).ToDictionary(task => task, task =>
        {
            long mine = Base + task * 2 * Region;
            var ops = new List<Op> { Op.Compute(1 + task * 170) };
            for (int cycle = 0; cycle < 3; cycle++)
            {
                ops.Add(Op.MapAnon(mine, Region));
                for (long p = 0; p < Region / Page; p++) ops.Add(Op.Write(mine + p * Page));
                ops.Add(Op.Unmap(mine, Region));
            }
            return (IReadOnlyList<Op>)ops;
        }),
    };

    [Fact]
    public async Task Under_a_1ns_quantum_mmap_lock_contention_and_shootdowns_are_the_sim_engines()
    {
        var o = Cycles();
        var sim = SimRun.Run(o);
        var r = await OrleansRun.Run(cluster.Grains, o, stallTimeout: TimeSpan.FromSeconds(30), quantumNs: 1);
        Assert.True(r.Status == "completed", $"{r.Status}: {r.Reason}");
        Assert.Equal(0, r.Machine.Sanitizer.Total);
        foreach (var mode in new[] { LockMode.Read, LockMode.Write })
        {
            var (s, g) = (sim.Machine.LockStats[LockClass.MmapLock, mode], r.Machine.LockStats[LockClass.MmapLock, mode]);
            string what = $"mmap_lock {mode.Name()}: sim {s.Acquisitions} acquisitions, {s.Contentions} contended, waits {s.Wait.Total} ns (max {s.Wait.Max}); " +
                $"orleans {g.Acquisitions}, {g.Contentions}, {g.Wait.Total} ns (max {g.Wait.Max})";
            Assert.True(s.Acquisitions == g.Acquisitions && s.Contentions == g.Contentions && s.Wait.Total == g.Wait.Total && s.Wait.Max == g.Wait.Max, what);
        }
        // Every munmap shoots down the TLBs of every CPU of the mm that has a translation in it, not only its own.
        var (sv, rv) = (sim.Machine.VmStat, r.Machine.VmStat);
        Assert.True(sv.nr_tlb_remote_flush > 0, "the sim engine sent no remote shootdown: the test no longer shows anything");
        Assert.Equal((sv.nr_tlb_remote_flush, sv.nr_tlb_remote_flush_received), (rv.nr_tlb_remote_flush, rv.nr_tlb_remote_flush_received));
        // A CPU's own munmap and mmap leave its next lookup on the new tree: no stale-snapshot MISS the kernel would not count.
        Assert.Equal(sv.vma_lock_miss, rv.vma_lock_miss);
        Assert.Equal(sv.pgfault, rv.pgfault);
    }
}
