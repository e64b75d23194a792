using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Migration;

/// <summary>move_pages / migrate_pages of a range (mm/migrate.c do_pages_move), as the page migrator runs it.</summary>
public static class MovePages
{
    /// <summary>
    /// Under mmap_read_lock find the anonymous frames mapped in [start, end) that are not on <paramref name="node"/>
    /// (add_page_for_migration), drop mmap_lock, then migrate each synchronously (migrate_pages holds only folio
    /// locks and PTLs). Returns how many pages moved.
    /// </summary>
    public static async ValueTask<int> MigrateRange(EmuTask t, MmStruct mm, long start, long end, int node)
    {
        var todo = new List<(Vma Vma, IReadOnlyList<(long Addr, long Frame)> Pages)>();
        await MmapLock.MmapReadLock(t, mm);
        foreach (var vma in mm.Tree.Overlapping(start, end))
        {
            if (!vma.IsAnonymous) continue;
            var pages = await mm.VmaOps.CollectForMigration(t, vma, Math.Max(start, vma.Start), Math.Min(end, vma.End), node);
            if (pages.Count > 0) todo.Add((vma, pages));
        }
        MmapLock.MmapReadUnlock(t, mm);
        int moved = 0;
        foreach (var (vma, pages) in todo)
            moved += await mm.VmaOps.Migrate(t, vma, pages, node);
        t.Machine.Sanitizer.CheckHoldsNothing(t, "migrate_pages");
        return moved;
    }

    /// <summary>The folios of [from, to) of one VMA mapped on a node other than <paramref name="node"/> (a THP once, at its 2 MiB-aligned address, by its head frame).</summary>
    public static async ValueTask<IReadOnlyList<(long Addr, long Frame)>> Collect(EmuTask t, Vma vma, long from, long to, int node)
    {
        var m = t.Machine;
        var list = new List<(long, long)>();
        for (long a = from; a < to; a += m.Spec.PageSize)
        {
            if (vma.PageTable.Lookup(a) is { IsHuge: true } huge)
            {
                // add_page_for_migration isolates the whole folio: a THP is listed once, by its head, and the
                // other pages of the range that belong to it find it isolated already.
                long head = huge.HugeHead;
                long pmdEnd = vma.PageTable.RangeOf(huge).End;
                if (Pte.Kind(huge[0]) is PteKind.Present or PteKind.ProtNone && m.NodeOfFrame(head) != node)
                    list.Add((vma.PageTable.RangeOf(huge).Start, head));
                a = pmdEnd - m.Spec.PageSize;
                continue;
            }
            long pte = vma.PageTable.Read(a);
            if (Pte.Kind(pte) is not (PteKind.Present or PteKind.ProtNone) || Pte.IsFile(pte)) continue;
            long f = Pte.Frame(pte);
            if (f == Pte.ZeroFrame || m.NodeOfFrame(f) == node) continue;
            list.Add((a, f));
        }
        await t.Delay(m.Cost.VmaLookupNs + ((to - from) >> m.Spec.PageShift));
        return list;
    }
}
