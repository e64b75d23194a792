using DistEmu.Abstractions;
using DistEmu.Kernel.Machine;
using DistEmu.Silo;

namespace DistEmu.Grains.Tests;

/// <summary>
/// A run's grains hold its state until its results are read. Orleans deactivates an activation that has been idle for
/// its collection age (15 min by default): the VMA grain of a region unmapped early in a long run, or the CPU grain of a
/// task that finished early, would lose its counters and frames before the run ends. An unmapped VMA's grain may go,
/// but hands its counters to its mm as it does. Here the collection age is 2 s, and the results are read once idle
/// collection has visibly run since every task ended: a probe grain activated then (held by nothing) has been collected,
/// so every grain of the run has been idle past the collection age (no fixed wait, which a loaded host can outlast).
/// </summary>
[Collection("two quick-collecting silos")]
public sealed class GrainLifetimeTests(TwoQuickCollectingSilos cluster)
{
    [Fact]
    public async Task Counters_read_long_after_the_run_ended_are_those_read_at_once()
    {
        var o = EngineRuns.Options("page-fault1", FaultPolicy.Merged, ops: 1500);
        var atOnce = await EngineRuns.Orleans(cluster.Grains, o);
        bool waited = false, probeSeen = false, probeCollected = false;
        int vmaGrainsAfterWait = -1;
        var late = await OrleansRun.Run(cluster.Grains, o, progress: s =>
        {
            // Once every task is done, activate a probe grain nobody holds and stay idle until collection has taken it
            // (then the run's grains, idle since before the probe was made, were idle past the collection age too) and
            // the grains of the unmapped VMAs (at most each task's last mapping stays).
            if (s.Done < s.Tasks || waited) return;
            waited = true;
            string probe = $"lifetime-probe-{Guid.NewGuid():N}";
            cluster.Grains.GetGrain<IWaitGraphGrain>(probe).Deadlock().GetAwaiter().GetResult();
            probeSeen = Active(probe).GetAwaiter().GetResult(); // else its absence below would prove nothing
            var bound = System.Diagnostics.Stopwatch.StartNew(); // only keeps a collection that never runs from hanging the suite
            while (bound.Elapsed < TimeSpan.FromMinutes(2))
            {
                probeCollected = !Active(probe).GetAwaiter().GetResult();
                vmaGrainsAfterWait = VmaGrains().GetAwaiter().GetResult();
                if (probeCollected && vmaGrainsAfterWait <= o.Machine.Cpus) break;
                Thread.Sleep(200); // the poll's cadence; the condition is the activations
            }
        }, stallTimeout: TimeSpan.FromMinutes(5));
        Assert.True(waited, "the run never reported every task done");
        Assert.True(probeSeen, "the probe grain was not listed among the silos' activations once activated: " + string.Join(", ", await Keys()));
        Assert.True(probeCollected, "idle collection never took a probe grain activated after the run's tasks ended");
        // The unmapped VMAs' grains went (handing their counters to the mm); at most each task's last mapping stays.
        Assert.True(vmaGrainsAfterWait <= o.Machine.Cpus,
            $"{vmaGrainsAfterWait} VMA grains still active after the run went idle: idle collection never took the unmapped VMAs' grains");
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

    private async Task<bool> Active(string key)
    {
        var stats = await cluster.Grains.GetGrain<IManagementGrain>(0).GetDetailedGrainStatistics();
        return stats.Any(g => g.GrainId.Key.ToString() == key);
    }

    private async Task<List<string>> Keys() =>
        (await cluster.Grains.GetGrain<IManagementGrain>(0).GetDetailedGrainStatistics()).Select(g => g.GrainId.ToString()).ToList();

    private async Task<int> VmaGrains()
    {
        var stats = await cluster.Grains.GetGrain<IManagementGrain>(0).GetDetailedGrainStatistics();
        return stats.Count(g => g.GrainType?.Contains("VmaGrain", StringComparison.Ordinal) == true);
    }
}

[CollectionDefinition("two quick-collecting silos")]
public sealed class TwoQuickCollectingSiloCollection : ICollectionFixture<TwoQuickCollectingSilos>;
