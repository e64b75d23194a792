using Orleans;
using Orleans.Concurrency;

namespace DistEmu.Abstractions;

/// <summary>
/// A VMA (key: "run/mmN/nodeK/vmaM", K the node of the CPU that created it): its vm_lock and vm_lock_seq, the entries of its range and their folios. A fault on
/// the fast path is one call here.
/// </summary>
public interface IVmaGrain : IGrainWithStringKey
{
    Task Init(VmaInit init);
    /// <summary>The hardware page walk; if the entry is unusable and asked to, the VMA-lock attempt right after.</summary>
    ValueTask<FaultReply> WalkOrFault(FaultRequest request);
    /// <summary>vma_start_read and its checks, access check, handle_mm_fault with VMA_LOCK, the policy's release.</summary>
    ValueTask<FaultReply> FaultUnderVmaLock(FaultRequest request);
    /// <summary>handle_mm_fault for a caller holding mmap_lock for read.</summary>
    ValueTask<FaultReply> HandleUnderMmap(FaultRequest request);
    Task<ClockReply> StartWrite(Caller caller, long mmLockSeq);
    Task MarkDetached(Caller caller);
    /// <summary>__split_vma: keep [start, end) with page offset <paramref name="pgoff"/>, hand the rest to the new VMA.</summary>
    Task<ClockReply> SplitOff(Caller caller, long start, long end, long pgoff, VmaInit newVma);
    // The writer paths below shoot down TLBs (flush_tlb_mm_range): each brings the mm's cpumask as the mm grain has it
    // (every CPU that has a translation in the mm), which the VMA grain's own copy joins.
    Task<ClockReply> Unmap(Caller caller, int[] mmCpus);
    Task<ClockReply> ChangeProtection(Caller caller, byte flags, bool writable, bool accessible, int[] mmCpus);
    [OneWay] Task EpochEnded(long mmLockSeq);
    Task<ClockReply> ChangeProtNuma(Caller caller, long from, long to, int[] mmCpus);
    Task<ClockReply> PageOut(Caller caller, long from, long to, int[] mmCpus);
    Task<CollectReply> CollectForMigration(Caller caller, long from, long to, int node);
    Task<ClockReply> Migrate(Caller caller, long[] addrs, long[] frames, int node, int[] mmCpus);
    Task<StatsMessage> GetStats();
    /// <summary>The silo this activation lives on (for placement checks).</summary>
    [AlwaysInterleave] Task<string> Where();
}
