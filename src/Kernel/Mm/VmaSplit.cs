using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Mm;

/// <summary>__split_vma (mm/mmap.c): used by munmap and mprotect on VMAs that straddle the range.</summary>
public static class VmaSplit
{
    /// <summary>
    /// Split <paramref name="vma"/> at <paramref name="at"/>. The original is write-locked first (waiting for its
    /// fault readers); the new VMA takes the upper part [at, end) — or the lower part if <paramref name="newBelow"/> —
    /// and is write-locked before anyone can see it. Entries stay in the mm's page table. The caller publishes the
    /// tree. Returns the new VMA and the emulated ns spent waiting for readers.
    /// (The caller of SplitVma publishes the new VMA in the tree.)
    /// </summary>
    public static async ValueTask<(Vma NewVma, long Waited)> SplitVma(EmuTask t, Vma vma, long at, bool newBelow)
    {
        var m = t.Machine;
        long waited = await vma.Mm.VmaOps.StartWrite(t, vma);
        var mm = vma.Mm;
        long shiftPages(long a) => (a - vma.Start) >> m.Spec.PageShift;
        Vma nv = newBelow
            ? new Vma(m, m.NextVmaId(), mm, vma.Start, at, vma.Flags, vma.File, vma.PgOff)
            : new Vma(m, m.NextVmaId(), mm, at, vma.End, vma.Flags, vma.File, vma.PgOff + shiftPages(at));
        nv.HasAnonVma = vma.HasAnonVma;
        nv.VmLockSeq = mm.MmLockSeq;
        m.Sanitizer.CheckVmaChange(t, vma, "__split_vma");
        if (newBelow)
        {
            vma.PgOff += shiftPages(at);
            vma.Start = at;
        }
        else
        {
            vma.End = at;
        }
        await mm.VmaOps.SplitOff(t, vma, nv);
        await t.Delay(m.Cost.VmaUpdateNs);
        return (nv, waited);
    }
}

/// <summary>The writers' common first step: the VMAs of a range, split at its edges, write-locked.</summary>
public static class VmaRange
{
    /// <summary>
    /// With mmap_lock held for write: split the VMAs straddling [start, end) so that the range is covered by whole
    /// VMAs, and vma_start_write each of them (waiting for their fault readers). Publishes the split halves in the
    /// tree. Returns the VMAs inside the range and the emulated ns spent waiting for readers.
    /// </summary>
    /// <param name="changes">Which VMAs the caller changes; the others are neither split nor write-locked (mprotect_fixup's
    /// early return when a VMA's flags stay the same). Null: every VMA in the range.</param>
    public static async ValueTask<(List<Vma> Inside, long Waited)> SplitAndWriteLock(EmuTask t, MmStruct mm, long start, long end, bool skipWriteLock = false,
        Func<Vma, bool>? changes = null)
    {
        long waited = 0;
        var overlap = mm.Tree.Overlapping(start, end);
        var added = new List<Vma>();
        var inside = new List<Vma>();
        foreach (var vma in overlap)
        {
            if (changes != null && !changes(vma)) continue;
            var v = vma;
            if (v.Start < start)
            {
                var (upper, w) = await VmaSplit.SplitVma(t, v, start, newBelow: false);
                waited += w;
                added.Add(upper);
                v = upper;
            }
            if (v.End > end)
            {
                var (lower, w) = await VmaSplit.SplitVma(t, v, end, newBelow: true);
                waited += w;
                added.Add(lower);
                v = lower;
            }
            inside.Add(v);
        }
        if (added.Count > 0)
            mm.Tree = mm.Tree.With([], added);
        if (!skipWriteLock)
            foreach (var v in inside)
                waited += await mm.VmaOps.StartWrite(t, v);
        return (inside, waited);
    }
}
