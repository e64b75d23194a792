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
    /// <summary>
    /// 6.6.y exactly: anon VMAs with an anon_vma; file VMAs only for fault-around on cached pages (do_read_fault,
    /// do_cow_fault and do_shared_fault release the VMA lock and return RETRY under FAULT_FLAG_VMA_LOCK); no TRIED after
    /// a VMA-path retry; the migration wait sleeps holding the VMA read lock.
    /// </summary>
    Merged,
    /// <summary>Never merged: take the PTL, drop the VMA lock, register as waiter under the PTL, then sleep holding nothing (on merged's base).</summary>
    PtlDrop,
    /// <summary>
    /// 6.12.y exactly (the current LTS): file faults under the VMA lock (vmf_can_call_fault: the page cache has
    /// map_pages); lock_vma_under_rcu without the anon_vma check, __vmf_anon_prepare trylocking mmap_lock instead;
    /// FAULT_FLAG_TRIED after a VMA-path retry that was MAJOR (6.8+); the migration wait as merged.
    /// </summary>
    V6_12,
}

public static class FaultPolicies
{
    public static readonly IReadOnlyList<FaultPolicy> All =
        [FaultPolicy.MmapOnly, FaultPolicy.VmaBailout, FaultPolicy.VmaUnlocked, FaultPolicy.LockDropped, FaultPolicy.Merged, FaultPolicy.PtlDrop, FaultPolicy.V6_12];

    /// <summary>Policies whose protocol is correct: schedule exploration must find no violation under them.</summary>
    public static readonly IReadOnlyList<FaultPolicy> Safe =
        [FaultPolicy.MmapOnly, FaultPolicy.VmaBailout, FaultPolicy.Merged, FaultPolicy.PtlDrop, FaultPolicy.V6_12];

    public static string Name(this FaultPolicy p) => p switch
    {
        FaultPolicy.MmapOnly => "mmap-only",
        FaultPolicy.VmaBailout => "vma-bailout",
        FaultPolicy.VmaUnlocked => "vma-unlocked",
        FaultPolicy.LockDropped => "lock-dropped",
        FaultPolicy.Merged => "merged",
        FaultPolicy.PtlDrop => "ptl-drop",
        FaultPolicy.V6_12 => "v6.12",
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

    /// <summary>The kernel release a policy is, for help texts and results.</summary>
    public static string Release(this FaultPolicy p) => p switch
    {
        FaultPolicy.MmapOnly => "Linux <= 6.3",
        FaultPolicy.VmaBailout => "Linux 6.4-6.5",
        FaultPolicy.VmaUnlocked => "LKML v2 proposal of June 2023, on 6.4",
        FaultPolicy.LockDropped => "LKML v3 proposal of June 2023, on 6.4",
        FaultPolicy.Merged => "Linux 6.6.y",
        FaultPolicy.PtlDrop => "never merged, on 6.6.y",
        FaultPolicy.V6_12 => "Linux 6.12.y",
        _ => throw new ArgumentOutOfRangeException(nameof(p)),
    };

    /// <summary>6.6 dropped lock_vma_under_rcu's "anonymous only" check; the earlier bases kept it.</summary>
    public static bool VmaPathCoversFile(this FaultPolicy p) => p is FaultPolicy.Merged or FaultPolicy.PtlDrop or FaultPolicy.V6_12;

    /// <summary>
    /// lock_vma_under_rcu gives up on an anonymous VMA without an anon_vma (6.4-6.6); 6.7 dropped the check, leaving the
    /// anon_vma to __vmf_anon_prepare.
    /// </summary>
    public static bool LockVmaUnderRcuChecksAnonVma(this FaultPolicy p) => p != FaultPolicy.V6_12;

    /// <summary>
    /// vmf_can_call_fault (6.7+): a file fault runs ->fault under the VMA lock. Before it (6.6), do_read_fault tries only
    /// fault-around on cached pages under the VMA lock, and do_read/cow/shared_fault otherwise release it and return RETRY.
    /// </summary>
    public static bool FileFaultUnderVmaLock(this FaultPolicy p) => p == FaultPolicy.V6_12;

    /// <summary>__vmf_anon_prepare (6.8+): under the VMA lock, anon_vma_prepare runs if mmap_read_trylock succeeds.</summary>
    public static bool AnonPrepareTrylocksMmap(this FaultPolicy p) => p == FaultPolicy.V6_12;

    /// <summary>arch/x86/mm/fault.c (6.8+): a VMA-path attempt that returned RETRY|MAJOR sets FAULT_FLAG_TRIED for the mmap_lock attempt.</summary>
    public static bool TriedAfterVmaRetry(this FaultPolicy p) => p == FaultPolicy.V6_12;

    /// <summary>6.4 do_swap_page: "if (vmf->flags & FAULT_FLAG_VMA_LOCK) return VM_FAULT_RETRY" for every swap-type entry.</summary>
    public static bool SwapEntryBailsOutUnderVmaLock(this FaultPolicy p) => p == FaultPolicy.VmaBailout;
}
