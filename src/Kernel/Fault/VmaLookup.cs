using System.Runtime.CompilerServices;
using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Fault;

/// <summary>Finding the VMA under mmap_lock (mm/mmap.c lock_mm_and_find_vma) and the access check (arch/x86/mm/fault.c).</summary>
public static class VmaLookup
{
    /// <summary>
    /// lock_mm_and_find_vma: mmap_read_lock (may sleep), then find the VMA covering the address. Returns it with
    /// mmap_lock read-held, or null with nothing held. (Stack growth is not modelled: the stack is one VMA.)
    /// </summary>
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
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
    public static bool AccessError(Vma vma, bool write) => AccessError(vma.Flags, write);

    /// <summary>access_error on flags as the caller read them (a stale read under §8.2's bug).</summary>
    public static bool AccessError(VmFlags flags, bool write) =>
        write ? (flags & VmFlags.Write) == 0 : (flags & (VmFlags.Read | VmFlags.Write | VmFlags.Exec)) == 0;
}
