using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sanitizer;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Memory;

/// <summary>madvise(MADV_PAGEOUT) → reclaim of anonymous pages to swap (mm/madvise.c, mm/vmscan.c shrink_folio_list).</summary>
public static class PageOut
{
    /// <summary>
    /// Under mmap_read_lock, for each present anonymous page of [start, end): trylock its folio, under the PTL replace
    /// the entry by a swap entry, shoot down the TLBs, write the page out, free the frame, unlock. Not a writer: it
    /// synchronises with faults through the PTL and the folio lock. Returns pages swapped out.
    /// </summary>
    public static async ValueTask<int> MadvisePageout(EmuTask t, MmStruct mm, long start, long end)
    {
        var m = t.Machine;
        m.Events.Record(t, EventKind.PageOut, mm.Id, start, end - start);
        await MmapLock.MmapReadLock(t, mm);
        int n = 0;
        foreach (var vma in mm.Tree.Overlapping(start, end))
        {
            if (!vma.IsAnonymous) continue;
            n += await mm.VmaOps.PageOut(t, vma, Math.Max(start, vma.Start), Math.Min(end, vma.End));
        }
        MmapLock.MmapReadUnlock(t, mm);
        m.Sanitizer.CheckHoldsNothing(t, "madvise(MADV_PAGEOUT)");
        return n;
    }

    /// <summary>shrink_folio_list for the present anonymous pages of [from, to) of one VMA.</summary>
    public static async ValueTask<int> PageOutVma(EmuTask t, Vma vma, long from, long to)
    {
        var m = t.Machine;
        var mm = vma.Mm;
        var pt = mm.PageTable;
        int n = 0;
        m.Sanitizer.CheckVmaUse(t, vma, "madvise_pageout", from);
        for (long a = from; a < to; a += m.Spec.PageSize)
        {
            var page = pt.Lookup(a);
            if (page is null) continue;
            if (page.IsHuge)
            {
                // madvise_cold_or_pageout_pte_range on a PMD-mapped THP: a locked folio is skipped; else the PMD is
                // split (the folio with it) and its pages go out one by one below.
                if (m.Folios.IsLocked(page.HugeHead)) continue;
                await page.Ptl.AcquireWrite(t);
                await t.Delay(HugeMemory.SplitHugePmdLocked(t, vma, page));
                page.Ptl.Release(t, LockMode.Write);
            }
            int i = pt.IndexOf(a);
            long pte = page[i];
            if (Pte.Kind(pte) != PteKind.Present || Pte.IsFile(pte) || Pte.Frame(pte) == Pte.ZeroFrame) continue;
            long frame = Pte.Frame(pte);
            if (!m.Folios.TryLock(t, frame)) continue;
            await page.Ptl.AcquireWrite(t);
            bool same = page[i] == pte;
            if (same)
            {
                pt.Set(page, i, Pte.Swap(m.Swap.AllocSlot()));
                await t.Delay(m.Cost.PteUpdateNs);
            }
            page.Ptl.Release(t, LockMode.Write);
            if (same)
            {
                await TlbFlush.FlushRange(t, mm, a, a + m.Spec.PageSize);
                await t.Delay(m.Cost.SwapOutNs);
                m.VmStat.pswpout++;
                n++;
            }
            m.Folios.Unlock(t, frame);
            if (same)
            {
                m.Frames.Anon--;
                m.FreeFrame(frame);
            }
        }
        return n;
    }
}
