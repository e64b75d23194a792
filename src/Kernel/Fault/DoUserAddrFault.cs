using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sanitizer;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Fault;

/// <summary>The arch fault loop (arch/x86/mm/fault.c do_user_addr_fault), with each policy's switch points.</summary>
public static class ArchFault
{
    /// <summary>Attempts under mmap_lock after which a fault is declared stuck (L2); the kernel's loop is unbounded.</summary>
    public const int MaxMmapAttempts = 8;

    /// <summary>
    /// do_user_addr_fault. Flags ALLOW_RETRY | KILLABLE | USER (| WRITE). If the policy has a VMA path: lock the VMA
    /// under RCU (none → ABORT counted), check access (error → release, fall back), handle_mm_fault with VMA_LOCK,
    /// release as the policy says, and unless RETRY count SUCCESS and finish; else count RETRY and fall back
    /// (TRIED if MAJOR). Under mmap_lock: find the VMA (none → SIGSEGV), check access, handle_mm_fault; COMPLETED →
    /// done, lock already released; RETRY → TRIED, again; else mmap_read_unlock. Each attempt ends holding nothing.
    /// </summary>
    public static async ValueTask<FaultOutcome> DoUserAddrFault(EmuTask t, long addr, bool write)
    {
        var m = t.Machine;
        var mm = t.Mm ?? throw new InvalidOperationException($"{t} has no mm");
        var policy = m.Policy;
        long start = t.Clock;
        m.VmStat.Faults++;
        m.Events.Record(t, EventKind.FaultBegin, mm.Id, addr, write ? 1 : 0);
        await t.Delay(m.Cost.FaultEntryNs);
        var flags = FaultFlags.AllowRetry | FaultFlags.Killable | FaultFlags.User | (write ? FaultFlags.Write : 0);
        int vmaOutcomes = 0;
        bool vmaAccessError = false;
        VmFault fault = VmFault.Done;
        bool done = false;

        if (policy.HasVmaPath())
        {
            var lookup = await VmaLookup.LockVmaUnderRcu(t, mm, addr);
            var vma = lookup.Vma;
            if (vma is null)
            {
                vmaOutcomes++; // ABORT
            }
            else if (VmaLookup.AccessError(vma, write))
            {
                VmaLock.VmaEndRead(t, vma);
                vmaAccessError = true;
            }
            else
            {
                m.Events.Record(t, EventKind.VmaAttempt, vma.Id, addr);
                fault = await MmFault.HandleMmFault(t, vma, addr, flags | FaultFlags.VmaLock);
                bool expected = MmFault.CallerStillHolds(policy, fault, underVmaLock: true);
                m.Sanitizer.CheckResultContract(t, vma, addr, fault, true, vma.VmLock.IsReadHeldBy(t), expected);
                if (m.Bugs.UseVmaAfterRetryUnlock && fault.Has(VmFault.Retry))
                    m.Sanitizer.CheckVmaUse(t, vma, "reading vma->vm_flags after handle_mm_fault returned RETRY", addr);
                if (expected)
                {
                    if (m.Bugs.MmapUnlockAfterVmaFault)
                        MmapLock.MmapReadUnlock(t, mm);
                    else
                        VmaLock.VmaEndRead(t, vma);
                }
                vmaOutcomes++;
                if (!fault.Has(VmFault.Retry))
                {
                    m.VmStat.vma_lock_success++;
                    done = true;
                }
                else
                {
                    m.VmStat.vma_lock_retry++;
                    if (fault.Has(VmFault.Major))
                        flags |= FaultFlags.Tried;
                }
            }
            m.Sanitizer.CheckHoldsNothing(t, "the VMA-lock attempt", vma, addr);
            if (m.Sanitizer.Enabled && vmaOutcomes != (vmaAccessError ? 0 : 1))
                m.Sanitizer.Report("A1", t, vma, addr, $"one fault counted {vmaOutcomes} of abort/success/retry");
        }

        var outcome = FaultOutcome.Handled;
        if (!done)
        {
            outcome = await LockMmapPath(t, mm, addr, write, flags);
        }
        else
        {
            outcome = ToOutcome(fault);
        }
        m.Sanitizer.CheckHoldsNothing(t, "do_user_addr_fault", null, addr);
        if (outcome == FaultOutcome.Sigsegv) m.VmStat.Sigsegv++;
        else if (outcome == FaultOutcome.Sigbus) m.VmStat.Sigbus++;
        m.FaultLatency.Record(t.Clock - start);
        m.Events.Record(t, EventKind.FaultEnd, mm.Id, addr, (long)outcome);
        return outcome;
    }

    /// <summary>The lock_mmap / retry part of the loop: every VMA-path failure ends here (L3).</summary>
    private static async ValueTask<FaultOutcome> LockMmapPath(EmuTask t, MmStruct mm, long addr, bool write, FaultFlags flags)
    {
        var m = t.Machine;
        for (int attempt = 1; ; attempt++)
        {
            var vma = await VmaLookup.LockMmAndFindVma(t, mm, addr);
            if (vma is null)
                return FaultOutcome.Sigsegv;
            if (VmaLookup.AccessError(vma, write))
            {
                MmapLock.MmapReadUnlock(t, mm);
                return FaultOutcome.Sigsegv;
            }
            m.Events.Record(t, EventKind.MmapAttempt, vma.Id, addr, attempt);
            var fault = await MmFault.HandleMmFault(t, vma, addr, flags);
            bool expected = MmFault.CallerStillHolds(m.Policy, fault, underVmaLock: false);
            m.Sanitizer.CheckResultContract(t, vma, addr, fault, false, t.Holds(mm.MmapLock), expected);
            if (fault.Has(VmFault.Completed))
                return ToOutcome(fault);
            if (fault.Has(VmFault.Retry))
            {
                flags |= FaultFlags.Tried;
                m.Sanitizer.CheckHoldsNothing(t, "a retried mmap_lock attempt", vma, addr);
                if (attempt >= MaxMmapAttempts)
                {
                    m.Sanitizer.Report("L2", t, vma, addr, $"fault still retrying after {attempt} attempts under mmap_lock");
                    return FaultOutcome.Sigbus;
                }
                continue;
            }
            MmapLock.MmapReadUnlock(t, mm);
            return ToOutcome(fault);
        }
    }

    private static FaultOutcome ToOutcome(VmFault f) =>
        f.Has(VmFault.Sigsegv) ? FaultOutcome.Sigsegv :
        f.Has(VmFault.Sigbus | VmFault.Oom) ? FaultOutcome.Sigbus : FaultOutcome.Handled;
}
