using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sched;
using DistEmu.Kernel.Sim;

namespace DistEmu.Kernel.Workloads;

/// <summary>
/// The LKML case ("mm: drop VMA lock before waiting for migration", June 2023) as a scripted scenario that either
/// engine can run, on a 2-node × 4-CPU machine with tasks spread over the nodes (task 0 → cpu0, 1 → cpu4, 2 → cpu1,
/// 3 → cpu5): task 0 maps VMA A (512 pages, one page-table page) and VMA B and populates them; at 30 µs the migrator
/// (cpu5) moves page 7 of A to node 1 and is held for 150 µs between unmapping and copying; at 40 µs the faulter (cpu4)
/// touches that page; at 50 µs the writer (cpu1) munmaps B (another VMA) or A (the same VMA).
/// </summary>
public static class LkmlCase
{
    public const long Page = 4096;
    public const long A = 0x7f00_0000_0000, B = 0x7f00_4000_0000;
    public const int FaulterCpu = 4, WriterCpu = 1, MigratorCpu = 5;
    /// <summary>How long the migration holds the folio locked between unmap and copy.</summary>
    public const long MigrationHoldNs = 150_000;

    public static MachineSpec Machine(FaultPolicy policy) => new()
    {
        Name = "small",
        Nodes = 2,
        CpusPerNode = 4,
        MemoryPerNodeBytes = 1L << 30,
        Distance = MachineSpec.UniformDistance(2),
        Policy = policy,
        // The scripted case is the thread's 4 KiB race in do_swap_page (migration_entry_wait): THP off, or its
        // 2 MiB-aligned areas would be THPs, whose PMD migration entries every policy waits for under the fault lock.
        Thp = TransparentHugepage.Never,
    };

    /// <param name="faulterDelayAfterUnlock">A preemption of the faulter between dropping its lock and taking the PTL (the v2/v3 window).</param>
    public static SimRunOptions Options(FaultPolicy policy, bool sameVma, long faulterDelayAfterUnlock = 0, IKernelObserver? observer = null)
    {
        var setup = new List<Op> { Op.MapAnon(A, 512 * Page), Op.MapAnon(B, 512 * Page) };
        for (int i = 0; i < 16; i++) setup.Add(Op.Write(A + i * Page));
        setup.Add(Op.Write(B));
        var script = new Dictionary<int, IReadOnlyList<Op>>
        {
            [0] = setup,
            [1] = [Op.Compute(40_000), Op.Write(A + 7 * Page)],
            [2] = [Op.Compute(50_000), Op.Unmap(sameVma ? A : B, 512 * Page)],
            [3] = [Op.Compute(30_000), Op.MigrateTo(A + 7 * Page, Page, 1)],
        };
        var delays = new Dictionary<(int, PreemptSite), long> { [(MigratorCpu, PreemptSite.MigrateBeforeCopy)] = MigrationHoldNs };
        if (faulterDelayAfterUnlock > 0) delays[(FaulterCpu, PreemptSite.UnlockToPteMapLock)] = faulterDelayAfterUnlock;
        return new SimRunOptions
        {
            Machine = Machine(policy),
            Workload = "migrate-munmap",
            Tasks = 4,
            OpsPerTask = 100,
            Script = script,
            Delays = delays,
            Observer = observer,
        };
    }
}
