namespace DistEmu.Kernel.Workloads;

/// <summary>
/// The LKML case ("mm: drop VMA lock before waiting for migration", June 2023): faulting tasks touch pages of a
/// shared region A while migrator tasks move A back and forth between nodes (faults meet migration entries), and
/// writer tasks munmap/mmap another VMA B (each its own) — and the first writer (task 3), every <c>same_vma_every</c>-th round, A itself
/// (then maps it again). Roles by task index mod 4: 0 and 1 fault, 2 migrates, 3 writes (with fewer than 4 tasks, the
/// roles present).
/// The LKML claim is about writers of other ranges: under mmap-only they queue behind a fault sleeping on migration,
/// under merged they do not. A munmap of A itself waits for that fault under every policy (vma_start_write waits for its
/// VMA readers, holding mmap_lock for write, so every writer and fallback queues behind it), so the default makes it rare
/// (one writer, one round in 128: under 1 % of writer waits, so p99 measures the claim on any preset). Schedule exploration
/// of the June 2023 proposals' page-table use-after-free (S8) needs A unmapped often: under exploration the default is 4.
/// With THP (thp=inherit on a THP=always machine, the default, or thp=on) A is mapped by THPs: a migrate op on any
/// chunk of one moves the whole 2 MiB folio, and a fault meeting it waits for the 2 MiB copy (pmd_migration_entry_wait).
/// </summary>
public sealed class MigrateMunmap : Workload
{
    public override string Name => "migrate-munmap";
    public override string Description => "faults on region A under migration while writers munmap another VMA B and, every same_vma_every-th round, A itself";
    public override IReadOnlyDictionary<string, (string, string)> Parameters { get; } = new Dictionary<string, (string, string)>
    {
        ["size_mb"] = ("4", "region A in MiB"),
        ["chunk_pages"] = ("16", "pages moved per migrate op"),
        ["same_vma_every"] = ("128", "every n-th round of the first writer unmaps and remaps A instead of B (4 under schedule exploration)"),
        [ThpParam] = ("inherit", ThpHelp),
    };

    /// <summary>Race hunting unmaps A often: S8's window (a munmap freeing A's page table under a migration wait).</summary>
    public override IReadOnlyDictionary<string, string> ExplorationDefaults { get; } = new Dictionary<string, string> { ["same_vma_every"] = "4" };

    private static long RegionA => SharedArea;

    /// <summary>Writer <paramref name="task"/>'s own VMA B: 1 GiB apart, so writers never unmap each other's (nor merge).</summary>
    private static long RegionB(int task) => SharedArea + (1L << 36) + (task / 4) * (1L << 30);

    public override long PeakBytes(WorkloadContext ctx) => 2 * Long("size_mb") * MiB;

    public override IEnumerable<Op> OpsFor(WorkloadContext ctx, int task, int cpu)
    {
        long page = ctx.Machine.PageSize;
        long size = Long("size_mb") * MiB;
        long pages = size / page;
        long chunk = Math.Min(pages, Long("chunk_pages")) * page;
        var rng = new Random((int)(ctx.Seed ^ (task * 15485863)));
        var prot = Mm.VmFlags.Read | Mm.VmFlags.Write | ThpHint();
        if (task == 0)
        {
            yield return Op.MapAnon(RegionA, size, prot);
            for (long off = 0; off < size; off += page)
                yield return Op.Write(RegionA + off);
        }
        yield return Op.Barrier();
        int role = task % 4;
        int nodes = ctx.Machine.Nodes;
        if (role == 2)
        {
            for (int round = 0; ; round++)
            {
                long off = rng.NextInt64(pages - chunk / page + 1) * page;
                yield return Op.MigrateTo(RegionA + off, chunk, (ctx.Machine.NodeOfCpu(cpu) + 1 + round) % nodes);
            }
        }
        if (role == 3)
        {
            long every = Long("same_vma_every");
            long bsize = 64 * page;
            bool remapsA = task == 3;
            for (long round = 1; ; round++)
            {
                if (remapsA && round % every == 0)
                {
                    // The same VMA: unmap all of A (its page tables are freed) and map it again.
                    yield return Op.Unmap(RegionA, size);
                    yield return Op.MapAnon(RegionA, size, prot);
                }
                else
                {
                    yield return Op.MapAnon(RegionB(task), bsize, prot);
                    yield return Op.Write(RegionB(task));
                    yield return Op.Unmap(RegionB(task), bsize);
                }
            }
        }
        while (true)
        {
            long addr = RegionA + rng.NextInt64(pages) * page;
            yield return rng.Next(2) == 0 ? Op.Write(addr) : Op.Read(addr);
        }
    }
}
