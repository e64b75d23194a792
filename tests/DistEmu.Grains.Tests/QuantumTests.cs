using DistEmu.Kernel.Machine;
using DistEmu.Silo;

namespace DistEmu.Grains.Tests;

/// <summary>
/// With a skew bound, every wait in host time must be one the time keeper knows of (a kernel sleep, a barrier):
/// a request queued behind another in a non-reentrant grain would hold the horizon back and hang the run.
/// </summary>
[Collection("two silos")]
public sealed class QuantumTests(TwoSilos cluster)
{
    [Theory]
    [InlineData("migrate-munmap")]
    [InlineData("mixed")]
    [InlineData("numa-migrate")]
    public async Task Migrating_workloads_complete_under_a_1us_quantum(string workload)
    {
        var o = EngineRuns.Options(workload, FaultPolicy.Merged, ops: 400);
        var r = await OrleansRun.Run(cluster.Grains, o, stallTimeout: TimeSpan.FromSeconds(30), quantumNs: 1_000);
        Assert.True(r.Status == "completed", $"{r.Status}: {r.Reason}");
        Assert.Equal(8 * 400, r.Ops);
        Assert.True(r.Machine.Frames.Conserved, EngineRuns.Describe(r));
        Assert.Equal(0, r.Machine.Sanitizer.Total);
    }
}
