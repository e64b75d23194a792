namespace DistEmu.Kernel.Fault;

/// <summary>FAULT_FLAG_* (include/linux/mm_types.h), the ones the modelled paths read.</summary>
[Flags]
public enum FaultFlags : ushort
{
    None = 0,
    Write = 1 << 0,
    /// <summary>The handler may drop the fault lock and return VM_FAULT_RETRY.</summary>
    AllowRetry = 1 << 2,
    Killable = 1 << 4,
    /// <summary>This is a retry: folio_lock_or_retry now waits holding the lock instead of retrying again.</summary>
    Tried = 1 << 5,
    User = 1 << 6,
    Instruction = 1 << 8,
    /// <summary>Entered holding the VMA read lock rather than mmap_lock.</summary>
    VmaLock = 1 << 12,
}

/// <summary>VM_FAULT_* (include/linux/mm_types.h), plus the v2 proposal's VM_FAULT_VMA_UNLOCKED.</summary>
[Flags]
public enum VmFault : ushort
{
    /// <summary>0: handled, the caller still holds its lock.</summary>
    Done = 0,
    Oom = 1 << 0,
    Sigbus = 1 << 1,
    Major = 1 << 2,
    Sigsegv = 1 << 6,
    NoPage = 1 << 8,
    /// <summary>The fault lock was released; try again.</summary>
    Retry = 1 << 10,
    /// <summary>Handled, and the fault lock was released by the callee.</summary>
    Completed = 1 << 14,
    /// <summary>v2 proposal only: the callee released the VMA lock (before waiting for migration).</summary>
    VmaUnlocked = 1 << 15,
    Error = Oom | Sigbus | Sigsegv,
}

public static class VmFaultExtensions
{
    public static bool Has(this VmFault f, VmFault bits) => (f & bits) != 0;
    public static bool Has(this FaultFlags f, FaultFlags bits) => (f & bits) != 0;

    /// <summary>
    /// fault_flag_allow_retry_first (include/linux/mm.h): ALLOW_RETRY and not TRIED — the first attempt, which may drop the
    /// fault lock to sleep and return VM_FAULT_RETRY. (FAULT_FLAG_RETRY_NOWAIT, which would keep the lock, is never set
    /// by the modelled callers.)
    /// </summary>
    public static bool AllowRetryFirst(this FaultFlags f) => (f & (FaultFlags.AllowRetry | FaultFlags.Tried)) == FaultFlags.AllowRetry;
}
