using System.Runtime.CompilerServices;
using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Migration;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sanitizer;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Fault;

/// <summary>
/// The PMD level of __handle_mm_fault (mm/memory.c) for anonymous THPs: create_huge_pmd → do_huge_pmd_anonymous_page,
/// pmd_migration_entry_wait, do_huge_pmd_numa_page and do_huge_pmd_wp_page (mm/huge_memory.c).
/// </summary>
public static partial class MmFault
{
    /// <summary>
    /// __handle_mm_fault's test before create_huge_pmd: the pmd is none (no page-table page, or one with no entry) and
    /// thp_vma_allowable_order allows a PMD-sized folio here. Read faults are left to the PTE level, which maps the 4 KiB
    /// zero page: the kernel maps the huge zero page instead, and a write to it splits the PMD and copies a 4 KiB page
    /// (do_huge_pmd_wp_page → fallback), so the range ends up PTE-mapped either way; only the read's cost differs.
    /// </summary>
    private static bool WantsHugePmd(EmuMachine m, Vma vma, long addr, FaultFlags flags, PtePage? page) =>
        flags.Has(FaultFlags.Write) && (page is null || (page.Used == 0 && !page.IsHuge))
        && HugeMemory.ThpVmaAllowable(m, vma) && HugeMemory.ThpVmaSuitable(m, vma, addr);

    /// <summary>
    /// The PMD maps a THP (pmd_trans_huge) or is a PMD migration entry: dispatch as __handle_mm_fault does before it
    /// ever reaches the PTE level. A PMD migration entry is waited for by pmd_migration_entry_wait under whatever lock
    /// the fault holds, VMA lock or mmap_lock, under every policy, and the fault returns 0: this path is not
    /// do_swap_page, so neither 6.4's bail-out under the VMA lock nor the June 2023 proposals' lock drop apply to it.
    /// </summary>
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    private static async ValueTask<VmFault> HandleHugePmdFault(EmuTask t, Vma vma, long addr, FaultFlags flags, PtePage page, long pte)
    {
        switch (Pte.Kind(pte))
        {
            case PteKind.Migration:
                await MigrationWait.MigrationEntryWait(t, vma, page, addr);
                return VmFault.Done;
            case PteKind.ProtNone:
                return await DoHugePmdNumaPage(t, vma, addr, page, pte);
            case PteKind.Present when flags.Has(FaultFlags.Write) && !Pte.IsWritable(pte):
                return await DoHugePmdWpPage(t, vma, addr, page, pte);
            default:
                return VmFault.Done; // spurious: another CPU fixed the PMD meanwhile
        }
    }

    /// <summary>
    /// do_huge_pmd_anonymous_page (mm/huge_memory.c): anon_vma_prepare, allocate a 2 MiB folio on the faulting CPU's
    /// node (vma_alloc_folio of HPAGE_PMD_ORDER, no compaction), clear_huge_page, then under pmd_lock, if the pmd is
    /// still none, map all 512 pages with one PMD and count thp_fault_alloc. No free 2 MiB block: count
    /// thp_fault_fallback and fall back to a 4 KiB page (VM_FAULT_FALLBACK → handle_pte_fault).
    /// </summary>
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    private static async ValueTask<VmFault> DoHugePmdAnonymousPage(EmuTask t, Vma vma, long addr, FaultFlags flags)
    {
        var m = t.Machine;
        if (!vma.HasAnonVma)
        {
            var r = AnonVmaPrepare(t, vma, flags);
            if (r != VmFault.Done) return r;
        }
        t.Advance(m.Cost.PageAllocNs);
        await t.DelayExact(m.Cost.PcpRefillNs); // the zone lock: an order-9 page does not come from the per-CPU list here
        long head = await m.FramePort.AllocHuge(t, t.Node);
        if (head < 0)
        {
            m.VmStat.thp_fault_fallback++;
            return await DoAnonymousPage(t, vma, addr, flags);
        }
        m.Frames.InFlight += NumaNode.HugeFrames;
        t.Advance(m.ClearHugePageNs); // clear_huge_page on a folio only we know of
        await t.Delay(0); // synchronise before touching the page table
        var pt = vma.PageTable;
        long haddr = HugeMemory.HugeAlign(m, addr);
        var page = pt.GetOrAlloc(haddr);
        m.Sanitizer.CheckPageTableAccess(t, vma, page, haddr, "do_huge_pmd_anonymous_page: pmd_lock");
        await page.Ptl.AcquireWrite(t);
        bool none = page.Used == 0 && !page.IsHuge;
        if (none)
        {
            HugeMemory.SetHugePmdLocked(t, vma, page, head, writable: true);
            await t.Delay(m.Cost.PteUpdateNs);
            m.Frames.InFlight -= NumaNode.HugeFrames;
            m.Frames.Anon += NumaNode.HugeFrames;
            m.VmStat.thp_fault_alloc++;
        }
        page.Ptl.Release(t, LockMode.Write);
        if (!none)
        {
            // Another CPU populated the pmd meanwhile: free the folio; the access re-executes.
            m.Frames.InFlight -= NumaNode.HugeFrames;
            m.FreeHugeFolio(head);
        }
        return VmFault.Done;
    }

