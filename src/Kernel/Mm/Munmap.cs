using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Sanitizer;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Mm;

/// <summary>munmap: do_vmi_align_munmap and unmap_region (mm/mmap.c), zap_pte_range (mm/memory.c).</summary>
public static class Munmap
{
    /// <summary>
    /// munmap(start, len): mmap_write_lock; split the edge VMAs; vma_start_write every VMA in the range (waiting
    /// for its fault readers) and mark it detached; remove the range from the tree; downgrade (mm_lock_seq + 1);
    /// zap the entries, shoot down the TLBs, free the page-table pages nobody maps any more; unlock.
    /// Returns the emulated ns the writer waited (for mmap_lock and for VMA readers).
    /// </summary>
    public static async ValueTask<long> DoMunmap(EmuTask t, MmStruct mm, long start, long end)
    {
        var m = t.Machine;
        long t0 = t.Clock;
        m.Observer?.OnWriterBegin(t, "munmap", start, end - start);
        await t.Delay(m.Cost.SyscallNs);
        m.Events.Record(t, EventKind.Munmap, mm.Id, start, end - start);
        long beforeLock = t.Clock;
        await MmapLock.MmapWriteLock(t, mm);
        long waited = t.Clock - beforeLock - m.Cost.LockNs;
        await t.Preempt(PreemptSite.WriterAfterMmapWriteLock);
        var (detached, w) = await DetachRange(t, mm, start, end);
        waited += w;
        if (detached.Count == 0)
        {
            MmapLock.MmapWriteUnlock(t, mm);
        }
        else
        {
            MmapLock.MmapWriteDowngrade(t, mm);
            await UnmapRegion(t, mm, detached);
            MmapLock.MmapReadUnlock(t, mm);
        }
        m.Sanitizer.CheckHoldsNothing(t, "munmap");
        m.RecordWriterWait(waited - w, w);
        m.Observer?.OnWriter(t, "munmap", t0, t.Clock, waited);
        return waited;
    }

    /// <summary>Split, write-lock and detach the VMAs of [start, end), and publish the tree without them.</summary>
    internal static async ValueTask<(List<Vma> Detached, long Waited)> DetachRange(EmuTask t, MmStruct mm, long start, long end)
    {
        var (inside, waited) = await VmaRange.SplitAndWriteLock(t, mm, start, end);
        foreach (var v in inside)
            await mm.VmaOps.MarkDetached(t, v);
        if (inside.Count > 0)
        {
            mm.Tree = mm.Tree.With(inside, []);
            await t.Delay(t.Machine.Cost.VmaUpdateNs);
        }
        return (inside, waited);
    }

    /// <summary>
    /// unmap_region: for each detached VMA zap its entries under their PTLs, shoot down the TLBs of the CPUs that may
    /// cache them, and free_pgtables. Runs with mmap_lock held (read after munmap's downgrade, write under mmap).
    /// </summary>
    internal static async ValueTask UnmapRegion(EmuTask t, MmStruct mm, List<Vma> detached)
    {
        foreach (var vma in detached)
            await mm.VmaOps.Unmap(t, vma);
        if (detached.Count > 0)
            mm.VmaOps.FreePgTables(t, mm, detached.Min(v => v.Start), detached.Max(v => v.End));
    }
}
