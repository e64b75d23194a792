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

    /// <summary>
    /// The VMA's flags as a reader that passed vma_start_read sees them. Since 6.4.8 mm_lock_seq is read with acquire and
    /// bumped with release, so a reader that finds the write section over also sees its stores. With §8.2's bug it may
    /// not: within the window after mmap_write_unlock the reader gets the flags from before the section, and the
    /// sanitizer reports the stale read (S4: for this reader, the flags changed under its lock).
    /// </summary>
    public static VmFlags VisibleFlags(EmuTask t, Vma vma, long addr)
    {
        if (t.Clock >= vma.StaleUntil || vma.StaleFlags == vma.Flags)
            return vma.Flags;
        t.Machine.Sanitizer.Report("S4", t, vma, addr,
            $"vma_start_read on {vma} found its write section over (mm_lock_seq {vma.Mm.MmLockSeq}) but read vm_flags {Vma.FlagString(vma.StaleFlags)} from before it: the section's stores are not visible (no acquire/release on mm_lock_seq)",
            "vma_start_read, stale vm_flags");
        return vma.StaleFlags;
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
        if (t.Machine.Bugs.MmLockSeqWithoutOrdering)
            vma.FlagsAtWriteLock ??= vma.Flags;
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
