using System.Runtime.CompilerServices;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Ports;
using DistEmu.Kernel.Sanitizer;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Fault;

/// <summary>The arch fault loop (arch/x86/mm/fault.c do_user_addr_fault), with each policy's switch points.</summary>
public static class ArchFault
{
    /// <summary>Attempts under mmap_lock after which a fault is declared stuck (L2); the kernel's loop is unbounded.</summary>
    public const int MaxMmapAttempts = 8;

    /// <summary>
    /// do_user_addr_fault. Flags ALLOW_RETRY | KILLABLE | USER (| WRITE). If the policy has a VMA path: the VMA
    /// attempt (none → ABORT counted; access error → fall back uncounted; else handle_mm_fault under the VMA lock and
    /// the policy's release), and unless RETRY count SUCCESS and finish; else count RETRY and fall back (TRIED if
    /// MAJOR). Under mmap_lock: no VMA or access error → SIGSEGV; COMPLETED → done, lock already released; RETRY →
    /// TRIED, again; else unlocked by the attempt, done. Each attempt ends holding nothing.
    /// </summary>
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    public static async ValueTask<FaultOutcome> DoUserAddrFault(EmuTask t, long addr, bool write)
    {
        var m = t.Machine;
        var aspace = t.AddressSpace ?? throw new InvalidOperationException($"{t} has no address space");
        long start = t.Clock;
        m.VmStat.Faults++;
        m.Events.Record(t, EventKind.FaultBegin, t.Cpu, addr, write ? 1 : 0);
        m.Observer?.OnFaultBegin(t, addr, write);
        bool retried = false;
        VmFault last = VmFault.Done;
        t.Advance(m.Cost.FaultEntryNs); // the address space's lookup synchronises next
        var flags = FaultFlags.AllowRetry | FaultFlags.Killable | FaultFlags.User | (write ? FaultFlags.Write : 0);
        FaultOutcome? outcome = null;

        if (m.Policy.HasVmaPath())
        {
            var r = await aspace.VmaAttempt(t, addr, flags);
            last = r.Fault;
            retried |= r.Fault.Has(VmFault.Retry);
            int counted = 0;
            switch (r.Kind)
            {
                case VmaAttemptKind.Abort:
                    m.VmStat.vma_lock_abort++;
                    counted++;
                    break;
                case VmaAttemptKind.Handled when !r.Fault.Has(VmFault.Retry):
                    m.VmStat.vma_lock_success++;
                    counted++;
                    outcome = ToOutcome(r.Fault);
                    break;
                case VmaAttemptKind.Handled:
                    m.VmStat.vma_lock_retry++;
                    counted++;
                    if (r.Fault.Has(VmFault.Major) && m.Policy.TriedAfterVmaRetry())
                        flags |= FaultFlags.Tried;
                    break;
            }
            if (m.Sanitizer.Enabled && counted != (r.Kind == VmaAttemptKind.AccessError ? 0 : 1))
                m.Sanitizer.Report("A1", t, null, addr, $"one fault counted {counted} of abort/success/retry");
        }

        if (outcome is null)
        {
            (outcome, var mmapLast, bool mmapRetried) = await LockMmapPath(t, aspace, addr, flags);
            last = mmapLast;
            retried |= mmapRetried;
        }
        m.Sanitizer.CheckHoldsNothing(t, "do_user_addr_fault", null, addr);
        if (outcome == FaultOutcome.Sigsegv) m.VmStat.Sigsegv++;
        else if (outcome == FaultOutcome.Sigbus) m.VmStat.Sigbus++;
        m.FaultLatency.Record(t.Clock - start);
        m.Events.Record(t, EventKind.FaultEnd, t.Cpu, addr, (long)outcome.Value);
        m.Observer?.OnFaultEnd(t, addr, outcome.Value, last, retried);
        return outcome.Value;
    }

    /// <summary>The lock_mmap / retry part of the loop: every VMA-path failure ends here (L3).</summary>
    [AsyncMethodBuilder(typeof(EmuAsyncMethodBuilder<>))]
    private static async ValueTask<(FaultOutcome, VmFault Last, bool Retried)> LockMmapPath(EmuTask t, IAddressSpacePort aspace, long addr, FaultFlags flags)
    {
        bool retried = false;
        for (int attempt = 1; ; attempt++)
        {
            var r = await aspace.MmapAttempt(t, addr, flags);
            if (r.Kind != MmapAttemptKind.Handled)
                return (FaultOutcome.Sigsegv, r.Fault, retried);
            if (!r.Fault.Has(VmFault.Retry))
                return (ToOutcome(r.Fault), r.Fault, retried);
            retried = true;
            flags |= FaultFlags.Tried;
            t.Machine.Sanitizer.CheckHoldsNothing(t, "a retried mmap_lock attempt", null, addr);
            if (attempt >= MaxMmapAttempts)
            {
                t.Machine.Sanitizer.Report("L2", t, null, addr, $"fault still retrying after {attempt} attempts under mmap_lock");
                return (FaultOutcome.Sigbus, r.Fault, retried);
            }
        }
    }

    private static FaultOutcome ToOutcome(VmFault f) =>
        f.Has(VmFault.Sigsegv) ? FaultOutcome.Sigsegv :
        f.Has(VmFault.Sigbus | VmFault.Oom) ? FaultOutcome.Sigbus : FaultOutcome.Handled;
}
