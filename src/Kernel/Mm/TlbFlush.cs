using System.Runtime.CompilerServices;
using DistEmu.Kernel.Sanitizer;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Mm;

/// <summary>flush_tlb_mm_range (arch/x86/mm/tlb.c): invalidate a range on every CPU of the mm's cpumask.</summary>
public static class TlbFlush
{
    /// <summary>
    /// Shoot down [start, end) on every CPU that may cache it: the local TLB directly, remote ones by IPI, each
    /// costing the initiator <c>TlbShootdownPerCpuNs</c> on top of the fixed part (it waits for the acks).
    /// </summary>
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder))]
    public static async ValueTask FlushRange(EmuTask t, MmStruct mm, long start, long end)
    {
        var m = t.Machine;
        long s = start >> m.Spec.PageShift, e = (end + m.Spec.PageSize - 1) >> m.Spec.PageShift;
        // mm_cpumask and every CPU's TLB are read and written here: in emulated-time order with everyone, even in
        // the sim engine's run-ahead (a no-op when the clock was just synchronised).
        await t.DelayExact(0);
        var cpus = mm.CpuMask().ToList();
        int remote = cpus.Count(c => c != t.Cpu);
        await m.TlbPort.Invalidate(cpus, s, e);
        if (remote > 0)
        {
            m.VmStat.nr_tlb_remote_flush++;
            m.VmStat.nr_tlb_remote_flush_received += remote;
        }
        m.Events.Record(t, EventKind.TlbFlush, mm.Id, start, remote);
        long from = t.Clock;
        await t.Delay(m.Cost.TlbShootdownNs + remote * m.Cost.TlbShootdownPerCpuNs);
        m.Observer?.OnTlbShootdown(t, start, end, remote, from, t.Clock);
    }
}
