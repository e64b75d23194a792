using DistEmu.Kernel.Mm;

namespace DistEmu.Kernel.Workloads;

/// <summary>
/// Faulting tasks while others mmap, mprotect and munmap: every <c>writer_every</c>-th task is a writer that churns
/// small mappings in its own area (each a mmap_lock write section); the rest fault like page_fault1 on
/// <c>size_mb</c> mappings. Under mmap-only every writer stalls every faulter; with VMA locks they do not meet.
/// </summary>
public sealed class MmapChurn : Workload
{
    public override string Name => "mmap-churn";
    public override string Description => "faulting tasks (page_fault1 on size_mb) while every writer_every-th task mmaps/mprotects/munmaps chunk_kb regions";
    public override IReadOnlyDictionary<string, (string, string)> Parameters { get; } = new Dictionary<string, (string, string)>
    {
        ["size_mb"] = ("8", "faulters' mapping size in MiB"),
        ["chunk_kb"] = ("256", "writers' mapping size in KiB"),
        ["writer_every"] = ("4", "every n-th task is a writer"),
    };

    public override long PeakBytes(WorkloadContext ctx) => ctx.Tasks * Math.Max(Long("size_mb") * MiB, Long("chunk_kb") * 1024);

    public override IEnumerable<Op> OpsFor(WorkloadContext ctx, int task, int cpu)
    {
        long page = ctx.Machine.PageSize;
        long a = TaskArea(task);
        if (task % Long("writer_every") == Long("writer_every") - 1)
        {
            long chunk = Math.Max(page, Long("chunk_kb") * 1024 / page * page);
            var rng = new Random((int)(ctx.Seed ^ (task * 7919)));
            while (true)
            {
                long slot = a + rng.Next(64) * chunk * 2;
                yield return Op.MapAnon(slot, chunk);
                yield return Op.Write(slot);
                yield return Op.Protect(slot, chunk / 2 / page * page + page, VmFlags.Read);
                yield return Op.Read(slot + chunk - page);
                yield return Op.Unmap(slot, chunk);
            }
        }
        long size = Long("size_mb") * MiB;
        while (true)
        {
            yield return Op.MapAnon(a, size);
            for (long off = 0; off < size; off += page)
                yield return Op.Write(a + off);
            yield return Op.Unmap(a, size);
        }
    }
}
