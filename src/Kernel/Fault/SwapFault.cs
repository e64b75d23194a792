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
    /// Swap-in (do_swap_page past the non-swap entries, mm/memory.c). swap_cache_get_folio: a folio already in the swap
    /// cache is used as is (a minor fault). Otherwise swapin_readahead allocates a folio, locks it, adds it to the swap
    /// cache and submits the read (swap_read_folio; the device is a block device, so the read is asynchronous and the
    /// folio stays locked until the read ends), and the fault is MAJOR (PGMAJFAULT counted here, "Had to read the page
    /// from swap area"). Then folio_lock_or_retry: a folio that cannot be trylocked — under I/O, or locked by another
    /// task — on the first try (fault_flag_allow_retry_first) makes __folio_lock_or_retry release the fault lock
    /// (release_fault_lock), sleep until the folio is unlocked and return RETRY (with MAJOR if this task started the
    /// read); the TRIED retry finds the folio in the swap cache, up to date, and maps it without I/O. Once TRIED the
    /// task sleeps for the folio holding its fault lock. With the folio locked, under the PTL, the entry is replaced if
    /// still the same (pte_same), the folio leaves the swap cache and the slot is freed.
    /// </summary>
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    private static async ValueTask<VmFault> SwapIn(EmuTask t, Vma vma, long addr, FaultFlags flags, long orig)
    {
        var m = t.Machine;
        long slot = Pte.Payload(orig);
        var ret = VmFault.Done;
        bool reading = false;
        if (!m.Swap.SwapCache.TryGetValue(slot, out long frame))
        {
            frame = await t.Pcp.Alloc(m, t);
            if (frame < 0)
                return VmFault.Oom;
            if (m.Swap.SwapCache.TryGetValue(slot, out long raced))
            {
                DropFrame(m, frame); // swapcache_prepare lost to another task's swap-in of the same entry
                frame = raced;
            }
            else
            {
                m.Folios.TryLock(t, frame);
                m.Swap.SwapCache[slot] = frame;
                m.VmStat.pswpin++;
                m.VmStat.pgmajfault++;
                ret = VmFault.Major;
                reading = true;
            }
        }
        // folio_lock_or_retry: folio_trylock, else __folio_lock_or_retry.
        if (reading || !m.Folios.TryLock(t, frame))
        {
            if (flags.AllowRetryFirst())
            {
                var released = ReleaseFaultLock(t, vma, flags);
                if (reading)
                {
                    await t.Delay(m.Cost.SwapInNs); // the read, waited without the fault lock
                    EndSwapRead(t, slot, frame);
                }
                else
                {
                    await WaitFolioUnlocked(t, frame);
                }
                return ret | VmFault.Retry | released;
            }
            if (reading)
                await t.Delay(m.Cost.SwapInNs); // TRIED: the read, waited holding the fault lock; the folio is then ours
            else
                await m.Folios.Lock(t, frame);
        }
        if (!m.Swap.SwapCache.TryGetValue(slot, out long still) || still != frame)
        {
            // Another task mapped it and took it out of the swap cache meanwhile: the entry is no longer ours to fix.
            m.Folios.Unlock(t, frame);
            return ret;
        }
        bool writable = flags.Has(FaultFlags.Write);
        bool mapped = await SetPteIfSame(t, vma, addr, orig, Pte.Present(frame, writable));
        if (mapped)
        {
            m.Swap.SwapCache.Remove(slot);
            m.Frames.InFlight--;
            m.Frames.Anon++;
            m.Swap.FreeSlot(slot);
            m.Folios.Unlock(t, frame);
        }
        else
        {
            EndSwapRead(t, slot, frame);
        }
        return ret;
    }

    /// <summary>
    /// Unlock a swap-cache folio (end_swap_bio_read's folio_unlock, or a fault done with it). If munmap zapped its entry
    /// meanwhile (free_swap_and_cache found the folio locked and left it), nobody will map it: take it out of the swap cache,
    /// free the frame and the slot — unless a waiter now holds the folio, which then does this itself.
    /// </summary>
    private static void EndSwapRead(EmuTask t, long slot, long frame)
    {
        var m = t.Machine;
        m.Folios.Unlock(t, frame);
        if (m.Folios.IsLocked(frame) || !m.Swap.Orphans.Contains(slot))
            return;
        m.Swap.Orphans.Remove(slot);
        m.Swap.SwapCache.Remove(slot);
        DropFrame(m, frame);
        m.Swap.FreeSlot(slot);
    }
}
