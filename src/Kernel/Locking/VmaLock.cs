using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Locking;

/// <summary>
/// The per-VMA lock (include/linux/mm.h, 6.6): vma_start_read / vma_end_read / vma_start_write /
/// vma_mark_detached. Readers only ever try; a VMA is write-locked while vm_lock_seq == mm_lock_seq, and there
/// is no per-VMA write unlock: the epoch ends at mmap_write_unlock or downgrade.
/// </summary>
public static class VmaLock
{
    /// <summary>
    /// vma_start_read. Never blocks. (1) write-locked in this epoch → false; (2) trylock vm_lock for read, which fails
    /// if a writer holds or waits; (3) re-check the sequence under the lock (a writer may have come and gone);
    /// (4) true, holding the read lock. False positives (a needless fallback) are allowed, false negatives never.
    /// </summary>
    public static bool VmaStartRead(EmuTask t, Vma vma, long addr)
    {
        if (vma.VmLockSeq == vma.Mm.MmLockSeq)
            return false;
        if (!vma.VmLock.TryRead(t))
            return false;
        if (vma.VmLockSeq == vma.Mm.MmLockSeq)
        {
            vma.VmLock.Release(t, LockMode.Read);
            return false;
        }
        t.Machine.Sanitizer.CheckReadLockGranted(t, vma, addr);
        return true;
    }

    /// <summary>vma_end_read. After it the caller must not touch the VMA or its page table (S5, S8).</summary>
    public static void VmaEndRead(EmuTask t, Vma vma) => vma.VmLock.Release(t, LockMode.Read);

    /// <summary>
    /// vma_start_write. Requires mmap_lock held for write. Already write-locked in this epoch → return. Else take
    /// vm_lock for write, which waits for every fault holding the read lock, publish vm_lock_seq = mm_lock_seq, and
    /// release vm_lock at once. Returns the emulated ns spent waiting for readers.
    /// </summary>
    public static async ValueTask<long> VmaStartWrite(EmuTask t, Vma vma)
    {
        var mm = vma.Mm;
        if (vma.VmLockSeq == mm.MmLockSeq)
            return 0;
        long before = t.Clock;
        await vma.VmLock.AcquireWrite(t);
        long waited = t.Clock - before;
        t.Machine.Sanitizer.CheckWriteLockPublished(t, vma);
        vma.VmLockSeq = mm.MmLockSeq;
        await t.Delay(t.Machine.Cost.LockNs);
        vma.VmLock.Release(t, LockMode.Write);
        return waited;
    }

    /// <summary>vma_mark_detached: only on a write-locked VMA.</summary>
    public static void VmaMarkDetached(EmuTask t, Vma vma)
    {
        t.Machine.Sanitizer.CheckVmaChange(t, vma, "vma_mark_detached");
        vma.Detached = true;
        t.Machine.Events.Record(t, Sanitizer.EventKind.Detach, vma.Id, vma.Start);
    }
}
