using System.Runtime.CompilerServices;
using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Fault;

/// <summary>do_anonymous_page and do_wp_page (mm/memory.c).</summary>
public static partial class MmFault
{
    /// <summary>
    /// do_anonymous_page: a read maps the shared zero page read-only; a write allocates a frame on the faulting CPU's
    /// node (per-CPU list), zeroes it and maps it writable. anon_vma_prepare runs here on the first write; it needs
    /// only mmap_lock for read (mm/rmap.c), which is why lock_vma_under_rcu refuses VMAs without one.
    /// </summary>
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    private static async ValueTask<VmFault> DoAnonymousPage(EmuTask t, Vma vma, long addr, FaultFlags flags)
    {
        var m = t.Machine;
        if (!flags.Has(FaultFlags.Write))
        {
            await SetPteIfSame(t, vma, addr, Pte.None, Pte.Present(Pte.ZeroFrame, writable: false));
            return VmFault.Done;
        }
        if (!vma.HasAnonVma)
        {
            var r = AnonVmaPrepare(t, vma, flags);
            if (r != VmFault.Done) return r;
        }
        long frame = await t.Pcp.Alloc(m, t);
        if (frame < 0)
            return VmFault.Oom;
        t.Advance(m.ClearPageNs); // clear_page on a frame only we know of
        if (await SetPteIfSame(t, vma, addr, Pte.None, Pte.Present(frame, writable: true)))
        {
            m.Frames.InFlight--;
            m.Frames.Anon++;
        }
        else
        {
            DropFrame(m, frame);
        }
        return VmFault.Done;
    }

    /// <summary>
    /// anon_vma_prepare (mm/rmap.c __anon_vma_prepare): NULL → set, under mmap_lock (read suffices) and
    /// page_table_lock. Under a VMA lock alone it cannot run: release and retry under mmap_lock (vmf_anon_prepare);
    /// since 6.8 (__vmf_anon_prepare) it first tries mmap_read_trylock and, if that succeeds, prepares under it.
    /// </summary>
    private static VmFault AnonVmaPrepare(EmuTask t, Vma vma, FaultFlags flags)
    {
        if (flags.Has(FaultFlags.VmaLock))
        {
            if (!t.Machine.Policy.AnonPrepareTrylocksMmap() || !MmapLock.MmapReadTrylock(t, vma.Mm))
                return VmFault.Retry | ReleaseFaultLock(t, vma, flags);
            vma.HasAnonVma = true;
            MmapLock.MmapReadUnlock(t, vma.Mm);
            return VmFault.Done;
        }
        vma.HasAnonVma = true;
        return VmFault.Done;
    }

    /// <summary>
    /// do_wp_page: a write to a present read-only entry of a writable VMA. An exclusive anonymous page or a shared
    /// file page is made writable in place (wp_page_reuse / wp_page_shared); the zero page or a private file page is
    /// copied to a new frame (wp_page_copy), and other CPUs' stale translations are shot down.
    /// </summary>
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    private static async ValueTask<VmFault> DoWpPage(EmuTask t, Vma vma, long addr, FaultFlags flags, long orig)
    {
        var m = t.Machine;
        long frame = Pte.Frame(orig);
        bool shared = (vma.Flags & VmFlags.Shared) != 0;
        if (shared || (!Pte.IsFile(orig) && frame != Pte.ZeroFrame))
        {
            await SetPteIfSame(t, vma, addr, orig, Pte.WithWritable(orig, true));
            return VmFault.Done;
        }
        if (!vma.HasAnonVma)
        {
            var r = AnonVmaPrepare(t, vma, flags);
            if (r != VmFault.Done) return r;
        }
        long copy = await t.Pcp.Alloc(m, t);
        if (copy < 0)
            return VmFault.Oom;
        int distance = frame == Pte.ZeroFrame ? 10 : m.Distance(t.Node, m.NodeOfFrame(frame));
        await t.Delay(m.Cost.PageBandwidthNs(m.Spec.PageSize, distance));
        if (await SetPteIfSame(t, vma, addr, orig, Pte.Present(copy, writable: true)))
        {
            m.Frames.InFlight--;
            m.Frames.Anon++;
            await TlbFlush.FlushRange(t, vma.Mm, addr, addr + m.Spec.PageSize);
        }
        else
        {
            DropFrame(m, copy);
        }
        return VmFault.Done;
    }
}
