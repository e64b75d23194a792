using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;

namespace DistEmu.Grains.Tests;

/// <summary>
/// The I/O rule (PROTOCOL.md §3: a file read drops the fault lock and returns RETRY|MAJOR; the TRIED retry maps from
/// the page cache) through the grains: page-fault3 on disk files counts like the sim engine, whatever the timing.
/// </summary>
[Collection("two silos")]
public sealed class FaultIoThroughGrainsTests(TwoSilos cluster)
{
    [Theory]
    [InlineData(FaultPolicy.Merged)]
    [InlineData(FaultPolicy.V6_12)]
    [InlineData(FaultPolicy.MmapOnly)]
    public async Task Disk_page_fault3_counts_each_fault_once_and_each_read_around_once_under_both_engines(FaultPolicy policy)
    {
        var o = EngineRuns.Options("page-fault3", policy, ops: 600) with { Params = new Dictionary<string, string> { ["size_mb"] = "1", ["disk"] = "1" } };
        var orleans = await EngineRuns.Orleans(cluster.Grains, o);
        var sim = SimRun.Run(o);
        // The same run on tmpfs files (no I/O, no RETRY) touches the same pages: a RETRY is not a pgfault.
        long touched = SimRun.Run(EngineRuns.Options("page-fault3", policy, ops: 600)).Machine.VmStat.pgfault;
        // Each task's first round reads its 256-page file by read-around (ra_pages 32, from pgoff - 16): the fault at
        // page 0 reads 0..31, then each fault at the first uncached page reads the 16 pages past the cached ones.
        long reads = 8 * (1 + (256 - 32) / 16);
        foreach (var r in new[] { sim, orleans })
        {
            var vs = r.Machine.VmStat;
            Assert.True(vs.pgfault == touched, $"pgfault {vs.pgfault}, expected {touched} (a RETRY is not counted): {EngineRuns.Describe(r)}");
            Assert.True(r.Machine.Frames.Conserved, EngineRuns.Describe(r));
            Assert.True(r.Machine.Sanitizer.Total == 0, EngineRuns.Describe(r));
        }
        Assert.True(sim.Machine.VmStat.pgmajfault == reads, $"pgmajfault {sim.Machine.VmStat.pgmajfault}, expected {reads}: {EngineRuns.Describe(sim)}");
        // Under orleans each VMA grain keeps its own copy of the file's page cache, so the second round's new mapping reads
        // its file again: at least the first round's reads.
        Assert.True(orleans.Machine.VmStat.pgmajfault >= reads, $"pgmajfault {orleans.Machine.VmStat.pgmajfault}, expected at least {reads}: {EngineRuns.Describe(orleans)}");
    }
}
