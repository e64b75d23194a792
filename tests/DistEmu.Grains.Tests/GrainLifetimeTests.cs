using DistEmu.Kernel.Machine;
using DistEmu.Silo;

namespace DistEmu.Grains.Tests;

/// <summary>
/// A run's grains hold its state until its results are read. Orleans deactivates an activation that has been idle for
/// its collection age (15 min by default): the VMA grain of a region unmapped early in a long run, or the CPU grain of a
/// task that finished early, would lose its counters and frames before the run ends. An unmapped VMA's grain may go,
/// but hands its counters to its mm as it does. Here the collection age is 2 s and the results are read after 8 s of
/// idleness.
/// </summary>
[Collection("two quick-collecting silos")]
public sealed class GrainLifetimeTests(TwoQuickCollectingSilos cluster)
{
    [Fact]
    public async Task Counters_read_long_after_the_run_ended_are_those_read_at_once()
    {
        var o = EngineRuns.Options("page-fault1", FaultPolicy.Merged, ops: 1500);
        var atOnce = await EngineRuns.Orleans(cluster.Grains, o);
        bool waited = false;
        int vmaGrainsAfterWait = -1;
        var late = await OrleansRun.Run(cluster.Grains, o, progress: s =>
        {
            // Once every task is done, stay idle for well over the collection age before the results are read.
            if (s.Done < s.Tasks || waited) return;
            waited = true;
            Thread.Sleep(TimeSpan.FromSeconds(8));
            vmaGrainsAfterWait = VmaGrains().GetAwaiter().GetResult();
        }, stallTimeout: TimeSpan.FromSeconds(30));
        Assert.True(waited, "the run never reported every task done");
        // The unmapped VMAs' grains went (handing their counters to the mm); at most each task's last mapping stays.
        Assert.InRange(vmaGrainsAfterWait, 0, o.Machine.Cpus);
        Assert.True(late.Status == "completed", $"{late.Status}: {late.Reason}");
        Assert.True(atOnce.Machine.VmStat.pgfault > 0);
        // CPUs run lax under orleans, so which faults take the VMA lock or fall back may differ between two runs; what
        // page-fault1's private regions fix is every fault and every frame, counted on the VMAs' grains and the CPUs'.
        Assert.Equal(atOnce.Machine.VmStat.pgfault, late.Machine.VmStat.pgfault);
        Assert.Equal(atOnce.Machine.VmStat.Faults, late.Machine.VmStat.Faults);
        Assert.Equal(atOnce.Machine.Frames.Anon, late.Machine.Frames.Anon);
        Assert.Equal(atOnce.Machine.Frames.Total, late.Machine.Frames.Total);
        Assert.Equal(atOnce.PerTask[0].Accesses, late.PerTask[0].Accesses);
    }

    private async Task<int> VmaGrains()
    {
        var stats = await cluster.Grains.GetGrain<IManagementGrain>(0).GetDetailedGrainStatistics();
        return stats.Count(g => g.GrainType?.Contains("VmaGrain", StringComparison.Ordinal) == true);
    }
}

[CollectionDefinition("two quick-collecting silos")]
public sealed class TwoQuickCollectingSiloCollection : ICollectionFixture<TwoQuickCollectingSilos>;
