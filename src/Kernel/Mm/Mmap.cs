using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Sanitizer;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Mm;

/// <summary>mmap_region (mm/mmap.c) at a fixed address (MAP_FIXED semantics: the workload chooses addresses).</summary>
public static class Mmap
{
    /// <summary>
    /// mmap: mmap_write_lock; unmap whatever overlaps (under the write lock); create the VMA write-locked before it is
    /// inserted in the tree; unlock. VMAs are not merged with their neighbours (vma_merge is not modelled), so each
    /// mmap is its own VMA. Returns the new VMA.
    /// </summary>
    public static async ValueTask<Vma> DoMmap(EmuTask t, MmStruct mm, long start, long length, VmFlags flags, FileObject? file = null, long pgoff = 0)
    {
        var m = t.Machine;
        long t0 = t.Clock;
        long end = start + length;
        m.Observer?.OnWriterBegin(t, "mmap", start, length);
        await t.Delay(m.Cost.SyscallNs);
        m.Events.Record(t, EventKind.Mmap, mm.Id, start, length);
        long beforeLock = t.Clock;
        await MmapLock.MmapWriteLock(t, mm);
        long waited = t.Clock - beforeLock - m.Cost.LockNs;
        await t.Preempt(PreemptSite.WriterAfterMmapWriteLock);
        var (detached, w) = await Munmap.DetachRange(t, mm, start, end);
        waited += w;
        if (detached.Count > 0)
            await Munmap.UnmapRegion(t, mm, detached);
        var vma = new Vma(m, m.NextVmaId(), mm, start, end, flags, file, pgoff) { VmLockSeq = mm.MmLockSeq };
        await mm.VmaOps.Created(t, vma);
        mm.Tree = mm.Tree.With([], [vma]);
        await t.Delay(m.Cost.VmaUpdateNs);
        MmapLock.MmapWriteUnlock(t, mm);
        m.Sanitizer.CheckHoldsNothing(t, "mmap");
        m.RecordWriterWait(waited - w, w);
        m.Observer?.OnWriter(t, "mmap", t0, t.Clock, waited);
        return vma;
    }
}
