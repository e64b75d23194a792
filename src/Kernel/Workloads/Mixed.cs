using DistEmu.Kernel.Mm;

namespace DistEmu.Kernel.Workloads;

/// <summary>
/// Everything at once, for schedule exploration: faults on a shared region and on private mappings, mmap / munmap /
/// mprotect of private and shared slices, move_pages, NUMA scans and MADV_PAGEOUT (swap-in faults follow), and
/// a tmpfs file mapped shared and private. Each task draws its next op from a seeded mix.
/// </summary>
public sealed class Mixed : Workload
{
    public override string Name => "mixed";
    public override string Description => "random mix of faults, mmap/munmap/mprotect, migration, NUMA scans, pageout and file mappings";
    public override IReadOnlyDictionary<string, (string, string)> Parameters { get; } = new Dictionary<string, (string, string)>
    {
        ["shared_pages"] = ("256", "pages of the shared anonymous region"),
        ["private_pages"] = ("64", "pages of each task's private mappings"),
        ["file_pages"] = ("32", "pages of the shared disk-file mapping (more than the 32-page read-ahead window: several major faults)"),
    };

    public override IReadOnlyList<(string Name, bool DiskBacked)> Files(WorkloadContext ctx) => [("/data/mixed.dat", true)];

    private static long Shared => SharedArea;
    private static long FileArea => SharedArea + (1L << 36);

    public override IEnumerable<Op> OpsFor(WorkloadContext ctx, int task, int cpu)
    {
        long page = ctx.Machine.PageSize;
        long sp = Long("shared_pages", 16);
        long pp = Long("private_pages", 4);
        int fp = (int)Long("file_pages", 1, 1 << 20);
        var rng = new Random((int)(ctx.Seed ^ (task * 2654435761L)));
        if (task == 0)
        {
            yield return Op.MapAnon(Shared, sp * page);
            yield return Op.MapFile(FileArea, fp * page, fileId: 0, shared: true);
            for (long p = 0; p < sp; p += 2)
                yield return Op.Write(Shared + p * page);
        }
        yield return Op.Barrier();
        long mine = TaskArea(task);
        bool mapped = false;
        int nodes = ctx.Machine.Nodes;
        while (true)
        {
            int dice = rng.Next(100);
            long sh = Shared + rng.NextInt64(sp) * page;
            if (dice < 45)
                yield return rng.Next(3) == 0 ? Op.Read(sh) : Op.Write(sh);
            else if (dice < 55)
                yield return Op.Write(FileArea + rng.Next(fp) * page);
            else if (dice < 65)
            {
                if (!mapped)
                {
                    yield return Op.MapAnon(mine, pp * page);
                    mapped = true;
                }
                yield return Op.Write(mine + rng.NextInt64(pp) * page);
            }
            else if (dice < 70)
            {
                yield return Op.Unmap(mine, pp * page);
                mapped = false;
            }
            else if (dice < 75)
                yield return Op.Protect(mine + rng.NextInt64(pp / 2) * page, pp / 2 * page, rng.Next(2) == 0 ? VmFlags.Read : VmFlags.Read | VmFlags.Write);
            else if (dice < 83)
                yield return Op.MigrateTo(sh, 4 * page, rng.Next(nodes));
            else if (dice < 87)
                yield return Op.Scan(Shared, sp * page);
            else if (dice < 90)
                yield return Op.Pageout(sh, 2 * page);
            else if (dice < 91)
            {
                // munmap + remap the whole shared region: its page-table page is freed (free_pgtables)
                yield return Op.Unmap(Shared, sp * page);
                yield return Op.MapAnon(Shared, sp * page);
            }
            else if (dice < 94)
            {
                // munmap + remap a slice of the shared region (the same VMA others fault and migrate in)
                long off = rng.NextInt64(sp - 4) * page;
                yield return Op.Unmap(Shared + off, 4 * page);
                yield return Op.MapAnon(Shared + off, 4 * page);
            }
            else if (dice < 97)
                yield return Op.MapFile(mine + (1L << 30), 8 * page, fileId: 0, shared: false);
            else
                yield return Op.Write(mine + (1L << 30) + rng.Next(8) * page);
        }
    }
}
