using DistEmu.Kernel.Fault;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Ports;

public enum VmaAttemptKind : byte
{
    /// <summary>lock_vma_under_rcu found nothing it could lock (counted as vma_lock_abort by the arch loop).</summary>
    Abort,
    /// <summary>The VMA was locked but the access is not allowed: released, fall back (nothing counted).</summary>
    AccessError,
    /// <summary>handle_mm_fault ran under the VMA lock; <see cref="VmaAttemptResult.Fault"/> says how it ended.</summary>
    Handled,
}

/// <summary>One VMA-lock attempt: what happened, handle_mm_fault's result, and the misses seen on the way.</summary>
public readonly record struct VmaAttemptResult(VmaAttemptKind Kind, VmFault Fault, int Misses);

public enum MmapAttemptKind : byte
{
    /// <summary>No VMA covers the address (mmap_lock already released).</summary>
    NoVma,
    /// <summary>Access not allowed (mmap_lock already released).</summary>
    AccessError,
    Handled,
}

public readonly record struct MmapAttemptResult(MmapAttemptKind Kind, VmFault Fault);

/// <summary>
/// What the arch fault loop and the CPU's page walker need from the address space. The sim engine implements it on
/// local objects; the orleans engine with one call to a VMA grain per VMA attempt (the fast path) and calls to the mm
/// grain for the mmap_lock path. The arch loop itself (<see cref="ArchFault.DoUserAddrFault"/>) is the same code.
/// </summary>
public interface IAddressSpacePort
{
    /// <summary>
    /// The hardware page walk after a TLB miss for a load or store (<paramref name="write"/>): the entry for the address,
    /// or pte_none. Marks the CPU as one that may cache it.
    /// </summary>
    ValueTask<long> PageWalk(EmuTask t, long addr, bool write);

    /// <summary>
    /// lock_vma_under_rcu (lookup, vma_start_read, its checks, looking up again after a MISS), the access check, and,
    /// if locked, handle_mm_fault with FAULT_FLAG_VMA_LOCK followed by the release the policy gives the arch loop.
    /// Ends holding nothing. Misses are counted (vma_lock_miss) by the implementation.
    /// </summary>
    ValueTask<VmaAttemptResult> VmaAttempt(EmuTask t, long addr, FaultFlags flags);

    /// <summary>
    /// One attempt under mmap_lock: lock_mm_and_find_vma, the access check, handle_mm_fault, and the arch loop's
    /// mmap_read_unlock when the result leaves the lock with the caller. Ends holding nothing.
    /// </summary>
    ValueTask<MmapAttemptResult> MmapAttempt(EmuTask t, long addr, FaultFlags flags);
}
