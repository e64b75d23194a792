using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;
using DistEmu.Kernel.Workloads;
using DistEmu.Silo;

namespace DistEmu.Grains.Tests;

/// <summary>
/// lock_vma_under_rcu through grains: a CPU's snapshot of the VMA tree is its RCU view, so a hit on a VMA that munmap
/// has detached since is the kernel's VMA_LOCK_MISS (count it, look up again), as the sim engine counts a lookup that
/// found a VMA detached before vma_start_read.
/// </summary>
[Collection("two silos")]
public sealed class StaleSnapshotTests(TwoSilos cluster)
{
    private const long Page = 4096, A = 0x7f00_0000_0000;

    [Fact]
    public async Task LockVmaUnderRcu_counts_a_stale_snapshot_hit_on_a_detached_vma_as_vma_lock_miss()
    {
        // cpu0 maps A and touches page 0 (its snapshot now has A's first VMA); cpu4 unmaps A and maps it again; cpu0
        // then touches page 1 through its old snapshot, which still names the detached VMA.
        var o = new SimRunOptions
        {
            Machine = LkmlCase.Machine(FaultPolicy.Merged),
            Workload = "migrate-munmap",
            Tasks = 2,
            OpsPerTask = 100,
            Script = new Dictionary<int, IReadOnlyList<Op>>
            {
                [0] = [Op.MapAnon(A, 16 * Page), Op.Write(A), Op.Compute(200_000), Op.Write(A + Page)],
                [1] = [Op.Compute(50_000), Op.Unmap(A, 16 * Page), Op.MapAnon(A, 16 * Page)],
            },
        };
        var r = await OrleansRun.Run(cluster.Grains, o, stallTimeout: TimeSpan.FromSeconds(30), quantumNs: 1_000);
        var v = r.Machine.VmStat;
        Assert.True(v.vma_lock_miss == 1, $"vma_lock_miss {v.vma_lock_miss}; {EngineRuns.Describe(r)}");
        Assert.Equal(2, v.Faults);
        Assert.Equal(0, r.Machine.Sanitizer.Total);
    }
}
