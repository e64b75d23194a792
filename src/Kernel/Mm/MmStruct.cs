using DistEmu.Kernel.Locking;

namespace DistEmu.Kernel.Mm;

/// <summary>
/// struct mm_struct: mmap_lock, mm_lock_seq (the write epoch), the VMA tree, the page tables and mm_cpumask (the CPUs that may
/// cache its translations, the targets of TLB shootdowns).
/// </summary>
public sealed class MmStruct
{
    private readonly bool[] _cpumask;

    public int Id { get; }
    public RwSemaphore MmapLock { get; }
    /// <summary>mm->mm_lock_seq. A VMA is write-locked iff vma.vm_lock_seq == this. Only grows, +1 per write section.</summary>
    public long MmLockSeq { get; internal set; }
    /// <summary>The current tree version (rcu_assign_pointer'd by writers).</summary>
    public VmaTree Tree { get; internal set; } = VmaTree.Empty;
    /// <summary>How mm-level paths reach each VMA's own state (local objects, or VMA grains).</summary>
    public Ports.IVmaOps VmaOps { get; set; } = Ports.LocalVmaOps.Instance;
    /// <summary>The address-space port over this mm's local objects (sim engine).</summary>
    public Ports.IAddressSpacePort LocalPort { get; }
    /// <summary>The page tables (PTE level) of this address space.</summary>
    public PageTable PageTable { get; }

    /// <param name="tokenLock">Under orleans, a VMA grain's copy of its mm: mmap_lock there is a token of the mm grain's.</param>
    public MmStruct(EmuMachine m, int id, bool tokenLock = false)
    {
        Id = id;
        MmapLock = new RwSemaphore(m, LockClass.MmapLock, $"mm{id}", tokenLock);
        _cpumask = new bool[m.Spec.Cpus];
        PageTable = new PageTable(m, $"mm{id}");
        LocalPort = new Ports.LocalAddressSpace(this);
    }

    public bool IsCpuMarked(int cpu) => cpu < 0 || _cpumask[cpu];

    public void MarkCpu(int cpu)
    {
        if (cpu >= 0) _cpumask[cpu] = true;
    }

    public IEnumerable<int> CpuMask()
    {
        for (int i = 0; i < _cpumask.Length; i++)
            if (_cpumask[i]) yield return i;
    }

    public override string ToString() => $"mm{Id}";
}
