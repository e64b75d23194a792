using DistEmu.Kernel.Fault;
using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Sanitizer;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Mm;

/// <summary>
/// fork's address-space copy: dup_mmap (kernel/fork.c) and copy_page_range (mm/memory.c).
/// Anonymous pages are copied at fork time, as the kernel does for pages that may be DMA-pinned
/// (copy_present_page), not COW-shared: sharing a frame between two mms would need an rmap over several mms,
/// which the model does not have. What fork means for the locking protocol is unchanged by that choice: the
/// parent's VMAs and page tables must be stable while they are copied. What it means for faults is kept too: in a
/// private writable mapping both the parent's entry and the child's copy are write-protected (copy_present_pte on
/// an is_cow_mapping VMA), so the first write on either side faults in do_wp_page, as after a real fork; it then
/// reuses its own frame, where the kernel would copy the shared one (the copy was paid at fork).
/// </summary>
public static class Fork
{
    /// <summary>
    /// dup_mmap: mmap_write_lock the parent; for each parent VMA, vma_start_write it (6.4.1+: this waits for the faults
    /// holding its read lock and keeps new ones out; §8.1 is the 6.4 bug that skipped it), create the child's copy and
    /// copy its entries; insert the copies in the child's tree; unlock. The parent's faults under mmap_lock are kept
    /// out by the write lock, those under a VMA lock only by vma_start_write. Returns the child's mm (null: -ENOMEM, the
    /// half-built child torn down) and the emulated ns the writer waited (for mmap_lock and for VMA readers).
    /// </summary>
    public static async ValueTask<(MmStruct? Child, long Waited)> DupMmap(EmuTask t, MmStruct parent)
    {
        var m = t.Machine;
        long t0 = t.Clock;
        m.Observer?.OnWriterBegin(t, "fork", 0, 0);
        await t.Delay(m.Cost.SyscallNs);
        m.Events.Record(t, EventKind.Fork, parent.Id);
        long beforeLock = t.Clock;
        await MmapLock.MmapWriteLock(t, parent);
        long waited = t.Clock - beforeLock - m.Cost.LockNs, vmaWait = 0;
        await t.Preempt(PreemptSite.WriterAfterMmapWriteLock);
        var child = m.CreateMm();
        await MmapLock.MmapWriteLock(t, child); // mmap_write_lock_nested: nobody else can know the new mm yet
        var copies = new List<Vma>(parent.Tree.Count);
        foreach (var vma in parent.Tree.Vmas)
        {
            if (!m.Bugs.ForkWithoutVmaWriteLock)
            {
                long w = await parent.VmaOps.StartWrite(t, vma);
                vmaWait += w;
                waited += w;
            }
            // anon_vma_fork links the child to the parent VMA's anon_vma chain: a change of the parent VMA (S4).
            m.Sanitizer.CheckVmaChange(t, vma, "dup_mmap (anon_vma_fork, copy_page_range)");
            var copy = new Vma(m, m.NextVmaId(), child, vma.Start, vma.End, vma.Flags, vma.File, vma.PgOff)
            {
                HasAnonVma = vma.HasAnonVma,
                VmLockSeq = child.MmLockSeq,
            };
            await child.VmaOps.Created(t, copy);
            copies.Add(copy);
            // vma_needs_copy: a VMA without anon_vma (file pages only, or nothing yet) is not copied — "a page fault
            // will fill them correctly", so the child faults on those pages again.
            if (vma.HasAnonVma && !await CopyPageRange(t, vma, copy))
            {
                // -ENOMEM: exit_mmap of the half-built child, then fail the fork.
                foreach (var c in copies)
                    await ZapPteRange.ZapVma(t, c, c.Start, c.End);
                MmapLock.MmapWriteUnlock(t, child);
                MmapLock.MmapWriteUnlock(t, parent);
                m.Observer?.OnWriter(t, "fork", t0, t.Clock, waited);
                return (null, waited);
            }
        }
        child.Tree = child.Tree.With([], copies);
        // flush_tlb_mm(oldmm): the parent's CPUs may cache the entries fork write-protected.
        if (copies.Count > 0)
            await TlbFlush.FlushRange(t, parent, copies[0].Start, copies[^1].End);
        await t.Delay(m.Cost.VmaUpdateNs);
        MmapLock.MmapWriteUnlock(t, child);
        MmapLock.MmapWriteUnlock(t, parent);
        m.Sanitizer.CheckHoldsNothing(t, "fork");
        m.RecordWriterWait(waited - vmaWait, vmaWait);
        m.Observer?.OnWriter(t, "fork", t0, t.Clock, waited);
        return (child, waited);
    }

