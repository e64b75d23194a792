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

    [Fact]
    public async Task The_node_and_machine_time_keepers_report_the_measured_max_skew()
    {
        // Two nodes on two silos: each node's CPUs sync with their node's keeper, the nodes with the machine's.
        var o = EngineRuns.Options("page-fault1", FaultPolicy.Merged, ops: 400);
        long? skew = null;
        var r = await OrleansRun.Run(cluster.Grains, o, stallTimeout: TimeSpan.FromSeconds(30), quantumNs: 1_000, maxSkew: s => skew = s);
        Assert.True(r.Status == "completed", $"{r.Status}: {r.Reason}");
        Assert.True(skew is > 0, $"a skew was measured: {skew}");
        // A CPU checks its horizon (or its grant) at every step of its work, so it passes it by at most one step: here the
        // longest is munmap's zap of one page-table page. A wait (a lock, a wake) is not running past it.
        long step = Kernel.Mm.PtePage.Entries * o.Machine.Cost.ZapPerPageNs;
        Assert.True(skew <= 1_000 + step, $"max skew {skew} ns under a 1 µs quantum: more than the quantum and one zap step ({step} ns)");

        long? lax = null;
        var free = await OrleansRun.Run(cluster.Grains, o, stallTimeout: TimeSpan.FromSeconds(30), maxSkew: s => lax = s);
        Assert.True(free.Status == "completed", $"{free.Status}: {free.Reason}");
        Assert.Null(lax); // no quantum: no time keeper, nothing measured
    }
}
