using System.Runtime.CompilerServices;
using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sanitizer;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Fault;

/// <summary>
/// handle_mm_fault and handle_pte_fault (mm/memory.c): count the fault and dispatch on the entry.
/// The other parts of MmFault model do_anonymous_page/do_wp_page, do_fault, do_numa_page and do_swap_page.
/// </summary>
public static partial class MmFault
{
    /// <summary>
    /// handle_mm_fault (mm/memory.c). Entered holding the VMA read lock (VmaLock flag) or mmap_lock for read.
    /// Under the merged policy, Retry or Completed ⇒ the lock was released here; anything else ⇒ the caller still
    /// holds it. <see cref="CallerStillHolds"/> gives the contract of every policy (S7).
    /// </summary>
    public static ValueTask<VmFault> HandleMmFault(EmuTask t, Vma vma, long addr, FaultFlags flags)
    {
        var m = t.Machine;
        m.VmStat.HandleMmFaultCalls++;
        m.Sanitizer.CheckNotDetached(t, vma, addr);
        m.Sanitizer.CheckVmaUse(t, vma, "handle_mm_fault", addr);
        m.Events.Record(t, EventKind.HandleMmFault, vma.Id, addr, (long)flags);
        var preempt = t.Preempt(PreemptSite.HandleMmFaultEntry);
        bool centralRelease = m.Policy == FaultPolicy.LockDropped && flags.Has(FaultFlags.VmaLock);
        if (!preempt.IsCompleted || centralRelease)
            return HandleMmFaultAfter(t, vma, addr, flags, preempt, centralRelease);
        // Nothing to do after handle_pte_fault and no injected delay to wait out: its ValueTask is ours, one frame less
        // to suspend at each engine yield below it (~60 ns of host time per fault with many CPUs, bench -- engine).
        preempt.GetResult();
        return HandlePteFault(t, vma, addr, flags);
    }

    /// <summary>handle_mm_fault when it must wait out an injected delay first, or release centrally afterwards (v3).</summary>
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    private static async ValueTask<VmFault> HandleMmFaultAfter(EmuTask t, Vma vma, long addr, FaultFlags flags, DelayAwaitable preempt, bool centralRelease)
    {
        await preempt;
        var ret = await HandlePteFault(t, vma, addr, flags);
        if (centralRelease && ret.Has(VmFault.Retry | VmFault.Completed))
        {
            // v3's central release, keyed on the result. The migration path has already dropped the lock before
            // waiting, so this is the second vma_end_read the proposal's flag was meant to prevent (S6).
            VmaLock.VmaEndRead(t, vma);
        }
        return ret;
    }

    /// <summary>
    /// mm_account_fault (mm/memory.c), at the end of handle_mm_fault: an attempt that returned RETRY is not counted
    /// ("incomplete faults will be accounted upon completion"), so pgfault counts a retried fault once, on the attempt
    /// that finished it; failed ones (SIGSEGV, SIGBUS) count too. Its callers (<see cref="VmaFault"/>) call it on the
    /// result they await: counting here would cost the fast path a frame (see <see cref="HandleMmFault"/>).
    /// </summary>
    public static void MmAccountFault(EmuTask t, VmFault ret)
    {
        if (ret.Has(VmFault.Retry)) return;
        t.Machine.VmStat.pgfault++;
    }

    /// <summary>The lock contract of PROTOCOL.md §3/§5: after handle_mm_fault returns <paramref name="r"/>, does the caller still hold the fault lock?</summary>
    public static bool CallerStillHolds(FaultPolicy p, VmFault r, bool underVmaLock)
    {
        if (!underVmaLock)
            return !r.Has(VmFault.Retry | VmFault.Completed);
        return p switch
        {
            FaultPolicy.VmaBailout => true,
            FaultPolicy.VmaUnlocked => !r.Has(VmFault.VmaUnlocked),
            _ => !r.Has(VmFault.Retry | VmFault.Completed),
        };
    }