    /// <summary>
    /// exit_mmap of an mm nobody runs in any more: every VMA unmapped (its pages freed, its page tables with it), through
    /// the munmap path so the usual locks and checks apply.
    /// </summary>
    public static async ValueTask ExitMmap(EmuTask t, MmStruct mm)
    {
        var vmas = mm.Tree.Vmas;
        if (vmas.Count > 0)
            await Munmap.DoMunmap(t, mm, vmas[0].Start, vmas[vmas.Count - 1].End);
    }

    /// <summary>
    /// A fork whose child exits at once (fork() then _exit() in the child, as a shell's helper or a pre-fork server's
    /// short-lived child): the parent pays for dup_mmap, the child's exit_mmap gives every copied page back. The op a
    /// workload issues to put fork's locking (§8.1) among its faults. Returns the emulated ns the fork waited.
    /// </summary>
    public static async ValueTask<long> ForkAndExit(EmuTask t, MmStruct parent)
    {
        var (child, waited) = await DupMmap(t, parent);
        if (child != null)
            await ExitMmap(t, child);
        return waited;
    }

    /// <summary>
    /// copy_page_range / copy_pte_range: page-table page by page-table page, under the source PTL (and the child's).
    /// Zero-page and file entries are shared (the page cache owns the frame); an anonymous page is copied to a new
    /// frame of the forking CPU's node; a swap entry gets its own slot. A migration entry cannot be copied without an
    /// rmap over both mms: drop the PTL, wait for the migration to end (the folio unlock), and redo the page — as
    /// copy_pte_range's -EAGAIN loop does when it must allocate. Frames are reserved before the PTL is taken.
    /// False: the node ran out of frames (fork fails with -ENOMEM).
    /// </summary>
    private static async ValueTask<bool> CopyPageRange(EmuTask t, Vma src, Vma dst)
    {
        var m = t.Machine;
        var spt = src.PageTable;
        var dpt = dst.PageTable;
        long pageSize = m.Spec.PageSize;
        bool cowMapping = IsCowMapping(src);
        foreach (var page in spt.PagesIn(src.Start, src.End))
        {
            var (ps, pe) = spt.RangeOf(page);
            long from = Math.Max(ps, src.Start), to = Math.Min(pe, src.End);
            while (true)
            {
                if (!await ReserveFrames(t, AnonPagesIn(spt, dpt, from, to, pageSize)))
                    return false;
                m.Sanitizer.CheckPageTableAccess(t, src, page, from, "copy_pte_range", takingPtl: true);
                await t.Delay(m.Cost.PteMapNs);
                await page.Ptl.AcquireWrite(t);
                m.Sanitizer.CheckNoFaultHolds(t, src, "copy_pte_range");
                var dpage = dpt.GetOrAlloc(from);
                await dpage.Ptl.AcquireWrite(t);
                long copied = 0, busyFrame = -1;
                bool shortOfFrames = false;
                for (long a = from; a < to; a += pageSize)
                {
                    long pte = spt.Read(a);
                    if (pte == Pte.None || dpt.Read(a) != Pte.None) continue; // nothing, or copied before a redo
                    if (Pte.Kind(pte) == PteKind.Migration)
                    {
                        busyFrame = Pte.Frame(pte);
                        break;
                    }
                    if (NeedsFrame(pte) && t.Pcp.Count == 0)
                    {
                        shortOfFrames = true; // a fault mapped more since the count: reserve again and redo
                        break;
                    }
                    bool cow = cowMapping && Pte.Kind(pte) == PteKind.Present && Pte.IsWritable(pte);
                    if (cow)
                        spt.Set(page, spt.IndexOf(a), Pte.WithWritable(pte, false)); // ptep_set_wrprotect on the parent
                    long entry = CopyPte(t, pte, ref copied);
                    dpt.Set(dpage, dpt.IndexOf(a), cow ? Pte.WithWritable(entry, false) : entry);
                    m.Events.Record(t, EventKind.PteSet, dst.Id, a);
                }
                await t.Delay(m.Cost.PteUpdateNs * Math.Max(1, (to - from) / pageSize) + copied);
                dpage.Ptl.Release(t, LockMode.Write);
                page.Ptl.Release(t, LockMode.Write);
                if (busyFrame >= 0)
                    await MmFault.WaitFolioUnlocked(t, busyFrame);
                else if (!shortOfFrames)
                    break;
            }
        }
        return true;
    }

