using System.Runtime.CompilerServices;
using DistEmu.Kernel.Fault;
using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Ports;

/// <summary>The address-space port on local objects (sim engine): the RCU lookup reads the mm's current tree.</summary>
public sealed class LocalAddressSpace : IAddressSpacePort
{
    private readonly MmStruct _mm;

    public LocalAddressSpace(MmStruct mm) => _mm = mm;

    public ValueTask<long> PageWalk(EmuTask t, long addr, bool write)
    {
        var vma = _mm.Tree.Find(addr);
        long pte = vma is null ? Pte.None : vma.PageTable.Read(addr);
        if (Pte.Kind(pte) == PteKind.Present)
            _mm.MarkCpu(t.Cpu);
        return ValueTask.FromResult(pte);
    }

    /// <summary>lock_vma_under_rcu over the current tree version, then the VMA attempt.</summary>
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    public async ValueTask<VmaAttemptResult> VmaAttempt(EmuTask t, long addr, FaultFlags flags)
    {
        var m = t.Machine;
        int misses = 0;
        while (true)
        {
            await t.Delay(m.Cost.VmaLookupNs);
            var vma = _mm.Tree.Find(addr);
            if (vma is null)
                return new VmaAttemptResult(VmaAttemptKind.Abort, VmFault.Done, misses);
            await t.Preempt(PreemptSite.LookupToVmaStartRead);
            var (lockResult, fault) = await VmaFault.AttemptUnderVmaLock(t, vma, addr, flags);
            switch (lockResult)
            {
                case VmaLockResult.Miss:
                    m.VmStat.vma_lock_miss++;
                    misses++;
                    continue;
                case VmaLockResult.Abort:
                    return new VmaAttemptResult(VmaAttemptKind.Abort, VmFault.Done, misses);
                case VmaLockResult.AccessError:
                    return new VmaAttemptResult(VmaAttemptKind.AccessError, VmFault.Done, misses);
                default:
                    return new VmaAttemptResult(VmaAttemptKind.Handled, fault, misses);
            }
        }
    }

    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    public async ValueTask<MmapAttemptResult> MmapAttempt(EmuTask t, long addr, FaultFlags flags)
    {
        var vma = await VmaLookup.LockMmAndFindVma(t, _mm, addr);
        if (vma is null)
            return new MmapAttemptResult(MmapAttemptKind.NoVma, VmFault.Done);
        var (accessError, fault) = await VmaFault.HandleUnderMmapLock(t, vma, addr, flags);
        if (accessError)
            return new MmapAttemptResult(MmapAttemptKind.AccessError, VmFault.Done);
        if (!fault.Has(VmFault.Retry | VmFault.Completed))
            MmapLock.MmapReadUnlock(t, _mm);
        return new MmapAttemptResult(MmapAttemptKind.Handled, fault);
    }
}
