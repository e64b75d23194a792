using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;
using DistEmu.Kernel.Workloads;

namespace DistEmu.Kernel.Tests;

/// <summary>
/// A writer's wait is recorded whole and by what it waited in: mmap_write_lock (behind whoever holds mmap_lock) or
/// vma_start_write (behind the faults holding a read lock of a VMA it changes). The LKML case asks exactly this: does a
/// writer of an unrelated range wait for a fault sleeping on a migration?
/// </summary>
public sealed class WriterWaitSplitTests
{
    private static EmuMachine Run(FaultPolicy policy, bool sameVma) => SimRun.Run(LkmlCase.Options(policy, sameVma)).Machine;

    [Fact]
    public void Under_mmap_only_a_munmap_of_another_vma_waits_in_mmap_write_lock_for_the_fault_sleeping_on_migration()
    {
        var m = Run(FaultPolicy.MmapOnly, sameVma: false);
        // Three writers: the setup's two mmaps and the munmap; each is in all three histograms.
        Assert.Equal([3L, 3L, 3L], new[] { m.WriterWait.Count, m.WriterMmapLockWait.Count, m.WriterVmaWait.Count });
        Assert.True(m.WriterMmapLockWait.Max > 50_000, $"writer's wait in mmap_write_lock: {m.WriterMmapLockWait.Max} ns (the migration holds its folio 150 µs)");
        Assert.Equal(0, m.WriterVmaWait.Max);
        Assert.Equal(m.WriterWait.Max, m.WriterMmapLockWait.Max + m.WriterVmaWait.Max);
    }

    [Fact]
    public void Under_merged_a_munmap_of_another_vma_does_not_wait_and_one_of_the_same_vma_waits_in_vma_start_write()
    {
        var other = Run(FaultPolicy.Merged, sameVma: false);
        Assert.True(other.WriterWait.Max < 5_000, $"munmap of B waited {other.WriterWait.Max} ns");
        var same = Run(FaultPolicy.Merged, sameVma: true);
        Assert.True(same.WriterVmaWait.Max > 50_000, $"munmap of A waited {same.WriterVmaWait.Max} ns in vma_start_write");
        Assert.True(same.WriterMmapLockWait.Max < 5_000, $"and {same.WriterMmapLockWait.Max} ns in mmap_write_lock");
        Assert.Equal(same.WriterWait.Max, same.WriterMmapLockWait.Max + same.WriterVmaWait.Max);
    }
}
