using System.Runtime.CompilerServices;
using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Migration;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sanitizer;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Fault;

/// <summary>
/// do_numa_page (mm/memory.c) with numa_migrate_prep and mpol_misplaced (mm/mempolicy.c), and
/// should_numa_migrate_memory (kernel/sched/fair.c): the NUMA hinting fault.
/// </summary>
public static partial class MmFault
{
    /// <summary>
    /// A touch of a protnone entry left by change_prot_numa. Under the PTL, the entry must still be the one read
    /// (pte_same; else another CPU or the scanner changed it: not this CPU's hint fault, nothing counted) and map a
    /// normal page (vm_normal_page: not the zero page); only then is it a numa_hint_faults (numa_migrate_prep counts
    /// there). <see cref="ShouldNumaMigrateMemory"/> decides whether a page on another node moves: if not, or if the
    /// page is local or a file page (file folio migration is not modelled), the entry is made accessible again under
    /// the same PTL. Otherwise the faulting CPU migrates it to its own node itself — asynchronously, trylock only —
    /// while still holding its fault lock; others touching the page meanwhile meet the migration entry and wait. If the
    /// migration fails the entry is restored.
    /// </summary>
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    private static async ValueTask<VmFault> DoNumaPage(EmuTask t, Vma vma, long addr, long orig)
    {
        var m = t.Machine;
        await t.Delay(0); // synchronise before touching the page table
        var pt = vma.PageTable;
        var page = pt.Lookup(addr);
        m.Sanitizer.CheckPageTableAccess(t, vma, page, addr, "do_numa_page");
        if (page is null)
            return VmFault.Done;
        int i = pt.IndexOf(addr);
        await page.Ptl.AcquireWrite(t);
        if (page[i] != orig)
        {
            page.Ptl.Release(t, LockMode.Write);
            return VmFault.Done;
        }
        long frame = Pte.Frame(orig);
        bool migrate = false;
        if (frame != Pte.ZeroFrame)
        {
            m.VmStat.numa_hint_faults++;
            // mpol_misplaced asks should_numa_migrate_memory for local pages too: it records this CPU either way.
            migrate = ShouldNumaMigrateMemory(t, frame) && m.NodeOfFrame(frame) != t.Node && !Pte.IsFile(orig);
        }
        if (!migrate)
        {
            // out_map: make the page accessible again, under the PTL taken for pte_same.
            pt.Set(page, i, Pte.WithKind(orig, PteKind.Present));
            m.Events.Record(t, EventKind.PteSet, vma.Id, addr, page[i]);
            await t.Delay(m.Cost.PteUpdateNs);
            page.Ptl.Release(t, LockMode.Write);
            return VmFault.Done;
        }
        page.Ptl.Release(t, LockMode.Write);
        if (await MigratePages.MigrateFolio(t, vma, addr, frame, t.Node, MigrateMode.Async))
        {
            m.VmStat.numa_pages_migrated++;
            return VmFault.Done;
        }
        await SetPteIfSame(t, vma, addr, orig, Pte.WithKind(orig, PteKind.Present));
        return VmFault.Done;
    }

    /// <summary>
    /// should_numa_migrate_memory (kernel/sched/fair.c), without numa groups or memory tiering, which the emulator does
    /// not have: swap this CPU into the folio's last_cpupid (folio_xchg_last_cpupid) and migrate only if the previous
    /// hint fault came from this node — the "two-stage filter" that keeps a page shared between nodes from
    /// ping-ponging: a page moves on the second consecutive hint fault from the same node. A folio with no hint fault
    /// since it was allocated (cpupid unset) may move at once, as the kernel allows first faults.
    /// </summary>
    internal static bool ShouldNumaMigrateMemory(EmuTask t, long frame)
    {
        if (t.Cpu < 0) return true;
        int last = t.Machine.Folios.XchgLastCpupid(frame, t.Cpu);
        return last < 0 || t.Machine.Spec.NodeOfCpu(last) == t.Node;
    }
}
