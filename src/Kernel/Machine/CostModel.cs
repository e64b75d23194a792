namespace DistEmu.Kernel.Machine;

/// <summary>
/// The emulated-time cost model, in nanoseconds (and bytes per ns for bandwidths). Every CPU's clock advances
/// only by these numbers, so every result of a run is in emulated time. A machine description may override any
/// field. Defaults are set so that a single thread of will-it-scale page_fault1 runs at about 1 M faults/s,
/// in line with the 0.90 M/s Punit Agrawal measured on Ice Lake (LKML, Feb 2023) — see PROTOCOL.md §9; the
/// other defaults are orders of magnitude from public latency tables, documented per field.
/// </summary>
public sealed record CostModel
{
    /// <summary>Exception entry/exit plus do_user_addr_fault's own work before and after handle_mm_fault.</summary>
    public long FaultEntryNs { get; init; } = 150;
    /// <summary>A syscall's entry/exit (mmap, munmap, mprotect, move_pages).</summary>
    public long SyscallNs { get; init; } = 100;
    /// <summary>A maple-tree walk under RCU (find_vma / lock_vma_under_rcu's lookup).</summary>
    public long VmaLookupNs { get; init; } = 25;
    /// <summary>An uncontended atomic lock or unlock (rwsem fast path, spin_lock).</summary>
    public long LockNs { get; init; } = 15;
    /// <summary>Handing a contended lock to a waiter: wake-up and cache-line transfer (rwsem hand-off, ~1 µs scale wake-ups are the slow tail).</summary>
    public long LockHandoffNs { get; init; } = 200;
    /// <summary>pte_offset_map(_lock): mapping the page-table page to read an entry.</summary>
    public long PteMapNs { get; init; } = 20;
    /// <summary>Writing one page-table entry.</summary>
    public long PteUpdateNs { get; init; } = 10;
    /// <summary>Popping a frame from the per-CPU page list (rmqueue_pcplist).</summary>
    public long PageAllocNs { get; init; } = 60;
    /// <summary>Refilling the per-CPU list from the node's buddy allocator under the zone lock (rmqueue_bulk).</summary>
    public long PcpRefillNs { get; init; } = 600;
    /// <summary>Frames moved per refill (pcp->batch).</summary>
    public int PcpBatch { get; init; } = 63;
    /// <summary>Local memory bandwidth of one CPU, bytes per ns (clear_page / copy_page speed); remote bandwidth is divided by distance/10.</summary>
    public double MemoryBytesPerNs { get; init; } = 10.0;
    /// <summary>A load or store that hits the TLB, to local memory; remote accesses scale by SLIT distance / 10.</summary>
    public long AccessNs { get; init; } = 5;
    /// <summary>A hardware page walk after a TLB miss (the walk itself, PTE found present).</summary>
    public long PageWalkNs { get; init; } = 30;
    /// <summary>Fixed part of a TLB shootdown (flush_tlb_mm_range on the initiator).</summary>
    public long TlbShootdownNs { get; init; } = 1000;
    /// <summary>Per target CPU of a shootdown: one IPI and its acknowledgement.</summary>
    public long TlbShootdownPerCpuNs { get; init; } = 150;
    /// <summary>Fixed part of mmap/munmap/mprotect bodies (VMA allocation, tree update).</summary>
    public long VmaUpdateNs { get; init; } = 400;
    /// <summary>Zapping one page-table entry in munmap (zap_pte_range per entry, incl. freeing the page).</summary>
    public long ZapPerPageNs { get; init; } = 25;
    /// <summary>Changing one entry's protection (change_pte_range per entry: mprotect, NUMA scanning).</summary>
    public long ChangeProtPerPageNs { get; init; } = 10;
    /// <summary>Isolating a folio and walking its rmap before migration (migrate_pages' fixed part).</summary>
    public long MigrateBaseNs { get; init; } = 800;
    /// <summary>Reading one page from swap (NVMe random 4 KiB read).</summary>
    public long SwapInNs { get; init; } = 20_000;
    /// <summary>Writing one page to swap.</summary>
    public long SwapOutNs { get; init; } = 20_000;
    /// <summary>Reading one page of a disk-backed file (page-cache miss).</summary>
    public long FileReadNs { get; init; } = 20_000;

    public static CostModel Default { get; } = new();

    /// <summary>Time to zero or copy one page at the given SLIT distance (10 = local).</summary>
    public long PageBandwidthNs(long pageSize, int distance) =>
        (long)Math.Ceiling(pageSize / MemoryBytesPerNs * distance / 10.0);

    /// <summary>A TLB-hit access to memory at the given SLIT distance.</summary>
    public long AccessAtDistanceNs(int distance) => AccessNs * distance / 10;

    public void Validate()
    {
        foreach (var (name, value) in new (string, double)[]
        {
            (nameof(FaultEntryNs), FaultEntryNs), (nameof(SyscallNs), SyscallNs), (nameof(VmaLookupNs), VmaLookupNs),
            (nameof(LockNs), LockNs), (nameof(LockHandoffNs), LockHandoffNs), (nameof(PteMapNs), PteMapNs),
            (nameof(PteUpdateNs), PteUpdateNs), (nameof(PageAllocNs), PageAllocNs), (nameof(PcpRefillNs), PcpRefillNs),
            (nameof(AccessNs), AccessNs), (nameof(PageWalkNs), PageWalkNs), (nameof(TlbShootdownNs), TlbShootdownNs),
            (nameof(TlbShootdownPerCpuNs), TlbShootdownPerCpuNs), (nameof(VmaUpdateNs), VmaUpdateNs),
            (nameof(ZapPerPageNs), ZapPerPageNs), (nameof(ChangeProtPerPageNs), ChangeProtPerPageNs),
            (nameof(MigrateBaseNs), MigrateBaseNs), (nameof(SwapInNs), SwapInNs), (nameof(SwapOutNs), SwapOutNs),
            (nameof(FileReadNs), FileReadNs),
        })
        {
            if (value < 0)
                throw new KernelConfigException("cost." + name, value, "a cost cannot be negative");
        }
        if (PcpBatch < 1)
            throw new KernelConfigException("cost." + nameof(PcpBatch), PcpBatch, "must be at least 1");
        if (!(MemoryBytesPerNs > 0))
            throw new KernelConfigException("cost." + nameof(MemoryBytesPerNs), MemoryBytesPerNs, "must be positive");
    }
}
