using System.Runtime.CompilerServices;
using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sanitizer;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Fault;

/// <summary>migration_entry_wait (mm/migrate.c) and the ptl-drop variant.</summary>
public static class MigrationWait
{
    /// <summary>
    /// migration_entry_wait → migration_entry_wait_on_locked. Through the page-table pointer handle_pte_fault
    /// computed, take the PTL; if the entry is no longer a migration entry, return. Else register as a waiter of
    /// the source folio under the PTL (so the wakeup cannot be lost), drop the PTL, sleep until the folio is
    /// unlocked. Whatever lock the caller holds must keep the page table alive until the PTL is taken (S8): under
    /// the v2/v3 proposals nothing does, and a munmap that freed the page meanwhile makes this a use-after-free.
    /// </summary>
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder))]
    public static async ValueTask MigrationEntryWait(EmuTask t, Vma vma, PtePage page, long addr)
    {
        var m = t.Machine;
        await t.Delay(m.Cost.PteMapNs);
        m.Events.Record(t, EventKind.MigrationEntryWait, vma.Id, addr);
        m.Sanitizer.CheckPageTableAccess(t, vma, page, addr, "migration_entry_wait: pte_offset_map_lock", takingPtl: true);
        if (page.Freed)
            return; // Reported; the emulator does not follow the dangling pointer. The access re-executes.
        await page.Ptl.AcquireWrite(t);
        long pte = page[vma.PageTable.IndexOf(addr)];
        if (Pte.Kind(pte) != PteKind.Migration)
        {
            page.Ptl.Release(t, LockMode.Write);
            return;
        }
        await SleepOnFolioDroppingPtl(t, page, Pte.Frame(pte));
    }

    /// <summary>
    /// The ptl-drop design: under the VMA read lock take the PTL, re-check the entry, release the VMA lock while
    /// holding the PTL (munmap's zap needs this PTL, so the page table cannot go away), register on the folio,
    /// drop the PTL and sleep holding nothing. Returns COMPLETED (lock released by the callee), or 0 with the VMA
    /// lock still held if the migration already finished.
    /// </summary>
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    public static async ValueTask<VmFault> MigrationEntryWaitDropVmaLock(EmuTask t, Vma vma, PtePage page, long addr)
    {
        var m = t.Machine;
        await t.Delay(m.Cost.PteMapNs);
        m.Events.Record(t, EventKind.MigrationEntryWait, vma.Id, addr, 1);
        m.Sanitizer.CheckPageTableAccess(t, vma, page, addr, "migration_entry_wait: pte_offset_map_lock", takingPtl: true);
        await page.Ptl.AcquireWrite(t);
        long pte = page[vma.PageTable.IndexOf(addr)];
        if (Pte.Kind(pte) != PteKind.Migration)
        {
            page.Ptl.Release(t, LockMode.Write);
            return VmFault.Done;
        }
        VmaLock.VmaEndRead(t, vma);
        await SleepOnFolioDroppingPtl(t, page, Pte.Frame(pte));
        return VmFault.Completed;
    }

    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder))]
    private static async ValueTask SleepOnFolioDroppingPtl(EmuTask t, PtePage page, long frame)
    {
        var m = t.Machine;
        var sleep = m.Folios.WaitUnlocked(t, frame);
        page.Ptl.Release(t, LockMode.Write);
        if (sleep.IsCompleted)
            return;
        m.Sanitizer.OnSleep(t, m.Folios.Find(frame)!, spinning: false);
        long before = t.Clock;
        await sleep;
        m.MigrationWait.Record(t.Clock - before);
        m.Observer?.OnMigrationWait(t, frame, before, t.Clock);
    }
}
