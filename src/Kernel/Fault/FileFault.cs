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
    /// A fault on a file VMA's pte_none entry. The page-cache folio is found, or allocated and read in under its
    /// folio lock (a disk read is a major fault; tmpfs just zeroes). A folio that another task is reading in is
    /// waited for through folio_lock_or_retry: on the first try (ALLOW_RETRY without TRIED) the fault lock is
    /// released, the task sleeps and the fault returns RETRY; on a TRIED attempt it sleeps holding the lock.
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
                if (flags.Has(FaultFlags.AllowRetry) && !flags.Has(FaultFlags.Tried))
                {
                    var released = ReleaseFaultLock(t, vma, flags);
                    await WaitFolioUnlocked(t, frame);
                    return VmFault.Retry | released;
                }
                await m.Folios.Lock(t, frame);
                m.Folios.Unlock(t, frame);
            }
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
            if (file.DiskBacked)
            {
                await t.Delay(m.Cost.FileReadNs);
                m.VmStat.pgmajfault++;
                ret |= VmFault.Major;
            }
            else
            {
                await t.Delay(m.ClearPageNs);
            }
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
}
