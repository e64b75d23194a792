using System.Runtime.CompilerServices;
using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Fault;

/// <summary>do_swap_page (mm/memory.c): swap entries and migration entries, where the policies part ways.</summary>
public static partial class MmFault
{
    /// <summary>
    /// A swap-type entry. Under 6.4 (vma-bailout) any swap-type entry met under the VMA lock returns RETRY at once
    /// with the lock still held. A migration entry is waited for as the policy says (PROTOCOL.md §5):
    /// merged — holding the VMA read lock, return 0; vma-unlocked — drop it, VM_FAULT_VMA_UNLOCKED, wait holding
    /// nothing; lock-dropped — drop it, wait, COMPLETED; ptl-drop — drop it under the PTL, register, wait, COMPLETED.
    /// Under mmap_lock every policy waits holding mmap_lock and returns 0. A swap entry is read in (swap-in).
    /// </summary>
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    private static async ValueTask<VmFault> DoSwapPage(EmuTask t, Vma vma, long addr, FaultFlags flags, PtePage page, long orig)
    {
        var m = t.Machine;
        bool underVma = flags.Has(FaultFlags.VmaLock);
        if (underVma && m.Policy.SwapEntryBailsOutUnderVmaLock())
            return VmFault.Retry;
        if (Pte.Kind(orig) == PteKind.Swap)
            return await SwapIn(t, vma, addr, flags, orig);
        if (!underVma)
        {
            await MigrationWait.MigrationEntryWait(t, vma, page, addr);
            return VmFault.Done;
        }
        switch (m.Policy)
        {
            case FaultPolicy.Merged or FaultPolicy.V6_12:
                await MigrationWait.MigrationEntryWait(t, vma, page, addr);
                return VmFault.Done;
            case FaultPolicy.VmaUnlocked:
                VmaLock.VmaEndRead(t, vma);
                await t.Preempt(PreemptSite.UnlockToPteMapLock);
                await MigrationWait.MigrationEntryWait(t, vma, page, addr);
                return VmFault.VmaUnlocked;
            case FaultPolicy.LockDropped:
                VmaLock.VmaEndRead(t, vma);
                await t.Preempt(PreemptSite.UnlockToPteMapLock);
                await MigrationWait.MigrationEntryWait(t, vma, page, addr);
                return VmFault.Completed;
            case FaultPolicy.PtlDrop:
                return await MigrationWait.MigrationEntryWaitDropVmaLock(t, vma, page, addr);
            default:
                throw new InvalidOperationException($"{m.Policy.Name()} has no VMA path for a migration entry");
        }
    }

    /// <summary>
    /// Swap-in: the first task to fault on the entry allocates a frame, locks its folio, puts it in the swap cache
    /// and reads it (a major fault); a second task finds the locked folio in the swap cache and goes through
    /// folio_lock_or_retry (release, wait, RETRY on the first try; wait holding the lock once TRIED).
    /// </summary>
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    private static async ValueTask<VmFault> SwapIn(EmuTask t, Vma vma, long addr, FaultFlags flags, long orig)
    {
        var m = t.Machine;
        long slot = Pte.Payload(orig);
        if (m.Swap.SwapCache.TryGetValue(slot, out long cached))
        {
            if (flags.Has(FaultFlags.AllowRetry) && !flags.Has(FaultFlags.Tried))
            {
                var released = ReleaseFaultLock(t, vma, flags);
                await WaitFolioUnlocked(t, cached);
                return VmFault.Retry | released;
            }
            await m.Folios.Lock(t, cached);
            m.Folios.Unlock(t, cached);
            return VmFault.Done;
        }
        long frame = await t.Pcp.Alloc(m, t);
        if (frame < 0)
            return VmFault.Oom;
        m.Folios.TryLock(t, frame);
        m.Swap.SwapCache[slot] = frame;
        await t.Delay(m.Cost.SwapInNs);
        m.VmStat.pgmajfault++;
        m.VmStat.pswpin++;
        bool writable = flags.Has(FaultFlags.Write);
        bool mapped = await SetPteIfSame(t, vma, addr, orig, Pte.Present(frame, writable));
        m.Swap.SwapCache.Remove(slot);
        m.Folios.Unlock(t, frame);
        if (mapped)
        {
            m.Frames.InFlight--;
            m.Frames.Anon++;
            m.Swap.FreeSlot(slot);
        }
        else
        {
            DropFrame(m, frame);
        }
        return VmFault.Major;
    }
}