    /// <summary>
    /// do_huge_pmd_numa_page: under pmd_lock the PMD must still be the protnone one read; count numa_hint_faults, ask
    /// should_numa_migrate_memory about the folio, and either make the PMD accessible again or migrate the whole THP to
    /// this CPU's node (migrate_misplaced_folio, async) while holding the fault lock; on failure restore the PMD.
    /// </summary>
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    private static async ValueTask<VmFault> DoHugePmdNumaPage(EmuTask t, Vma vma, long addr, PtePage page, long orig)
    {
        var m = t.Machine;
        await t.Delay(0);
        var pt = vma.PageTable;
        m.Sanitizer.CheckPageTableAccess(t, vma, page, addr, "do_huge_pmd_numa_page");
        if (page.Freed) return VmFault.Done;
        await page.Ptl.AcquireWrite(t);
        long head = page.HugeHead;
        if (head < 0 || page[pt.IndexOf(addr)] != orig)
        {
            page.Ptl.Release(t, LockMode.Write);
            return VmFault.Done;
        }
        m.VmStat.numa_hint_faults++;
        bool migrate = ShouldNumaMigrateMemory(t, head) && m.NodeOfFrame(head) != t.Node;
        if (!migrate)
        {
            HugeMemory.ChangeHugePmdLocked(vma, page, p => Pte.WithKind(p, PteKind.Present));
            m.Events.Record(t, EventKind.PteSet, vma.Id, HugeMemory.HugeAlign(m, addr), page[0]);
            await t.Delay(m.Cost.PteUpdateNs);
            page.Ptl.Release(t, LockMode.Write);
            return VmFault.Done;
        }
        page.Ptl.Release(t, LockMode.Write);
        long haddr = HugeMemory.HugeAlign(m, addr);
        int moved = await MigratePages.MigrateBatch(t, vma, [(haddr, head)], t.Node, MigrateMode.Async);
        if (moved > 0)
        {
            m.VmStat.numa_pages_migrated += moved;
            return VmFault.Done;
        }
        // Restore the PMD if it is still this protnone THP.
        var now = pt.Lookup(haddr);
        if (now is null) return VmFault.Done;
        await now.Ptl.AcquireWrite(t);
        if (now.HugeHead == head && Pte.Kind(now[0]) == PteKind.ProtNone)
        {
            HugeMemory.ChangeHugePmdLocked(vma, now, p => Pte.WithKind(p, PteKind.Present));
            await t.Delay(m.Cost.PteUpdateNs);
        }
        now.Ptl.Release(t, LockMode.Write);
        return VmFault.Done;
    }

    /// <summary>
    /// do_huge_pmd_wp_page for an exclusive anonymous THP: reuse it, making the whole PMD writable under pmd_lock.
    /// (Every anonymous folio here is exclusive to its mm; the huge zero page is not modelled.)
    /// </summary>
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    private static async ValueTask<VmFault> DoHugePmdWpPage(EmuTask t, Vma vma, long addr, PtePage page, long orig)
    {
        var m = t.Machine;
        await t.Delay(0);
        m.Sanitizer.CheckPageTableAccess(t, vma, page, addr, "do_huge_pmd_wp_page");
        if (page.Freed) return VmFault.Done;
        await page.Ptl.AcquireWrite(t);
        if (page.IsHuge && page[vma.PageTable.IndexOf(addr)] == orig)
        {
            HugeMemory.ChangeHugePmdLocked(vma, page, p => Pte.WithWritable(p, true));
            await t.Delay(m.Cost.PteUpdateNs);
        }
        page.Ptl.Release(t, LockMode.Write);
        return VmFault.Done;
    }
}
