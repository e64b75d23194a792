using System.Runtime.CompilerServices;
using DistEmu.Kernel.Fault;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Cpu;

/// <summary>
/// One load or store by the task on its CPU, as hardware does it: the TLB, then a page walk, then a page fault
/// and re-execution of the instruction. A TLB hit costs only the memory access at the frame's NUMA distance.
/// </summary>
public static class CpuAccess
{
    /// <summary>Re-executions of one access after faults before it is declared stuck (L2).</summary>
    public const int MaxReexecutions = 16;

    // The fault path's async methods suspend at every engine yield (several per fault with many CPUs); pooled builders
    // reuse their state-machine boxes instead of allocating one per suspended frame.
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    public static async ValueTask<FaultOutcome> Access(EmuTask t, long addr, bool write)
    {
        var m = t.Machine;
        var aspace = t.AddressSpace!;
        var tlb = t.Tlb!;
        long vpn = addr >> m.Spec.PageShift;
        for (int i = 0; ; i++)
        {
            long pte = tlb.Lookup(vpn);
            if (pte == Pte.None || (write && !Pte.IsWritable(pte)))
            {
                // TLB miss (or a write through a read-only translation): the hardware walks the page table. A CPU's
                // first translation in an mm puts it in mm_cpumask, which every shootdown reads: that walk never runs
                // ahead of anyone (the sim engine's run-ahead).
                await (t.Mm is { } mm && !mm.IsCpuMarked(t.Cpu) ? t.DelayExact(m.Cost.PageWalkNs) : t.Delay(m.Cost.PageWalkNs));
                pte = await aspace.PageWalk(t, addr, write);
                if (Pte.Kind(pte) != PteKind.Present || (write && !Pte.IsWritable(pte)))
                {
                    if (i >= MaxReexecutions)
                    {
                        m.Sanitizer.Report("L2", t, null, addr, $"access re-executed {i} times without the entry becoming usable ({Pte.Describe(pte)})");
                        return FaultOutcome.Sigbus;
                    }
                    var outcome = await ArchFault.DoUserAddrFault(t, addr, write);
                    if (outcome != FaultOutcome.Handled)
                        return outcome;
                    continue;
                }
                tlb.Fill(vpn, pte);
            }
            long frame = Pte.Frame(pte);
            int distance = frame == Pte.ZeroFrame ? 10 : m.Distance(t.Node, m.NodeOfFrame(frame));
            await t.Delay(m.Cost.AccessAtDistanceNs(distance));
            return FaultOutcome.Handled;
        }
    }
}
