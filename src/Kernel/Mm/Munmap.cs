using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Memory;
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
            await UnmapRegion(t, mm, detached, start, end);
            MmapLock.MmapReadUnlock(t, mm);
        }
        m.Sanitizer.CheckHoldsNothing(t, "munmap");
        m.WriterWait.Record(waited);
        m.Observer?.OnWriter(t, "munmap", t0, t.Clock, waited);
        return waited;
    }

    /// <summary>Split, write-lock and detach the VMAs of [start, end), and publish the tree without them.</summary>
    internal static async ValueTask<(List<Vma> Detached, long Waited)> DetachRange(EmuTask t, MmStruct mm, long start, long end)
    {
        var (inside, waited) = await VmaRange.SplitAndWriteLock(t, mm, start, end);
        foreach (var v in inside)
            VmaLock.VmaMarkDetached(t, v);
        if (inside.Count > 0)
        {
            mm.Tree = mm.Tree.With(inside, []);
            await t.Delay(t.Machine.Cost.VmaUpdateNs);
        }
        return (inside, waited);
    }

    /// <summary>
    /// unmap_region: zap every entry of the detached VMAs under its PTL, flush the TLBs of the mm's CPUs, then
    /// free_pgtables. Runs with mmap_lock held (read after munmap's downgrade, write under mmap).
    /// </summary>
    internal static async ValueTask UnmapRegion(EmuTask t, MmStruct mm, List<Vma> detached, long start, long end)
    {
        var m = t.Machine;
        var pt = mm.PageTable;
        long zapped = 0;
        foreach (var vma in detached)
        {
            foreach (var page in pt.PagesIn(vma.Start, vma.End))
            {
                await page.Ptl.AcquireWrite(t);
                var (ps, pe) = pt.RangeOf(page);
                long from = Math.Max(ps, vma.Start), to = Math.Min(pe, vma.End);
                for (long a = from; a < to; a += m.Spec.PageSize)
                {
                    int i = pt.IndexOf(a);
                    long pte = page.Pte[i];
                    if (pte == Pte.None) continue;
                    ZapPte(m, pte);
                    pt.Set(page, i, Pte.None);
                    zapped++;
                }
                await t.Delay(m.Cost.ZapPerPageNs * Math.Max(1, (to - from) >> m.Spec.PageShift) / 8);
                page.Ptl.Release(t, LockMode.Write);
            }
        }
        await t.Delay(m.Cost.ZapPerPageNs * zapped);
        await TlbFlush.FlushRange(t, mm, start, end);
        pt.FreeUnused(start, end, mm.Tree);
    }

    /// <summary>zap_pte_range for one entry: free an anonymous frame (or leave it to the folio's locker), free a swap slot, drop a migration entry.</summary>
    private static void ZapPte(EmuMachine m, long pte)
    {
        switch (Pte.Kind(pte))
        {
            case PteKind.Present:
            case PteKind.ProtNone:
                long frame = Pte.Frame(pte);
                if (frame == Pte.ZeroFrame || Pte.IsFile(pte)) return;
                if (m.Folios.IsLocked(frame))
                {
                    m.Folios.DeferFree(frame);
                    return;
                }
                m.Frames.Anon--;
                m.FreeFrame(frame);
                return;
            case PteKind.Swap:
                m.Swap.FreeSlot(Pte.Payload(pte));
                return;
            case PteKind.Migration:
                // The migrator holds the folio and frees the source when it finds its entry gone.
                m.Folios.RemoveMigrationEntry(Pte.Frame(pte));
                return;
        }
    }
}
