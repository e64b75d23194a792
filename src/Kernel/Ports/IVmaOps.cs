using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Ports;

/// <summary>
/// What the mm-level paths (mmap, munmap, mprotect, NUMA scanning, MADV_PAGEOUT, move_pages) do to a VMA's own
/// state: its lock, its entries and folios. The writer sequences in <see cref="Munmap"/>, <see cref="Mmap"/> and
/// <see cref="Mprotect"/> are written once against this port; the sim engine implements it on local objects, the
/// orleans engine with calls to the VMA grains (the mm grain keeps only each VMA's bounds and flags).
/// </summary>
public interface IVmaOps
{
    /// <summary>A new VMA (mmap), write-locked, about to be inserted in the tree.</summary>
    ValueTask Created(EmuTask t, Vma vma);

    /// <summary>vma_start_write: wait for the VMA's fault readers, publish vm_lock_seq = mm_lock_seq. Returns ns waited.</summary>
    ValueTask<long> StartWrite(EmuTask t, Vma vma);

    /// <summary>vma_mark_detached on a write-locked VMA.</summary>
    ValueTask MarkDetached(EmuTask t, Vma vma);

    /// <summary>__split_vma's second half: <paramref name="nv"/> now covers part of what <paramref name="vma"/> covered (bounds already set on both).</summary>
    ValueTask SplitOff(EmuTask t, Vma vma, Vma nv);

    /// <summary>unmap_region's first half for one detached VMA: zap its entries and shoot down the TLBs. Returns entries zapped.</summary>
    ValueTask<long> Unmap(EmuTask t, Vma vma);

    /// <summary>free_pgtables over [start, end) once every detached VMA of the range is zapped.</summary>
    void FreePgTables(EmuTask t, MmStruct mm, long start, long end);

    /// <summary>change_protection over the whole VMA (its flags already changed), then the shootdown.</summary>
    ValueTask ChangeProtection(EmuTask t, Vma vma, bool writable, bool accessible);

    /// <summary>mm_lock_seq moved to <paramref name="newSeq"/>: every VMA write lock of the old epoch ended.</summary>
    void EpochEnded(EmuTask t, MmStruct mm, long newSeq);

    /// <summary>change_prot_numa over [from, to) of the VMA, then the shootdown. Returns entries changed.</summary>
    ValueTask<long> ChangeProtNuma(EmuTask t, Vma vma, long from, long to);

    /// <summary>MADV_PAGEOUT over [from, to) of the VMA. Returns pages swapped out.</summary>
    ValueTask<int> PageOut(EmuTask t, Vma vma, long from, long to);

    /// <summary>move_pages' collection under mmap_lock: the mapped anonymous pages of [from, to) not on <paramref name="node"/>.</summary>
    ValueTask<IReadOnlyList<(long Addr, long Frame)>> CollectForMigration(EmuTask t, Vma vma, long from, long to, int node);

    /// <summary>migrate_pages of collected pages (no mm lock held). Returns pages moved.</summary>
    ValueTask<int> Migrate(EmuTask t, Vma vma, IReadOnlyList<(long Addr, long Frame)> pages, int node);
}
