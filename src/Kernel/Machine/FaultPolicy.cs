namespace DistEmu.Kernel.Machine;

/// <summary>
/// The fault-handling policies of PROTOCOL.md §5. They differ only at the switch points the table there
/// names: whether there is a VMA path and what it covers, what happens when a migration entry is met under
/// the VMA lock, and who releases the lock after the VMA attempt.
/// </summary>
public enum FaultPolicy
{
    /// <summary>≤ 6.3: no per-VMA locks; every fault takes mmap_lock for read.</summary>
    MmapOnly,
    /// <summary>6.4–6.5: anon VMAs only; any swap-type entry (incl. migration) under the VMA lock returns RETRY at once.</summary>
    VmaBailout,
    /// <summary>LKML v2 proposal: drop the VMA lock, set VM_FAULT_VMA_UNLOCKED, wait for migration holding nothing (unsafe, S8).</summary>
    VmaUnlocked,
    /// <summary>LKML v3 proposal: drop, wait, return COMPLETED; central release in handle_mm_fault unlocks again (S6).</summary>
    LockDropped,
    /// <summary>6.6+: anon and file VMAs; the migration wait sleeps holding the VMA read lock.</summary>
    Merged,
    /// <summary>Never merged: take the PTL, drop the VMA lock, register as waiter under the PTL, then sleep holding nothing.</summary>
    PtlDrop,
}

public static class FaultPolicies
{
    public static readonly IReadOnlyList<FaultPolicy> All =
        [FaultPolicy.MmapOnly, FaultPolicy.VmaBailout, FaultPolicy.VmaUnlocked, FaultPolicy.LockDropped, FaultPolicy.Merged, FaultPolicy.PtlDrop];

    /// <summary>Policies whose protocol is correct: schedule exploration must find no violation under them.</summary>
    public static readonly IReadOnlyList<FaultPolicy> Safe =
        [FaultPolicy.MmapOnly, FaultPolicy.VmaBailout, FaultPolicy.Merged, FaultPolicy.PtlDrop];

    public static string Name(this FaultPolicy p) => p switch
    {
        FaultPolicy.MmapOnly => "mmap-only",
        FaultPolicy.VmaBailout => "vma-bailout",
        FaultPolicy.VmaUnlocked => "vma-unlocked",
        FaultPolicy.LockDropped => "lock-dropped",
        FaultPolicy.Merged => "merged",
        FaultPolicy.PtlDrop => "ptl-drop",
        _ => throw new ArgumentOutOfRangeException(nameof(p)),
    };

    public static FaultPolicy Parse(string name, string field = "policy")
    {
        foreach (var p in All)
            if (string.Equals(p.Name(), name, StringComparison.OrdinalIgnoreCase))
                return p;
        throw new KernelConfigException(field, name,
            "unknown policy; expected one of " + string.Join(", ", All.Select(p => p.Name())));
    }

    /// <summary>Does do_user_addr_fault try lock_vma_under_rcu first?</summary>
    public static bool HasVmaPath(this FaultPolicy p) => p != FaultPolicy.MmapOnly;

    /// <summary>6.6 dropped lock_vma_under_rcu's "anonymous only" check; the earlier bases kept it.</summary>
    public static bool VmaPathCoversFile(this FaultPolicy p) => p is FaultPolicy.Merged or FaultPolicy.PtlDrop;

    /// <summary>6.4 do_swap_page: "if (vmf->flags & FAULT_FLAG_VMA_LOCK) return VM_FAULT_RETRY" for every swap-type entry.</summary>
    public static bool SwapEntryBailsOutUnderVmaLock(this FaultPolicy p) => p == FaultPolicy.VmaBailout;
}
