using System.Runtime.CompilerServices;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Migration;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Fault;

/// <summary>do_numa_page (mm/memory.c): the NUMA hinting fault.</summary>
public static partial class MmFault
{
    /// <summary>
    /// A touch of a protnone entry left by change_prot_numa. Counted as numa_hint_faults. A page already on the
    /// faulting CPU's node is simply made accessible again. Otherwise the faulting CPU migrates it to its own node
    /// itself — asynchronously, trylock only — while still holding its fault lock; others touching the page
    /// meanwhile meet the migration entry and wait. If the migration fails the entry is restored.
    /// </summary>
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    private static async ValueTask<VmFault> DoNumaPage(EmuTask t, Vma vma, long addr, long orig)
    {
        var m = t.Machine;
        m.VmStat.numa_hint_faults++;
        long frame = Pte.Frame(orig);
        if (frame == Pte.ZeroFrame || Pte.IsFile(orig) || m.NodeOfFrame(frame) == t.Node)
        {
            await SetPteIfSame(t, vma, addr, orig, Pte.WithKind(orig, PteKind.Present));
            return VmFault.Done;
        }
        if (await MigratePages.MigrateFolio(t, vma, addr, frame, t.Node, MigrateMode.Async))
        {
            m.VmStat.numa_pages_migrated++;
            return VmFault.Done;
        }
        await SetPteIfSame(t, vma, addr, orig, Pte.WithKind(orig, PteKind.Present));
        return VmFault.Done;
    }
}
