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
        mm.VmaOps.EpochEnded(t, mm, mm.MmLockSeq);
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
