using System.Runtime.CompilerServices;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Fault;

/// <summary>do_fault → do_read_fault / do_shared_fault / do_cow_fault (mm/memory.c) over filemap_fault (mm/filemap.c).</summary>
public static partial class MmFault
{
    /// <summary>
    /// A fault on a file VMA's pte_none entry: filemap_fault (mm/filemap.c) for a disk file, shmem_fault for tmpfs.
    /// <list type="bullet">
    /// <item>Cached and unlocked (up to date): map it, a minor fault.</item>
    /// <item>Cached but locked (being read in by someone else): lock_folio_maybe_drop_mmap — on the first try
    /// (fault_flag_allow_retry_first) maybe_unlock_mmap_for_io releases the fault lock (release_fault_lock), the task
    /// sleeps until the folio is unlocked and the fault returns RETRY; once TRIED it sleeps holding the lock.</item>
    /// <item>Not cached, disk file: PGMAJFAULT and VM_FAULT_MAJOR, then do_sync_mmap_readahead: on the first try the
    /// fault lock is released before the read (maybe_unlock_mmap_for_io), the read-around window is read in
    /// (<see cref="DoSyncMmapReadahead"/>), and filemap_fault returns RETRY|MAJOR ("we dropped the mmap_lock, we need to
    /// return to the fault handler to re-find the vma"): the TRIED retry finds the page cached and maps it without I/O.
    /// Once TRIED the read happens under the fault lock and the page is mapped, MAJOR.</item>
    /// <item>Not cached, tmpfs: a page is allocated and zeroed under its folio lock (no I/O, minor).</item>
    /// </list>
    /// Then a private write copies the page (do_cow_fault), anything else maps the page-cache page itself.
    /// </summary>
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    private static async ValueTask<VmFault> DoFault(EmuTask t, Vma vma, long addr, FaultFlags flags)
    {
        var m = t.Machine;
        var file = vma.File!;
        bool write = flags.Has(FaultFlags.Write);
        bool shared = (vma.Flags & VmFlags.Shared) != 0;
        long pgoff = vma.PgOff + ((addr - vma.Start) >> m.Spec.PageShift);
        if (flags.Has(FaultFlags.VmaLock) && !m.Policy.FileFaultUnderVmaLock())
            return await FaultAroundOrRetry(t, vma, addr, flags, file, pgoff, write);
        var ret = VmFault.Done;
        if (file.Pages.TryGetValue(pgoff, out long frame))
        {
            if (m.Folios.IsLocked(frame))
            {
                if (flags.AllowRetryFirst())
                {
                    var released = ReleaseFaultLock(t, vma, flags);
                    await WaitFolioUnlocked(t, frame);
                    return VmFault.Retry | released;
                }
                await m.Folios.Lock(t, frame);
                m.Folios.Unlock(t, frame);
            }
        }
        else if (file.DiskBacked)
        {
            // filemap_fault: "No page in the page cache at all" — count_vm_event(PGMAJFAULT), VM_FAULT_MAJOR.
            m.VmStat.pgmajfault++;
            ret |= VmFault.Major;
            if (flags.AllowRetryFirst())
            {
                // The window is computed from the VMA before maybe_unlock_mmap_for_io: after it the VMA is not ours.
                var (first, count) = ReadAroundWindow(m, vma, file, pgoff);
                var released = ReleaseFaultLock(t, vma, flags);
                await DoSyncMmapReadahead(t, file, pgoff, first, count);
                // out_retry: the page may be cached now (or the allocation failed: the retry tries again, under the lock).
                return ret | VmFault.Retry | released;
            }
            var (tfirst, tcount) = ReadAroundWindow(m, vma, file, pgoff);
            frame = await DoSyncMmapReadahead(t, file, pgoff, tfirst, tcount);
            if (frame < 0)
                return VmFault.Oom;
        }
        else
        {
            frame = await t.Pcp.Alloc(m, t);
            if (frame < 0)
                return VmFault.Oom;
            m.Folios.TryLock(t, frame);
            file.Pages[pgoff] = frame;
            m.Frames.InFlight--;
            m.Frames.PageCache++;
            await t.Delay(m.ClearPageNs);
            m.Folios.Unlock(t, frame);
        }

        if (write && !shared)
        {
            if (!vma.HasAnonVma)
            {
                var r = AnonVmaPrepare(t, vma, flags);
                if (r != VmFault.Done) return r | ret;
            }
            long copy = await t.Pcp.Alloc(m, t);
            if (copy < 0)
                return VmFault.Oom;
            await t.Delay(m.Cost.PageBandwidthNs(m.Spec.PageSize, m.Distance(t.Node, m.NodeOfFrame(frame))));
            if (await SetPteIfSame(t, vma, addr, Pte.None, Pte.Present(copy, writable: true)))
            {
                m.Frames.InFlight--;
                m.Frames.Anon++;
            }
            else
            {
                DropFrame(m, copy);
            }
            return ret;
        }
        await SetPteIfSame(t, vma, addr, Pte.None, Pte.Present(frame, writable: write && shared, file: true));
        return ret;
    }