    /// <summary>
    /// __handle_mm_fault's PMD level, then handle_pte_fault: a PMD-mapped THP or PMD migration entry goes to the huge
    /// paths (<see cref="HandleHugePmdFault"/>), an empty pmd where a THP is allowed to create_huge_pmd; else read the
    /// entry without the PTL (vmf->orig_pte) and dispatch on its kind.
    /// </summary>
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    private static async ValueTask<VmFault> HandlePteFault(EmuTask t, Vma vma, long addr, FaultFlags flags)
    {
        var m = t.Machine;
        await t.Delay(m.Cost.PteMapNs);
        var pt = vma.PageTable;
        var page = pt.Lookup(addr);
        m.Sanitizer.CheckPageTableAccess(t, vma, page, addr, "handle_pte_fault");
        long pte = page is null ? Pte.None : page[pt.IndexOf(addr)];
        if (page is { IsHuge: true })
            return await HandleHugePmdFault(t, vma, addr, flags, page, pte);
        switch (Pte.Kind(pte))
        {
            case PteKind.None:
                if (vma.IsAnonymous && WantsHugePmd(m, vma, addr, flags, page))
                    return await DoHugePmdAnonymousPage(t, vma, addr, flags);
                return vma.IsAnonymous ? await DoAnonymousPage(t, vma, addr, flags) : await DoFault(t, vma, addr, flags);
            case PteKind.ProtNone:
                return await DoNumaPage(t, vma, addr, pte);
            case PteKind.Swap:
            case PteKind.Migration:
                return await DoSwapPage(t, vma, addr, flags, page!, pte);
            default:
                if (flags.Has(FaultFlags.Write) && !Pte.IsWritable(pte))
                    return await DoWpPage(t, vma, addr, flags, pte);
                // Spurious: another CPU fixed the entry meanwhile; the access re-executes and refills its TLB.
                return VmFault.Done;
        }
    }

    /// <summary>
    /// release_fault_lock (include/linux/mm.h): drop whichever lock the fault holds before sleeping with
    /// ALLOW_RETRY. Returns the result bits the policy's contract adds (the v2 proposal's VM_FAULT_VMA_UNLOCKED).
    /// Under the v3 proposal the VMA lock is left to handle_mm_fault's central release.
    /// </summary>
    internal static VmFault ReleaseFaultLock(EmuTask t, Vma vma, FaultFlags flags)
    {
        if (!flags.Has(FaultFlags.VmaLock))
        {
            MmapLock.MmapReadUnlock(t, vma.Mm);
            return VmFault.Done;
        }
        var p = t.Machine.Policy;
        if (p == FaultPolicy.LockDropped)
            return VmFault.Done;
        VmaLock.VmaEndRead(t, vma);
        return p == FaultPolicy.VmaUnlocked ? VmFault.VmaUnlocked : VmFault.Done;
    }

    /// <summary>
    /// Take the PTL of the entry for <paramref name="addr"/> (allocating the page-table page: __pte_alloc), and if
    /// the entry still equals <paramref name="expected"/> (pte_same) replace it by <paramref name="value"/>.
    /// The caller holds the fault lock, which keeps the page table alive (S8).
    /// </summary>
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    internal static async ValueTask<bool> SetPteIfSame(EmuTask t, Vma vma, long addr, long expected, long value)
    {
        var m = t.Machine;
        await t.Delay(0); // synchronise before touching the page table
        var pt = vma.PageTable;
        var page = pt.GetOrAlloc(addr);
        m.Sanitizer.CheckPageTableAccess(t, vma, page, addr, "pte_offset_map_lock");
        await page.Ptl.AcquireWrite(t);
        int i = pt.IndexOf(addr);
        bool same = page[i] == expected;
        if (same)
        {
            pt.Set(page, i, value);
            m.Events.Record(t, EventKind.PteSet, vma.Id, addr, value);
            await t.Delay(m.Cost.PteUpdateNs);
        }
        page.Ptl.Release(t, LockMode.Write);
        return same;
    }

    /// <summary>A frame allocated for a fault that lost its race goes back to its node.</summary>
    internal static void DropFrame(EmuMachine m, long frame)
    {
        m.Frames.InFlight--;
        m.FreeFrame(frame);
    }

    /// <summary>Sleep until the folio of <paramref name="frame"/> is unlocked (folio_wait_locked).</summary>
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder))]
    internal static async ValueTask WaitFolioUnlocked(EmuTask t, long frame)
    {
        var m = t.Machine;
        var sleep = m.Folios.WaitUnlocked(t, frame);
        if (sleep.IsCompleted) return;
        m.Sanitizer.OnSleep(t, m.Folios.Find(frame)!, spinning: false);
        await sleep;
    }
}
