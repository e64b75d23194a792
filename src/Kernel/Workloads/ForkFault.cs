namespace DistEmu.Kernel.Workloads;

/// <summary>
/// PROTOCOL.md §8.1's setting: threads fault on a shared anonymous region and a private file mapping while one thread
/// forks (each child exits at once) and NUMA-scans the region, so faults keep coming — hinting faults on the scanned
/// pages, first touches elsewhere — while dup_mmap copies the page tables. With the 6.4 bug switched in
/// (<c>--bug fork-without-vma-write-lock</c>) those faults race the copy. Task 0 forks; the others fault.
/// </summary>
public sealed class ForkFault : Workload
{
    public override string Name => "fork-fault";
    public override string Description => "faults on a shared region while one thread forks (the child exits at once) and NUMA-scans it";
    public override IReadOnlyDictionary<string, (string, string)> Parameters { get; } = new Dictionary<string, (string, string)>
    {
        ["size_mb"] = ("4", "the shared anonymous region in MiB (each fork copies its present pages)"),
        ["file_pages"] = ("64", "pages of the file mapping (private: a write copies the page)"),
        ["fork_gap_us"] = ("20", "the forking thread's think time between rounds, emulated µs"),
    };

    public override bool Forks => true;

    public override IReadOnlyList<(string Name, bool DiskBacked)> Files(WorkloadContext ctx) => [("/lib/fork-fault.so", true)];

    private static long Region => SharedArea;
    private static long FileArea => SharedArea + (1L << 36);

    /// <summary>The region, the file's pages and a child's copy of the region at once.</summary>
    public override long PeakBytes(WorkloadContext ctx) => 2 * Long("size_mb") * MiB + Long("file_pages") * ctx.Machine.PageSize;

    public override IEnumerable<Op> OpsFor(WorkloadContext ctx, int task, int cpu)
    {
        long page = ctx.Machine.PageSize;
        long size = Long("size_mb") * MiB;
        long pages = size / page;
        long filePages = Long("file_pages");
        var rng = new Random((int)(ctx.Seed ^ (task * 40503L)));
        if (task == 0)
        {
            yield return Op.MapAnon(Region, size);
            yield return Op.MapFile(FileArea, filePages * page, fileId: 0, shared: false);
        }
        yield return Op.Barrier();
        if (task == 0)
        {
            long gap = Long("fork_gap_us") * 1000;
            while (true)
            {
                yield return Op.ForkExit();
                yield return Op.Scan(Region, size);
                yield return Op.Compute(gap);
            }
        }
        while (true)
        {
            if (rng.Next(4) == 0)
                yield return rng.Next(2) == 0 ? Op.Read(FileArea + rng.NextInt64(filePages) * page) : Op.Write(FileArea + rng.NextInt64(filePages) * page);
            else
                yield return Op.Write(Region + rng.NextInt64(pages) * page);
        }
    }
}
