using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Sanitizer;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Mm;

/// <summary>mprotect: do_mprotect_pkey, mprotect_fixup and change_protection (mm/mprotect.c).</summary>
public static class Mprotect
{
    /// <summary>
    /// mprotect(start, len, prot): mmap_write_lock; for each VMA in the range whose flags change (mprotect_fixup returns
    /// at once for one whose flags stay the same: no split, no vma_start_write), split it at the range's edges,
    /// vma_start_write it, change its flags and change_protection its entries (write removed → read-only; no access →
    /// protnone; access restored → present again; write added → exclusive anonymous entries writable at once,
    /// MM_CP_TRY_CHANGE_WRITABLE); shoot down the TLBs; unlock. Simplification: VMAs are not merged afterwards
    /// (vma_modify_flags would merge a VMA with a neighbour whose flags now match).
    /// </summary>
    public static async ValueTask<long> DoMprotect(EmuTask t, MmStruct mm, long start, long end, VmFlags prot)
    {
        var m = t.Machine;
        long t0 = t.Clock;
        m.Observer?.OnWriterBegin(t, "mprotect", start, end - start);
        await t.Delay(m.Cost.SyscallNs);
        m.Events.Record(t, EventKind.Mprotect, mm.Id, start, (long)prot);
        long beforeLock = t.Clock;
        await MmapLock.MmapWriteLock(t, mm);
        long waited = t.Clock - beforeLock - m.Cost.LockNs;
        await t.Preempt(PreemptSite.WriterAfterMmapWriteLock);
        var (inside, w) = await VmaRange.SplitAndWriteLock(t, mm, start, end, skipWriteLock: m.Bugs.SkipVmaStartWriteInMprotect,
            changes: vma => NewFlags(vma, prot) != vma.Flags);
        waited += w;
        bool accessible = (prot & (VmFlags.Read | VmFlags.Write | VmFlags.Exec)) != 0;
        foreach (var vma in inside)
        {
            m.Sanitizer.CheckVmaChange(t, vma, "mprotect_fixup");
            vma.Flags = NewFlags(vma, prot);
            await mm.VmaOps.ChangeProtection(t, vma, writable: (prot & VmFlags.Write) != 0, accessible);
        }
        await t.Delay(m.Cost.VmaUpdateNs);
        MmapLock.MmapWriteUnlock(t, mm);
        m.Sanitizer.CheckHoldsNothing(t, "mprotect");
        m.RecordWriterWait(waited - w, w);
        m.Observer?.OnWriter(t, "mprotect", t0, t.Clock, waited);
        return waited;
    }

    /// <summary>Flags mprotect leaves alone: sharing and the madvise THP hints (VM_HUGEPAGE, VM_NOHUGEPAGE).</summary>
    private const VmFlags Kept = VmFlags.Shared | VmFlags.HugePage | VmFlags.NoHugePage;

    /// <summary>The flags mprotect gives <paramref name="vma"/>: the new protection, the VMA's sharing and THP hints kept.</summary>
    private static VmFlags NewFlags(Vma vma, VmFlags prot) => (prot & ~Kept) | (vma.Flags & Kept);

    /// <summary>
    /// change_protection over one VMA's entries, each page-table page under its PTL. With <paramref name="writable"/> on
    /// a private VMA (vma_wants_manual_pte_write_upgrade, so MM_CP_TRY_CHANGE_WRITABLE), change_pte_range makes an entry
    /// writable at once where can_change_pte_writable allows it: an exclusive anonymous page, so the next write does not
    /// fault (the zero page and private file pages stay read-only, to be copied by do_wp_page). A shared VMA's entries stay
    /// read-only until written (wp_page_shared).
    /// </summary>
    public static async ValueTask ChangeProtection(EmuTask t, Vma vma, bool writable, bool accessible)
    {
        var m = t.Machine;
        var pt = vma.PageTable;
        bool tryChangeWritable = writable && accessible && (vma.Flags & VmFlags.Shared) == 0;
        foreach (var page in pt.PagesIn(vma.Start, vma.End))
        {
            m.Sanitizer.CheckPageTableAccess(t, vma, page, vma.Start, "change_pte_range");
            await page.Ptl.AcquireWrite(t);
            var (ps, pe) = pt.RangeOf(page);
            long from = Math.Max(ps, vma.Start), to = Math.Min(pe, vma.End);
            long changed = 0;
            // change_pmd_range: a THP the VMA covers whole changes as one PMD (change_huge_pmd: its 512 entries the same
            // way); one it covers in part (a split VMA) is split first (__split_huge_pmd).
            if (page.IsHuge && !HugeMemory.Covers(pt, page, vma.Start, vma.End))
                await t.Delay(HugeMemory.SplitHugePmdLocked(t, vma, page));
            for (long a = from; a < to; a += m.Spec.PageSize)
            {
                int i = pt.IndexOf(a);
                long pte = page[i];
                var kind = Pte.Kind(pte);
                if (kind is not (PteKind.Present or PteKind.ProtNone)) continue;
                long next = Pte.WithKind(pte, accessible ? PteKind.Present : PteKind.ProtNone);
                if (!writable) next = Pte.WithWritable(next, false);
                else if (tryChangeWritable && CanChangePteWritable(next)) next = Pte.WithWritable(next, true);
                if (next != pte)
                {
                    pt.Set(page, i, next);
                    changed++;
                }
            }
            await t.Delay(m.Cost.ChangeProtPerPageNs * Math.Max(1, changed));
            page.Ptl.Release(t, LockMode.Write);
        }
    }

    /// <summary>
    /// can_change_pte_writable for a private VMA: an anonymous page (not a file page, not the shared zero page). Every
    /// anonymous page here is exclusive to its mm, as do_wp_page's reuse assumes too (PageAnonExclusive).
    /// </summary>
    private static bool CanChangePteWritable(long pte) => !Pte.IsFile(pte) && Pte.Frame(pte) != Pte.ZeroFrame;
}
