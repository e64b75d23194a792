using DistEmu.Kernel.Machine;
using DistEmu.Silo;

namespace DistEmu.Grains.Tests;

/// <summary>
/// A run's grains hold its state until its results are read. Orleans deactivates an activation that has been idle for
/// its collection age (15 min by default): the VMA grain of a region unmapped early in a long run, or the CPU grain of a
/// task that finished early, would lose its counters and frames before the run ends. Here the collection age is 2 s and
/// the results are read after 5 s of idleness.
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
        var late = await OrleansRun.Run(cluster.Grains, o, progress: s =>
        {
            // Once every task is done, stay idle for well over the collection age before the results are read.
            if (s.Done < s.Tasks || waited) return;
            waited = true;
            Thread.Sleep(TimeSpan.FromSeconds(5));
        }, stallTimeout: TimeSpan.FromSeconds(30));
        Assert.True(waited, "the run never reported every task done");
        Assert.True(late.Status == "completed", $"{late.Status}: {late.Reason}");
        Assert.True(atOnce.Machine.VmStat.pgfault > 0);
        Assert.Equal(atOnce.Machine.VmStat.ToArray(), late.Machine.VmStat.ToArray());
        Assert.Equal(atOnce.Machine.Frames.ToString(), late.Machine.Frames.ToString());
        Assert.Equal(atOnce.PerTask[0].Accesses, late.PerTask[0].Accesses);
    }
}

[CollectionDefinition("two quick-collecting silos")]
public sealed class TwoQuickCollectingSiloCollection : ICollectionFixture<TwoQuickCollectingSilos>;
