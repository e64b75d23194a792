using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Mm;

/// <summary>
/// zap_pmd_range / zap_pte_range (mm/memory.c): clearing a detached VMA's entries, page-table page by page-table page
/// under the PTL; a PMD-mapped THP is zapped whole (zap_huge_pmd) or, if the range covers only part of it, split first.
/// </summary>
public static class ZapPteRange
{
    /// <summary>Zap the entries of [start, end) of <paramref name="vma"/>. Returns how many were not pte_none.</summary>
    public static async ValueTask<long> ZapVma(EmuTask t, Vma vma, long start, long end)
    {
        var m = t.Machine;
        var pt = vma.PageTable;
        long zapped = 0;
        foreach (var page in pt.PagesIn(start, end))
        {
            m.Sanitizer.CheckPageTableAccess(t, vma, page, start, "zap_pte_range");
            await page.Ptl.AcquireWrite(t);
            var (ps, pe) = pt.RangeOf(page);
            long from = Math.Max(ps, start), to = Math.Min(pe, end);
            long n = 0;
            if (page.IsHuge)
            {
                if (HugeMemory.Covers(pt, page, start, end))
                {
                    // zap_huge_pmd: one entry, the whole 2 MiB folio.
                    zapped += HugeMemory.ZapHugePmdLocked(t, vma, page);
                    await t.Delay(m.Cost.ZapPerPageNs);
                    page.Ptl.Release(t, LockMode.Write);
                    continue;
                }
                // zap_pmd_range on part of a THP: __split_huge_pmd first, then zap the PTEs.
                await t.Delay(HugeMemory.SplitHugePmdLocked(t, vma, page));
            }
            for (long a = from; a < to; a += m.Spec.PageSize)
            {
                int i = pt.IndexOf(a);
                long pte = page[i];
                if (pte == Pte.None) continue;
                ZapPte(m, pte);
                pt.Set(page, i, Pte.None);
                n++;
            }
            await t.Delay(m.Cost.ZapPerPageNs * Math.Max(1, n));
            page.Ptl.Release(t, LockMode.Write);
            zapped += n;
        }
        return zapped;
    }

    /// <summary>One entry: free an anonymous frame (or leave it to the folio's locker), free a swap slot, drop a migration entry.</summary>
    private static void ZapPte(EmuMachine m, long pte)
    {
        switch (Pte.Kind(pte))
        {
            case PteKind.Present:
            case PteKind.ProtNone:
                long frame = Pte.Frame(pte);
                if (frame == Pte.ZeroFrame || Pte.IsFile(pte)) return;
                long folio = m.Folios.FolioOf(frame);
                if (m.Folios.IsLocked(folio))
                {
                    // A page of a THP whose PMD was split while a migration held it is freed with the rest at unlock.
                    if (folio == frame) m.Folios.DeferFree(frame);
                    else m.Folios.DeferFreePage(folio, frame);
                    return;
                }
                m.Frames.Anon--;
                m.FreeFrame(frame);
                return;
            case PteKind.Swap:
                FreeSwapAndCache(m, Pte.Payload(pte));
                return;
            case PteKind.Migration:
                // The migrator holds the folio and frees the source when it finds its entry gone.
                m.Folios.RemoveMigrationEntry(Pte.Frame(pte));
                return;
        }
    }

    /// <summary>
    /// free_swap_and_cache (mm/swapfile.c): free the slot; a folio of it still in the swap cache (a swap-in that returned
    /// RETRY before mapping it) is freed with it if it can be trylocked, else left to its holder (<see cref="SwapDevice.Orphans"/>).
    /// </summary>
    private static void FreeSwapAndCache(EmuMachine m, long slot)
    {
        if (m.Swap.SwapCache.TryGetValue(slot, out long frame))
        {
            if (m.Folios.IsLocked(frame))
            {
                m.Swap.Orphans.Add(slot);
                return;
            }
            m.Swap.SwapCache.Remove(slot);
            m.Frames.InFlight--;
            m.FreeFrame(frame);
        }
        m.Swap.FreeSlot(slot);
    }
}
