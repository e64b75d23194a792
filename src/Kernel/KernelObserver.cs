using DistEmu.Kernel.Fault;
using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel;

/// <summary>
/// Hooks for telemetry (spans and metrics): the kernel core calls them at protocol points with emulated times, in
/// the order things happen to each task. Nothing in the core depends on what an observer does; with none set the
/// calls cost a null check.
/// </summary>
public interface IKernelObserver
{
    /// <summary>do_user_addr_fault entered.</summary>
    void OnFaultBegin(EmuTask task, long addr, bool write);
    /// <summary>do_user_addr_fault returned; <paramref name="retried"/> if some attempt returned RETRY.</summary>
    void OnFaultEnd(EmuTask task, long addr, FaultOutcome outcome, VmFault lastResult, bool retried);
    /// <summary>A lock was granted, <paramref name="waitedNs"/> after it was asked for (0 if uncontended).</summary>
    void OnLockAcquired(EmuTask task, IWaitTarget lockObject, LockMode mode, long waitedNs);
    /// <summary>A lock was released, having been held since <paramref name="heldSince"/>.</summary>
    void OnLockReleased(EmuTask task, IWaitTarget lockObject, LockMode mode, long heldSince);
    /// <summary>A task had to queue for a lock that these tasks held (the blocked writer → the faults it waits for).</summary>
    void OnLockContended(EmuTask task, IWaitTarget lockObject, LockMode mode, IReadOnlyList<EmuTask> holders);
    /// <summary>migration_entry_wait slept from <paramref name="fromNs"/> to <paramref name="toNs"/> on the folio of <paramref name="frame"/>.</summary>
    void OnMigrationWait(EmuTask task, long frame, long fromNs, long toNs);
    /// <summary>migrate_pages of one folio: start, then its phase boundaries (locked, unmapped, copied, remapped), end.</summary>
    void OnMigrate(EmuTask task, int vma, long addr, long frame, int dstNode, ReadOnlySpan<long> phases, bool success);
    /// <summary>A writer system call began.</summary>
    void OnWriterBegin(EmuTask task, string syscall, long addr, long length);
    /// <summary>A writer system call ended, having waited <paramref name="waitedNs"/> for mmap_lock and VMA readers.</summary>
    void OnWriter(EmuTask task, string syscall, long fromNs, long toNs, long waitedNs);
    /// <summary>
    /// The engine held the task back at a preemption point (schedule exploration, a scripted delay) from
    /// <paramref name="fromNs"/> to <paramref name="toNs"/>: time a fault spent scheduled out, in a window such as the
    /// one between dropping its lock and pte_offset_map_lock, that no lock or wait accounts for.
    /// </summary>
    void OnPreempted(EmuTask task, PreemptSite site, long fromNs, long toNs)
    {
    }

    /// <summary>A TLB shootdown of [start, end) to <paramref name="targets"/> CPUs.</summary>
    void OnTlbShootdown(EmuTask task, long start, long end, int targets, long fromNs, long toNs);
}
