namespace DistEmu.Kernel.Locking;

/// <summary>The lock classes lock_stat reports (lockdep's class names, shortened).</summary>
public enum LockClass
{
    /// <summary>mm->mmap_lock, the address-space rw_semaphore.</summary>
    MmapLock,
    /// <summary>vma->vm_lock, the per-VMA rw_semaphore.</summary>
    VmaLock,
    /// <summary>PG_locked of a folio.</summary>
    FolioLock,
    /// <summary>The page-table page's split PTE lock.</summary>
    Ptl,
}

public enum LockMode
{
    Read = 0,
    Write = 1,
}

public static class LockNames
{
    public static string Name(this LockClass c) => c switch
    {
        LockClass.MmapLock => "mmap_lock",
        LockClass.VmaLock => "vma_lock",
        LockClass.FolioLock => "folio_lock",
        LockClass.Ptl => "ptl",
        _ => c.ToString(),
    };

    public static string Name(this LockMode m) => m == LockMode.Read ? "read" : "write";
}
