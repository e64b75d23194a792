using DistEmu.Kernel.Machine;

namespace DistEmu.Kernel.Tests;

/// <summary>
/// PROTOCOL.md §5 effects on the LKML case ("drop VMA lock before waiting for migration", June 2023): a fault
/// waits on a page under migration while munmap runs on (i) another VMA and (ii) the same VMA.
/// </summary>
public class LkmlCaseTests
{
    [Fact]
    public void MmapOnly_munmap_of_another_vma_waits_for_the_migration()
    {
        var s = new LkmlScenario(FaultPolicy.MmapOnly, sameVma: false);
        Assert.True(s.MunmapWaitedForMigration, s.Timeline);
        Assert.True(s.MunmapWriterWait > 0, s.Timeline);
        Assert.Equal(0, s.H.Machine.VmStat.vma_lock_retry);
        TestMachines.AssertClean(s.H);
    }

    [Fact]
    public void VmaBailout_counts_a_retry_then_munmap_of_another_vma_waits_for_the_migration()
    {
        var s = new LkmlScenario(FaultPolicy.VmaBailout, sameVma: false);
        Assert.Equal(1, s.H.Machine.VmStat.vma_lock_retry);
        Assert.True(s.MunmapWaitedForMigration, s.Timeline);
        TestMachines.AssertClean(s.H);
    }

    [Fact]
    public void Merged_munmap_of_another_vma_does_not_wait()
    {
        var s = new LkmlScenario(FaultPolicy.Merged, sameVma: false);
        Assert.False(s.MunmapWaitedForMigration, s.Timeline);
        Assert.Equal(0, s.MunmapWriterWait);
        Assert.True(s.FaultEnd > s.MigrationEnd, "the fault itself must wait for the migration: " + s.Timeline);
        TestMachines.AssertClean(s.H);
    }

    [Fact]
    public void Merged_munmap_of_the_same_vma_waits_for_the_fault_holding_its_lock()
    {
        var s = new LkmlScenario(FaultPolicy.Merged, sameVma: true);
        Assert.True(s.MunmapWaitedForMigration, s.Timeline);
        Assert.True(s.MunmapWriterWait > 0, s.Timeline);
        TestMachines.AssertClean(s.H);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void VmaUnlocked_nobody_waits(bool sameVma)
    {
        var s = new LkmlScenario(FaultPolicy.VmaUnlocked, sameVma);
        Assert.False(s.MunmapWaitedForMigration, s.Timeline);
        Assert.Equal(0, s.MunmapWriterWait);
        Assert.DoesNotContain(s.H.Violations, v => v.Invariant == "S6");
    }

    [Fact]
    public void VmaUnlocked_reports_page_table_use_after_free_when_munmap_frees_it_before_the_waiter_takes_the_ptl()
    {
        // The waiter is delayed between vma_end_read and pte_offset_map_lock long enough for munmap of the same VMA
        // to zap it and free its page-table page.
        var s = new LkmlScenario(FaultPolicy.VmaUnlocked, sameVma: true, faulterDelayAfterUnlock: 30_000);
        var v = Assert.Single(s.H.Violations, v => v.Invariant == "S8");
        Assert.Equal(1, v.Cpu);
        Assert.Contains("use-after-free", v.Message);
        Assert.Equal("vma-unlocked", v.Policy);
        Assert.NotNull(v.Vma);
        Assert.NotEmpty(v.History);
    }

    [Fact]
    public void PtlDrop_in_the_same_interleaving_reports_nothing()
    {
        var s = new LkmlScenario(FaultPolicy.PtlDrop, sameVma: true, faulterDelayAfterUnlock: 30_000);
        Assert.False(s.MunmapWaitedForMigration, s.Timeline);
        TestMachines.AssertClean(s.H);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void PtlDrop_nobody_waits_and_nothing_is_reported(bool sameVma)
    {
        var s = new LkmlScenario(FaultPolicy.PtlDrop, sameVma);
        Assert.False(s.MunmapWaitedForMigration, s.Timeline);
        Assert.Equal(0, s.MunmapWriterWait);
        TestMachines.AssertClean(s.H);
    }

    [Fact]
    public void LockDropped_reports_the_double_unlock()
    {
        var s = new LkmlScenario(FaultPolicy.LockDropped, sameVma: false);
        var v = Assert.Single(s.H.Violations, v => v.Invariant == "S6");
        Assert.Equal(1, v.Cpu);
        Assert.Contains("vma_lock", v.Message);
    }
}
