using Orleans;

namespace DistEmu.Abstractions;

/// <summary>An address space (key: "run/mmN"): mmap_lock, mm_lock_seq, the VMA tree and the writers.</summary>
public interface IMmGrain : IGrainWithStringKey
{
    /// <summary>The current tree, for a CPU's RCU snapshot.</summary>
    Task<TreeSnapshot> GetTree(int cpu);
    /// <summary>
    /// The CPU's first translation in this mm: it joins mm_cpumask, which every TLB shootdown of the mm reads (as the
    /// sim engine marks it, at the first page walk that finds a present entry).
    /// </summary>
    Task MarkCpu(int cpu);
    /// <summary>lock_mm_and_find_vma for <paramref name="caller"/>: mmap_read_lock (waits behind writers), find the VMA.</summary>
    Task<LockFindReply> LockAndFind(Caller caller, long addr);
    /// <summary>mmap_read_unlock by (or on behalf of) the caller, at the caller's clock.</summary>
    Task ReadUnlock(Caller caller);
    /// <summary>mmap, munmap, mprotect, move_pages, NUMA scan or MADV_PAGEOUT for the caller; returns its clock after.</summary>
    Task<long> Syscall(Caller caller, OpMessage op);
    /// <summary>The VMA grains this mm created and has not yet been handed the counters of, by the node they are placed on.</summary>
    Task<Dictionary<int, int[]>> VmasByNode();
    /// <summary>
    /// This mm's counters and those its retired VMA grains handed over, once the nodes have read the other VMAs (call
    /// <see cref="VmasByNode"/> first). <paramref name="freshVmas"/>: VMA grains that answered from a fresh activation;
    /// those that did not retire are named lost.
    /// </summary>
    Task<StatsMessage> CollectStats(int[] freshVmas);
    /// <summary>
    /// The counters of VMA <paramref name="vmaId"/>, unmapped and idle, which Orleans is deactivating: the mm keeps them
    /// for <see cref="CollectStats"/> (and asks that grain no more), so an unmapped VMA's grain need not outlive its use.
    /// </summary>
    Task Retired(int vmaId, StatsMessage stats);
}