    /// <summary>
    /// 6.6 under FAULT_FLAG_VMA_LOCK: do_read_fault first tries do_fault_around, which maps a page already in the page
    /// cache, up to date and not locked (filemap_map_pages trylocks it), without calling ->fault; anything else — a page
    /// not cached or locked, and every write (do_cow_fault, do_shared_fault) — releases the VMA lock and returns RETRY,
    /// to be handled under mmap_lock.
    /// </summary>
    private static async ValueTask<VmFault> FaultAroundOrRetry(EmuTask t, Vma vma, long addr, FaultFlags flags, FileObject file, long pgoff, bool write)
    {
        var m = t.Machine;
        if (!write && file.Pages.TryGetValue(pgoff, out long frame) && !m.Folios.IsLocked(frame))
        {
            await SetPteIfSame(t, vma, addr, Pte.None, Pte.Present(frame, writable: false, file: true));
            return VmFault.Done;
        }
        return VmFault.Retry | ReleaseFaultLock(t, vma, flags);
    }

    /// <summary>
    /// The mmap read-around window of do_sync_mmap_readahead: ra_pages pages starting ra_pages/2 before the faulting
    /// index ("ra->start = max(0, pgoff - ra_pages / 2); ra->size = ra_pages"). The file's size (i_size, which bounds
    /// the kernel's window) is not modelled: the window is clamped to the file range this VMA maps instead. With
    /// ra_pages 0 (no read-ahead) it is the faulting page alone, which filemap_fault then reads itself
    /// (__filemap_get_folio(FGP_CREAT) + filemap_read_folio). mmap_miss's give-up heuristic is not modelled.
    /// </summary>
    private static (long First, long Count) ReadAroundWindow(EmuMachine m, Vma vma, FileObject file, long pgoff)
    {
        long ra = file.ReadAheadBytes >> m.Spec.PageShift;
        if (ra <= 1)
            return (pgoff, 1);
        long lo = vma.PgOff, hi = vma.PgOff + ((vma.End - vma.Start) >> m.Spec.PageShift);
        long first = Math.Max(lo, pgoff - ra / 2);
        long last = Math.Min(hi, first + ra);
        return (first, last - first);
    }

    /// <summary>
    /// do_sync_mmap_readahead → page_cache_ra_order / page_cache_ra_unbounded, then the read's completion: a locked,
    /// not-yet-up-to-date folio is added to the page cache for the faulting page and for every uncached page of the window
    /// (read-ahead stops at the first failed allocation; only the faulting page's failure counts), one read covers them
    /// all (<see cref="CostModel.FileReadNs"/>: the window is one request, its cost latency-dominated), and each folio is
    /// then unlocked, up to date (filemap_read_end_io → folio_end_read), waking whoever waited on it. Runs with or
    /// without the fault lock, as the caller decided; touches no VMA. Returns the faulting page's frame, or -1 (OOM).
    /// </summary>
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    private static async ValueTask<long> DoSyncMmapReadahead(EmuTask t, FileObject file, long pgoff, long first, long count)
    {
        var m = t.Machine;
        var reading = new List<long>((int)Math.Min(count, 64));
        long frame = -1;
        // The faulting page first: it is the one the fault needs (filemap_create_folio if read-ahead brought nothing).
        for (long k = -1; k < count; k++)
        {
            long index = k < 0 ? pgoff : first + k;
            if ((k >= 0 && index == pgoff) || file.Pages.ContainsKey(index))
                continue;
            long f = await t.Pcp.Alloc(m, t);
            if (f < 0)
                break;
            if (file.Pages.ContainsKey(index))
            {
                DropFrame(m, f); // added by another task while this one allocated (add_to_page_cache_lru: -EEXIST)
                continue;
            }
            m.Folios.TryLock(t, f);
            file.Pages[index] = f;
            m.Frames.InFlight--;
            m.Frames.PageCache++;
            reading.Add(f);
            if (index == pgoff) frame = f;
        }
        if (frame < 0 && file.Pages.TryGetValue(pgoff, out long cached))
            frame = cached; // another task added it while this one allocated: it is (being) read by that task
        if (reading.Count > 0)
            await t.Delay(m.Cost.FileReadNs);
        foreach (long f in reading)
            m.Folios.Unlock(t, f);
        if (frame >= 0 && !reading.Contains(frame) && m.Folios.IsLocked(frame))
        {
            await m.Folios.Lock(t, frame); // the other task's read: wait for it, holding whatever the caller holds
            m.Folios.Unlock(t, frame);
        }
        return frame;
    }
}
