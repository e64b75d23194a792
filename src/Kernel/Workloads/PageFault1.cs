namespace DistEmu.Kernel.Workloads;

/// <summary>
/// will-it-scale page_fault1: each task maps <c>size_mb</c> of private anonymous memory, writes one byte per page,
/// unmaps it, and repeats. Every write is a first touch: one fault per page, all on the VMA path after the first.
/// THP is off by default (MADV_NOHUGEPAGE): the workload measures the 4 KiB anonymous fault path, which is what the
/// published page_fault1/pft numbers of PROTOCOL.md §9 count and what the cost model is calibrated on. With thp=on (or
/// inherit on a THP=always machine) each 2 MiB takes one fault (do_huge_pmd_anonymous_page), as on such a kernel.
/// </summary>
public sealed class PageFault1 : Workload
{
    public override string Name => "page-fault1";
    public override string Description => "per task: mmap anon size_mb, write every page, munmap, repeat (will-it-scale page_fault1)";
    public override IReadOnlyDictionary<string, (string, string)> Parameters { get; } = new Dictionary<string, (string, string)>
    {
        ["size_mb"] = ("128", "size of each mapping in MiB"),
        [ThpParam] = ("off", ThpHelp),
    };

    public override long PeakBytes(WorkloadContext ctx) => ctx.Tasks * Long("size_mb", 1, 1 << 20) * MiB;

    public override IEnumerable<Op> OpsFor(WorkloadContext ctx, int task, int cpu)
    {
        long size = Long("size_mb", 1, 1 << 20) * MiB;
        long page = ctx.Machine.PageSize;
        long a = TaskArea(task);
        var prot = Mm.VmFlags.Read | Mm.VmFlags.Write | ThpHint();
        while (true)
        {
            yield return Op.MapAnon(a, size, prot);
            for (long off = 0; off < size; off += page)
                yield return Op.Write(a + off);
            yield return Op.Unmap(a, size);
        }
    }
}
