using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Sanitizer;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Mm;

/// <summary>mprotect: do_mprotect_pkey, mprotect_fixup and change_protection (mm/mprotect.c).</summary>
public static class Mprotect
{
    /// <summary>
    /// mprotect(start, len, prot): mmap_write_lock; split the edge VMAs; vma_start_write each VMA in the range;
    /// change its flags; change_protection on its entries (write removed → read-only; no access → protnone;
    /// access restored → present again); shoot down the TLBs; unlock. VMAs are not merged afterwards.
    /// </summary>
    public static async ValueTask<long> DoMprotect(EmuTask t, MmStruct mm, long start, long end, VmFlags prot)
    {
        var m = t.Machine;
        long t0 = t.Clock;
        m.Observer?.OnWriterBegin(t, "mprotect", start, end - start);
        await t.Delay(m.Cost.SyscallNs);
        m.Events.Record(t, EventKind.Mprotect, mm.Id, start, (long)prot);
        long beforeLock = t.Clock;
        await MmapLock.MmapWriteLock(t, mm);
        long waited = t.Clock - beforeLock - m.Cost.LockNs;
        await t.Preempt(PreemptSite.WriterAfterMmapWriteLock);
        var (inside, w) = await VmaRange.SplitAndWriteLock(t, mm, start, end, skipWriteLock: m.Bugs.SkipVmaStartWriteInMprotect);
        waited += w;
        bool accessible = (prot & (VmFlags.Read | VmFlags.Write | VmFlags.Exec)) != 0;
        foreach (var vma in inside)
        {
            m.Sanitizer.CheckVmaChange(t, vma, "mprotect_fixup");
            vma.Flags = (prot & ~VmFlags.Shared) | (vma.Flags & VmFlags.Shared);
            await mm.VmaOps.ChangeProtection(t, vma, writable: (prot & VmFlags.Write) != 0, accessible);
        }
        await t.Delay(m.Cost.VmaUpdateNs);
        MmapLock.MmapWriteUnlock(t, mm);
        m.Sanitizer.CheckHoldsNothing(t, "mprotect");
        m.WriterWait.Record(waited);
        m.Observer?.OnWriter(t, "mprotect", t0, t.Clock, waited);
        return waited;
    }

    /// <summary>change_protection over one VMA's entries, each page-table page under its PTL.</summary>
    public static async ValueTask ChangeProtection(EmuTask t, Vma vma, bool writable, bool accessible)
    {
        var m = t.Machine;
        var pt = vma.PageTable;
        foreach (var page in pt.PagesIn(vma.Start, vma.End))
        {
            m.Sanitizer.CheckPageTableAccess(t, vma, page, vma.Start, "change_pte_range");
            await page.Ptl.AcquireWrite(t);
            var (ps, pe) = pt.RangeOf(page);
            long from = Math.Max(ps, vma.Start), to = Math.Min(pe, vma.End);
            long changed = 0;
            for (long a = from; a < to; a += m.Spec.PageSize)
            {
                int i = pt.IndexOf(a);
                long pte = page[i];
                var kind = Pte.Kind(pte);
                if (kind is not (PteKind.Present or PteKind.ProtNone)) continue;
                long next = Pte.WithKind(pte, accessible ? PteKind.Present : PteKind.ProtNone);
                if (!writable) next = Pte.WithWritable(next, false);
                if (next != pte)
                {
                    pt.Set(page, i, next);
                    changed++;
                }
            }
            await t.Delay(m.Cost.ChangeProtPerPageNs * Math.Max(1, changed));
            page.Ptl.Release(t, LockMode.Write);
        }
    }
}
