using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Migration;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Ports;

/// <summary>The VMA port on local objects (sim engine, and inside a VMA grain for the state it owns).</summary>
public sealed class LocalVmaOps : IVmaOps
{
    public static LocalVmaOps Instance { get; } = new();

    public ValueTask Created(EmuTask t, Vma vma) => ValueTask.CompletedTask;

    public ValueTask<long> StartWrite(EmuTask t, Vma vma) => VmaLock.VmaStartWrite(t, vma);

    public ValueTask MarkDetached(EmuTask t, Vma vma)
    {
        VmaLock.VmaMarkDetached(t, vma);
        return ValueTask.CompletedTask;
    }

    /// <summary>Entries stay in the mm's page table: a page-table page may serve both halves. A THP across the new boundary is split (vma_adjust_trans_huge).</summary>
    public ValueTask SplitOff(EmuTask t, Vma vma, Vma nv) => HugeMemory.VmaAdjustTransHuge(t, vma, vma.End == nv.Start ? vma.End : vma.Start);

    public async ValueTask<long> Unmap(EmuTask t, Vma vma)
    {
        var mm = vma.Mm;
        long zapped = await ZapPteRange.ZapVma(t, vma, vma.Start, vma.End);
        await TlbFlush.FlushRange(t, mm, vma.Start, vma.End);
        return zapped;
    }

    /// <summary>Page-table pages are shared by neighbouring VMAs: free those no VMA of the tree overlaps any more.</summary>
    public void FreePgTables(EmuTask t, MmStruct mm, long start, long end) => mm.PageTable.FreeUnused(start, end, mm.Tree);

    public async ValueTask ChangeProtection(EmuTask t, Vma vma, bool writable, bool accessible)
    {
        await Mprotect.ChangeProtection(t, vma, writable, accessible);
        await TlbFlush.FlushRange(t, vma.Mm, vma.Start, vma.End);
    }

    public void EpochEnded(EmuTask t, MmStruct mm, long newSeq)
    {
        // Local VMAs read mm_lock_seq from their mm directly.
    }

    public async ValueTask<long> ChangeProtNuma(EmuTask t, Vma vma, long from, long to)
    {
        long n = await NumaScan.ChangeProtNumaVma(t, vma, from, to);
        if (n > 0)
            await TlbFlush.FlushRange(t, vma.Mm, from, to);
        return n;
    }

    public ValueTask<int> PageOut(EmuTask t, Vma vma, long from, long to) => Memory.PageOut.PageOutVma(t, vma, from, to);

    public ValueTask<IReadOnlyList<(long Addr, long Frame)>> CollectForMigration(EmuTask t, Vma vma, long from, long to, int node) =>
        MovePages.Collect(t, vma, from, to, node);

    public ValueTask<int> Migrate(EmuTask t, Vma vma, IReadOnlyList<(long Addr, long Frame)> pages, int node) =>
        MigratePages.MigrateBatch(t, vma, pages, node, MigrateMode.Sync);
}
