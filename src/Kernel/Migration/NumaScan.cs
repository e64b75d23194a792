using DistEmu.Kernel.Fault;
using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sanitizer;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Migration;

/// <summary>task_numa_work (kernel/sched/fair.c) → change_prot_numa (mm/mprotect.c): NUMA balancing's scanner.</summary>
public static class NumaScan
{
    /// <summary>
    /// Under mmap_read_trylock (a busy mm is skipped, as task_numa_work does), turn the present entries of the VMAs
    /// <see cref="TaskNumaWorkScans"/> keeps in [start, end) into protnone so the next touch takes a hinting fault. No
    /// VMA write lock: it synchronises with faults through the PTL. Returns the number of entries changed (numa_pte_updates).
    /// </summary>
    public static async ValueTask<long> ChangeProtNuma(EmuTask t, MmStruct mm, long start, long end)
    {
        var m = t.Machine;
        m.Events.Record(t, EventKind.NumaScan, mm.Id, start, end - start);
        if (!MmapLock.MmapReadTrylock(t, mm))
            return 0;
        long updated = 0;
        foreach (var vma in mm.Tree.Overlapping(start, end))
        {
            if (!TaskNumaWorkScans(vma)) continue;
            updated += await mm.VmaOps.ChangeProtNuma(t, vma, Math.Max(start, vma.Start), Math.Min(end, vma.End));
        }
        m.VmStat.numa_pte_updates += updated;
        MmapLock.MmapReadUnlock(t, mm);
        return updated;
    }

    /// <summary>
    /// task_numa_work's VMA filter (kernel/sched/fair.c): read-only file mappings are skipped (shared libraries:
    /// migrating their pages is of marginal benefit) and so are inaccessible ones (PROT_NONE would be confused with
    /// NUMA hinting entries); writable file mappings and anonymous ones are scanned. The kernel's other skips —
    /// !vma_migratable, a mempolicy without MPOL_F_MOF, hugetlb, VM_MIXEDMAP — are for VMAs the emulator has no way
    /// to make.
    /// </summary>
    public static bool TaskNumaWorkScans(Vma vma)
    {
        if ((vma.Flags & (VmFlags.Read | VmFlags.Write | VmFlags.Exec)) == 0)
            return false;
        return vma.IsAnonymous || (vma.Flags & (VmFlags.Read | VmFlags.Write)) != VmFlags.Read;
    }

    /// <summary>change_pte_range with MM_CP_PROT_NUMA over [from, to) of one VMA, each page-table page under its PTL.</summary>
    public static async ValueTask<long> ChangeProtNumaVma(EmuTask t, Vma vma, long from, long to)
    {
        var m = t.Machine;
        var pt = vma.PageTable;
        long updated = 0;
        m.Sanitizer.CheckVmaUse(t, vma, "change_prot_numa", from);
        foreach (var page in pt.PagesIn(from, to))
        {
            m.Sanitizer.CheckPageTableAccess(t, vma, page, from, "change_prot_numa");
            await page.Ptl.AcquireWrite(t);
            var (ps, pe) = pt.RangeOf(page);
            long n = 0;
            // change_pmd_range with MM_CP_PROT_NUMA: a THP covered whole becomes one protnone PMD (change_huge_pmd,
            // counted as its 512 pages, as the kernel counts numa_pte_updates); one covered in part is split first.
            if (page.IsHuge && !HugeMemory.Covers(pt, page, from, to))
                await t.Delay(HugeMemory.SplitHugePmdLocked(t, vma, page));
            for (long a = Math.Max(ps, from); a < Math.Min(pe, to); a += m.Spec.PageSize)
            {
                int i = pt.IndexOf(a);
                long pte = page[i];
                if (Pte.Kind(pte) != PteKind.Present || Pte.Frame(pte) == Pte.ZeroFrame) continue;
                pt.Set(page, i, Pte.WithKind(pte, PteKind.ProtNone));
                n++;
            }
            await t.Delay(m.Cost.ChangeProtPerPageNs * Math.Max(1, n));
            page.Ptl.Release(t, LockMode.Write);
            updated += n;
        }
        return updated;
    }
}
