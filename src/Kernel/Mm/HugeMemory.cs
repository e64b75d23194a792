using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Sanitizer;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Mm;

/// <summary>
/// Anonymous transparent huge pages at the PMD level (mm/huge_memory.c): which VMAs may have them, splitting a PMD
/// mapping into 512 PTEs, zapping and changing a whole one. A PMD-mapped THP is a <see cref="PtePage"/> whose
/// <see cref="PtePage.HugeHead"/> is set: its 512 entries are the per-page view of the one PMD and change together,
/// under the page's PTL, which stands for pmd_lock (the kernel's split PMD lock covers the PMD table page; in the
/// emulator the lock of the 2 MiB range is the finer one: a simplification that only lowers PMD-lock contention).
/// </summary>
public static class HugeMemory
{
    /// <summary>
    /// thp_vma_allowable_order for a PMD-sized anonymous fault (6.6: hugepage_vma_check with the sysfs setting): an
    /// anonymous VMA, not VM_NOHUGEPAGE, and transparent_hugepage=always, or madvise with VM_HUGEPAGE.
    /// </summary>
    public static bool ThpVmaAllowable(EmuMachine m, Vma vma)
    {
        if (!vma.IsAnonymous || (vma.Flags & VmFlags.NoHugePage) != 0 || (vma.Flags & VmFlags.Shared) != 0)
            return false;
        return m.Spec.Thp switch
        {
            TransparentHugepage.Always => true,
            TransparentHugepage.Madvise => (vma.Flags & VmFlags.HugePage) != 0,
            _ => false,
        };
    }

    /// <summary>thp_vma_suitable_order: the 2 MiB-aligned range around <paramref name="addr"/> lies inside the VMA.</summary>
    public static bool ThpVmaSuitable(EmuMachine m, Vma vma, long addr)
    {
        long haddr = HugeAlign(m, addr);
        return haddr >= vma.Start && haddr + m.Spec.HugeSize <= vma.End;
    }

    public static long HugeAlign(EmuMachine m, long addr) => addr & ~(m.Spec.HugeSize - 1);

    /// <summary>
    /// __split_huge_pmd_locked: the caller holds the page's PTL (pmd_lock). The PMD becomes 512 PTEs mapping the same
    /// pages with the same protection (a PMD migration entry becomes 512 PTE migration entries, each one more reference
    /// for the folio's migration-entry count); the THP is split into small folios now, or when its locker unlocks it.
    /// Counts thp_split_pmd. Returns the emulated cost of writing the 512 entries.
    /// </summary>
    internal static long SplitHugePmdLocked(EmuTask t, Vma vma, PtePage page)
    {
        var m = t.Machine;
        if (!page.IsHuge) return 0;
        long head = page.HugeHead;
        if (Pte.Kind(page[0]) == PteKind.Migration)
            m.Folios.AddMigrationEntry(head, NumaNode.HugeFrames - 1);
        page.HugeHead = -1;
        m.Folios.SplitLarge(head);
        m.VmStat.thp_split_pmd++;
        m.Events.Record(t, EventKind.PteSet, vma.Id, vma.PageTable.RangeOf(page).Start, page[0]);
        return m.Cost.PteUpdateNs * NumaNode.HugeFrames;
    }

    /// <summary>
    /// zap_huge_pmd: the caller holds the PTL and zaps the whole 2 MiB. A present (or protnone) THP is freed whole — or,
    /// if its folio is locked (a migration before its unmap step), by its locker at unlock; a PMD migration entry is
    /// dropped (the migrator frees the source when it finds it gone). Returns the entries cleared (512).
    /// </summary>
    internal static long ZapHugePmdLocked(EmuTask t, Vma vma, PtePage page)
    {
        var m = t.Machine;
        var pt = vma.PageTable;
        long head = page.HugeHead;
        long first = page[0];
        switch (Pte.Kind(first))
        {
            case PteKind.Migration:
                m.Folios.RemoveMigrationEntry(head);
                break;
            default:
                if (m.Folios.IsLocked(head))
                {
                    m.Folios.DeferFree(head);
                }
                else
                {
                    m.Frames.Anon -= NumaNode.HugeFrames;
                    m.FreeHugeFolio(head);
                }
                break;
        }
        for (int i = 0; i < PtePage.Entries; i++)
            pt.Set(page, i, Pte.None);
        page.HugeHead = -1;
        return PtePage.Entries;
    }

    /// <summary>
    /// Map a new THP: the caller holds the PTL and found the range empty (pmd_none). Sets the 512 entries to the pages
    /// of <paramref name="head"/> (set_pmd_at with a huge pmd) and records the folio as large.
    /// </summary>
    internal static void SetHugePmdLocked(EmuTask t, Vma vma, PtePage page, long head, bool writable)
    {
        var m = t.Machine;
        var pt = vma.PageTable;
        for (int i = 0; i < PtePage.Entries; i++)
            pt.Set(page, i, Pte.Present(head + i, writable));
        page.HugeHead = head;
        m.Folios.MarkLarge(head);
        m.Events.Record(t, EventKind.PteSet, vma.Id, pt.RangeOf(page).Start, page[0]);
    }

    /// <summary>Change every entry of a PMD-mapped THP by the same rule (change_huge_pmd, do_huge_pmd_wp_page reuse, NUMA restore).</summary>
    internal static void ChangeHugePmdLocked(Vma vma, PtePage page, Func<long, long> change)
    {
        var pt = vma.PageTable;
        for (int i = 0; i < PtePage.Entries; i++)
            pt.Set(page, i, change(page[i]));
    }

    /// <summary>
    /// vma_adjust_trans_huge (split_huge_pmd_if_needed): __split_vma at <paramref name="boundary"/> splits a PMD-mapped
    /// THP that straddles it, under pmd_lock, so no THP is ever mapped across two VMAs. The caller holds mmap_lock for write.
    /// </summary>
    public static async ValueTask VmaAdjustTransHuge(EmuTask t, Vma vma, long boundary)
    {
        var m = t.Machine;
        if ((boundary & (m.Spec.HugeSize - 1)) == 0) return;
        var page = vma.PageTable.Lookup(boundary);
        if (page is not { IsHuge: true }) return;
        m.Sanitizer.CheckPageTableAccess(t, vma, page, boundary, "split_huge_pmd_if_needed");
        await page.Ptl.AcquireWrite(t);
        await t.Delay(SplitHugePmdLocked(t, vma, page));
        page.Ptl.Release(t, Locking.LockMode.Write);
    }

    /// <summary>Whether [from, to) covers all of <paramref name="page"/>'s 2 MiB.</summary>
    internal static bool Covers(PageTable pt, PtePage page, long from, long to)
    {
        var (s, e) = pt.RangeOf(page);
        return from <= s && to >= e;
    }
}
