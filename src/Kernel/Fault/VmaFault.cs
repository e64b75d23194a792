using System.Runtime.CompilerServices;
using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sanitizer;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Fault;

public enum VmaLockResult : byte
{
    Locked,
    /// <summary>vma_start_read failed, or anon without anon_vma, or a file VMA the policy's VMA path does not cover, or the address moved out.</summary>
    Abort,
    /// <summary>The VMA was detached after the lookup found it: look up again.</summary>
    Miss,
    /// <summary>Locked, but access_error: released again.</summary>
    AccessError,
}

/// <summary>
/// The parts of a fault that run where the VMA lives: under the orleans engine, inside the VMA grain, in one call.
/// </summary>
public static class VmaFault
{
    /// <summary>
    /// After the RCU lookup found <paramref name="vma"/>: vma_start_read and lock_vma_under_rcu's checks (anon_vma,
    /// file VMAs when the policy's VMA path is anonymous-only, bounds, detached → MISS), then access_error, then
    /// handle_mm_fault with FAULT_FLAG_VMA_LOCK, then the release the policy assigns to the arch loop (PROTOCOL.md §5).
    /// Ends holding nothing (S6), unless the historical bug §8.3 is switched on.
    /// </summary>
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    public static async ValueTask<(VmaLockResult Lock, VmFault Fault)> AttemptUnderVmaLock(EmuTask t, Vma vma, long addr, FaultFlags flags)
    {
        var m = t.Machine;
        var policy = m.Policy;
        if (!VmaLock.VmaStartRead(t, vma, addr))
            return (VmaLockResult.Abort, VmFault.Done);
        t.Advance(m.Cost.LockNs); // what follows reads the VMA we hold the read lock of, then synchronises
        if ((vma.IsAnonymous && !vma.HasAnonVma && policy.LockVmaUnderRcuChecksAnonVma()) || (!vma.IsAnonymous && !policy.VmaPathCoversFile()) || !vma.Contains(addr))
        {
            VmaLock.VmaEndRead(t, vma);
            return (VmaLockResult.Abort, VmFault.Done);
        }
        if (vma.Detached)
        {
            VmaLock.VmaEndRead(t, vma);
            return (VmaLockResult.Miss, VmFault.Done);
        }
        if (VmaLookup.AccessError(VmaLock.VisibleFlags(t, vma, addr), flags.Has(FaultFlags.Write)))
        {
            VmaLock.VmaEndRead(t, vma);
            return (VmaLockResult.AccessError, VmFault.Done);
        }
        m.Events.Record(t, EventKind.VmaAttempt, vma.Id, addr);
        var fault = await MmFault.HandleMmFault(t, vma, addr, flags | FaultFlags.VmaLock);
        MmFault.MmAccountFault(t, fault);
        bool expected = MmFault.CallerStillHolds(policy, fault, underVmaLock: true);
        m.Sanitizer.CheckResultContract(t, vma, addr, fault, true, vma.VmLock.IsReadHeldBy(t), expected);
        if (m.Bugs.UseVmaAfterRetryUnlock && fault.Has(VmFault.Retry))
            m.Sanitizer.CheckVmaUse(t, vma, "reading vma->vm_flags after handle_mm_fault returned RETRY", addr);
        if (expected)
        {
            if (m.Bugs.MmapUnlockAfterVmaFault)
                MmapLock.MmapReadUnlock(t, vma.Mm);
            else
                VmaLock.VmaEndRead(t, vma);
        }
        m.Sanitizer.CheckHoldsNothing(t, "the VMA-lock attempt", vma, addr);
        return (VmaLockResult.Locked, fault);
    }

    /// <summary>
    /// With mmap_lock held for read and <paramref name="vma"/> found: access_error (→ unlock, false), else
    /// handle_mm_fault and the S7 check. Returns with mmap_lock still held unless the result is RETRY or COMPLETED.
    /// </summary>
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    public static async ValueTask<(bool AccessError, VmFault Fault)> HandleUnderMmapLock(EmuTask t, Vma vma, long addr, FaultFlags flags)
    {
        var m = t.Machine;
        if (VmaLookup.AccessError(vma, flags.Has(FaultFlags.Write)))
        {
            MmapLock.MmapReadUnlock(t, vma.Mm);
            return (true, VmFault.Done);
        }
        m.Events.Record(t, EventKind.MmapAttempt, vma.Id, addr);
        var fault = await MmFault.HandleMmFault(t, vma, addr, flags);
        MmFault.MmAccountFault(t, fault);
        bool expected = MmFault.CallerStillHolds(m.Policy, fault, underVmaLock: false);
        m.Sanitizer.CheckResultContract(t, vma, addr, fault, false, t.Holds(vma.Mm.MmapLock), expected);
        return (false, fault);
    }
}
