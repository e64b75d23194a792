using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sched;
using DistEmu.Kernel.Sim;
using DistEmu.Kernel.Workloads;
using DistEmu.Silo;

namespace DistEmu.Grains.Tests;

/// <summary>
/// The LKML case of the kernel-core tests, as op streams run through grains (with a 1 µs skew bound, so host order
/// follows emulated time) and, for comparison, under the sim engine: one CPU faults on a page under migration while
/// another munmaps (i) another VMA and (ii) the same VMA.
/// </summary>
[Collection("two silos")]
public sealed class LkmlThroughGrainsTests(TwoSilos cluster)
{
    private const long Quantum = 1_000;
    private const int FaulterCpu = LkmlCase.FaulterCpu;

    private async Task<(RunResult Orleans, RunResult Sim)> Both(FaultPolicy policy, bool sameVma, long faulterDelay = 0)
    {
        var o = LkmlCase.Options(policy, sameVma, faulterDelay);
        var orleans = await OrleansRun.Run(cluster.Grains, o, stallTimeout: TimeSpan.FromSeconds(30), quantumNs: Quantum);
        return (orleans, SimRun.Run(o));
    }

    /// <summary>The munmap's wait (the largest writer wait: the setup's mmaps do not wait).</summary>
    private static long MunmapWait(RunResult r) => r.Machine.WriterWait.Max;

    private static string Describe(RunResult r) =>
        $"{r.Engine}: munmap waited {MunmapWait(r)} ns, migration wait {r.Machine.MigrationWait}, retry {r.Machine.VmStat.vma_lock_retry}; " +
        string.Join("; ", r.Machine.Sanitizer.Violations.Select(v => v.ToString()));

    [Theory]
    [InlineData(FaultPolicy.MmapOnly, false, true)]
    [InlineData(FaultPolicy.VmaBailout, false, true)]
    [InlineData(FaultPolicy.Merged, false, false)]
    [InlineData(FaultPolicy.Merged, true, true)]
    [InlineData(FaultPolicy.PtlDrop, false, false)]
    [InlineData(FaultPolicy.PtlDrop, true, false)]
    public async Task Who_waits_for_whom_matches_the_kernel_core(FaultPolicy policy, bool sameVma, bool munmapWaitsForMigration)
    {
        var (orleans, sim) = await Both(policy, sameVma);
        foreach (var r in new[] { orleans, sim })
        {
            Assert.Equal(1, r.Machine.MigrationWait.Count);
            if (munmapWaitsForMigration)
            {
                Assert.True(MunmapWait(r) > 100_000, Describe(r));
                // Where it waited: behind mmap_lock (mmap-only, vma-bailout: the fault sleeps holding it), or in
                // vma_start_write for the fault holding the same VMA's read lock (merged) — as counted in the mm grain.
                var where = sameVma ? r.Machine.WriterVmaWait : r.Machine.WriterMmapLockWait;
                Assert.True(where.Max > 100_000, $"{(sameVma ? "vma_start_write" : "mmap_write_lock")} wait {where.Max} ns; " + Describe(r));
            }
            else
                Assert.True(MunmapWait(r) < 10_000, Describe(r));
            Assert.True(r.Machine.Sanitizer.Total == 0, Describe(r));
            Assert.Equal(policy == FaultPolicy.VmaBailout ? 1 : 0, r.Machine.VmStat.vma_lock_retry);
        }
    }

    [Fact]
    public async Task VmaUnlocked_page_table_use_after_free_is_reported_through_grains()
    {
        var (orleans, sim) = await Both(FaultPolicy.VmaUnlocked, sameVma: true, faulterDelay: 30_000);
        foreach (var r in new[] { orleans, sim })
        {
            Assert.True(MunmapWait(r) < 10_000, Describe(r));
            var v = Assert.Single(r.Machine.Sanitizer.Violations, v => v.Invariant == "S8");
            Assert.Equal(FaulterCpu, v.Cpu);
        }
    }

    [Fact]
    public async Task LockDropped_double_unlock_is_reported_through_grains()
    {
        var (orleans, sim) = await Both(FaultPolicy.LockDropped, sameVma: false);
        foreach (var r in new[] { orleans, sim })
            Assert.Contains(r.Machine.Sanitizer.Violations, v => v.Invariant == "S6" && v.Cpu == FaulterCpu);
    }
}
