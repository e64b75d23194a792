using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Fault;

/// <summary>How lock_vma_under_rcu ended, for the arch loop's accounting (A1).</summary>
public readonly record struct VmaLookupResult(Vma? Vma, int Misses);

/// <summary>The two ways a fault finds and locks its VMA (mm/memory.c lock_vma_under_rcu, lock_mm_and_find_vma).</summary>
public static class VmaLookup
{
    /// <summary>
    /// lock_vma_under_rcu. Looks the address up in the tree without locks (the version current now — RCU), then
    /// vma_start_read. None, a failed trylock, an anonymous VMA without anon_vma, a file VMA where the policy's
    /// VMA path is anonymous-only, or an address outside the VMA's bounds (it changed before we locked) → ABORT,
    /// counted, returns null holding nothing. A detached VMA (replaced) → unlock, count MISS, look up again.
    /// On success returns the VMA read-locked.
    /// </summary>
    public static async ValueTask<VmaLookupResult> LockVmaUnderRcu(EmuTask t, MmStruct mm, long addr)
    {
        var m = t.Machine;
        int misses = 0;
        while (true)
        {
            await t.Delay(m.Cost.VmaLookupNs);
            var vma = mm.Tree.Find(addr);
            if (vma is null)
                break;
            await t.Preempt(PreemptSite.LookupToVmaStartRead);
            if (!VmaLock.VmaStartRead(t, vma, addr))
                break;
            await t.Delay(m.Cost.LockNs);
            if ((vma.IsAnonymous && !vma.HasAnonVma) ||
                (!vma.IsAnonymous && !m.Policy.VmaPathCoversFile()) ||
                !vma.Contains(addr))
            {
                VmaLock.VmaEndRead(t, vma);
                break;
            }
            if (vma.Detached)
            {
                VmaLock.VmaEndRead(t, vma);
                m.VmStat.vma_lock_miss++;
                misses++;
                continue;
            }
            return new VmaLookupResult(vma, misses);
        }
        m.VmStat.vma_lock_abort++;
        return new VmaLookupResult(null, misses);
    }

    /// <summary>
    /// lock_mm_and_find_vma: mmap_read_lock (may sleep), then find the VMA covering the address. Returns it with
    /// mmap_lock read-held, or null with nothing held. (Stack growth is not modelled: the stack is one VMA.)
    /// </summary>
    public static async ValueTask<Vma?> LockMmAndFindVma(EmuTask t, MmStruct mm, long addr)
    {
        await MmapLock.MmapReadLock(t, mm);
        await t.Delay(t.Machine.Cost.VmaLookupNs);
        var vma = mm.Tree.Find(addr);
        if (vma is null)
        {
            MmapLock.MmapReadUnlock(t, mm);
            return null;
        }
        return vma;
    }

    /// <summary>access_error (arch/x86/mm/fault.c): a write to a VMA without VM_WRITE, or any access to PROT_NONE.</summary>
    public static bool AccessError(Vma vma, bool write) =>
        write ? (vma.Flags & VmFlags.Write) == 0 : (vma.Flags & (VmFlags.Read | VmFlags.Write | VmFlags.Exec)) == 0;
}
