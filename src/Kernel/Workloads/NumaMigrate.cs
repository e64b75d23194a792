namespace DistEmu.Kernel.Workloads;

/// <summary>
/// Tasks touching memory placed on other nodes while NUMA balancing migrates it. Each task first-touches its own
/// <c>size_mb</c> region (so its frames sit on its node), then, after a barrier, touches random pages of the region
/// of a task on another node, running the NUMA scanner over it every <c>scan_every</c> touches: hinting faults move
/// pages to the toucher's node while others touching them wait on migration entries. With THP (the default on a
/// THP=always machine) a hinting fault moves a whole 2 MiB THP (do_huge_pmd_numa_page).
/// </summary>
public sealed class NumaMigrate : Workload
{
    public override string Name => "numa-migrate";
    public override string Description => "tasks touch a remote task's size_mb region while NUMA balancing (scan every scan_every touches) migrates it";
    public override IReadOnlyDictionary<string, (string, string)> Parameters { get; } = new Dictionary<string, (string, string)>
    {
        ["size_mb"] = ("4", "each task's region in MiB"),
        ["scan_every"] = ("256", "touches between NUMA scans"),
        [ThpParam] = ("inherit", ThpHelp),
    };

    public override long PeakBytes(WorkloadContext ctx) => ctx.Tasks * Long("size_mb") * MiB;

    public override IEnumerable<Op> OpsFor(WorkloadContext ctx, int task, int cpu)
    {
        long page = ctx.Machine.PageSize;
        long size = Long("size_mb") * MiB;
        long scanEvery = Long("scan_every");
        long own = SharedArea + task * size * 2;
        yield return Op.MapAnon(own, size, Mm.VmFlags.Read | Mm.VmFlags.Write | ThpHint());
        for (long off = 0; off < size; off += page)
            yield return Op.Write(own + off);
        yield return Op.Barrier();
        int target = (task + 1) % ctx.Tasks; // tasks are spread round-robin over nodes: the next one is on another node
        long remote = SharedArea + target * size * 2;
        var rng = new Random((int)(ctx.Seed ^ (task * 104729)));
        long pages = size / page;
        for (long n = 0; ; n++)
        {
            if (n % scanEvery == 0)
                yield return Op.Scan(remote, size);
            long addr = remote + rng.NextInt64(pages) * page;
            yield return rng.Next(4) == 0 ? Op.Write(addr) : Op.Read(addr);
        }
    }
}
