using System.Runtime.CompilerServices;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Locking;

/// <summary>
/// include/linux/mmap_lock.h: mmap_read_lock / mmap_read_trylock / mmap_read_unlock / mmap_write_lock /
/// mmap_write_unlock / mmap_write_downgrade. Ending a write section (unlock or downgrade) first bumps
/// mm_lock_seq (vma_end_write_all), which ends every VMA write lock of the epoch at once.
/// </summary>
public static class MmapLock
{
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder))]
    public static async ValueTask MmapReadLock(EmuTask t, MmStruct mm)
    {
        await mm.MmapLock.AcquireRead(t);
        await t.Delay(t.Machine.Cost.LockNs);
    }

    public static bool MmapReadTrylock(EmuTask t, MmStruct mm) => mm.MmapLock.TryRead(t);

    public static void MmapReadUnlock(EmuTask t, MmStruct mm) => mm.MmapLock.Release(t, LockMode.Read);

    public static async ValueTask MmapWriteLock(EmuTask t, MmStruct mm)
    {
        await mm.MmapLock.AcquireWrite(t);
        await t.Delay(t.Machine.Cost.LockNs);
    }

    /// <summary>vma_end_write_all: mm_lock_seq += 1, by the write holder only (S2).</summary>
    private static void VmaEndWriteAll(EmuTask t, MmStruct mm)
    {
        if (mm.MmapLock.Writer != t)
        {
            t.Machine.Sanitizer.CheckSeqBump(t, mm, mm.MmLockSeq, mm.MmLockSeq + 1);
            return;
        }
        long before = mm.MmLockSeq;
        mm.MmLockSeq = before + 1;
        t.Machine.Sanitizer.CheckSeqBump(t, mm, before, mm.MmLockSeq);
        if (t.Machine.Bugs.MmLockSeqWithoutOrdering)
            LeaveStoresInvisible(t, mm);
        mm.VmaOps.EpochEnded(t, mm, mm.MmLockSeq);
    }

    /// <summary>
    /// §8.2's bug: without a release on the mm_lock_seq bump, the flags this section changed stay invisible to other
    /// CPUs for the bug's window; their readers get the old ones (<see cref="VmaLock.VisibleFlags"/>).
    /// </summary>
    private static void LeaveStoresInvisible(EmuTask t, MmStruct mm)
    {
        foreach (var vma in mm.Tree.Vmas)
        {
            if (vma.FlagsAtWriteLock is not { } old) continue;
            if (old != vma.Flags)
            {
                vma.StaleFlags = old;
                vma.StaleUntil = t.Clock + t.Machine.Bugs.StaleWindowNs;
            }
            vma.FlagsAtWriteLock = null;
        }
    }

    public static void MmapWriteUnlock(EmuTask t, MmStruct mm)
    {
        VmaEndWriteAll(t, mm);
        mm.MmapLock.Release(t, LockMode.Write);
    }

    public static void MmapWriteDowngrade(EmuTask t, MmStruct mm)
    {
        VmaEndWriteAll(t, mm);
        mm.MmapLock.Downgrade(t);
    }
}