    /// <summary>is_cow_mapping: private and may be written (a write after fork must not reach the other mm's page).</summary>
    private static bool IsCowMapping(Vma vma) => (vma.Flags & VmFlags.Shared) == 0 && (vma.Flags & VmFlags.Write) != 0;

    private static bool NeedsFrame(long pte) =>
        Pte.Kind(pte) is PteKind.Present or PteKind.ProtNone && Pte.Frame(pte) != Pte.ZeroFrame && !Pte.IsFile(pte);

    /// <summary>Entries of [from, to) that will need a new frame (read without the PTL: an estimate the copy re-checks).</summary>
    private static int AnonPagesIn(PageTable spt, PageTable dpt, long from, long to, long pageSize)
    {
        int n = 0;
        for (long a = from; a < to; a += pageSize)
            if (NeedsFrame(spt.Read(a)) && dpt.Read(a) == Pte.None) n++;
        return n;
    }

    /// <summary>Fill the per-CPU list to <paramref name="needed"/> frames; false if the node has run out (-ENOMEM).</summary>
    private static async ValueTask<bool> ReserveFrames(EmuTask t, int needed)
    {
        while (t.Pcp.Count < needed)
        {
            int before = t.Pcp.Count;
            await t.Pcp.Reserve(t.Machine, t, needed);
            if (t.Pcp.Count == before)
                return false;
        }
        return true;
    }

    /// <summary>
    /// copy_present_pte / copy_nonpresent_pte for one entry, under the PTLs. Adds the emulated ns of a page copy to
    /// <paramref name="copyNs"/>. Returns the child's entry.
    /// </summary>
    private static long CopyPte(EmuTask t, long pte, ref long copyNs)
    {
        var m = t.Machine;
        switch (Pte.Kind(pte))
        {
            case PteKind.Swap:
                // The kernel shares the slot (swap_duplicate); the child's own slot keeps each mm's accounting apart.
                return Pte.Swap(m.Swap.AllocSlot());
            case PteKind.Present:
            case PteKind.ProtNone:
                long frame = Pte.Frame(pte);
                if (frame == Pte.ZeroFrame || Pte.IsFile(pte))
                    return pte;
                long copy = t.Pcp.TakeOne(m);
                m.Frames.Anon++;
                copyNs += m.Cost.PageBandwidthNs(m.Spec.PageSize, m.Distance(m.NodeOfFrame(frame), t.Node));
                return Pte.Present(copy, Pte.IsWritable(pte));
            default:
                throw new InvalidOperationException($"copy_pte_range: unexpected {Pte.Describe(pte)}");
        }
    }
}
