namespace DistEmu.Kernel.Workloads;

/// <summary>
/// will-it-scale page_fault3: each task maps its own tmpfs file MAP_SHARED (<c>size_mb</c>), writes one byte per
/// page, unmaps, repeats. The first round allocates page-cache pages; later rounds find them cached. With
/// <c>disk=1</c> the files are on a disk instead: the first round reads them in (major faults that drop the fault lock
/// for the read and read ahead, mm/filemap.c filemap_fault), while the other tasks' munmaps take mmap_lock for write.
/// </summary>
public sealed class PageFault3 : Workload
{
    public override string Name => "page-fault3";
    public override string Description => "per task: mmap a shared tmpfs file of size_mb, write every page, munmap, repeat (will-it-scale page_fault3)";
    public override IReadOnlyDictionary<string, (string, string)> Parameters { get; } = new Dictionary<string, (string, string)>
    {
        ["size_mb"] = ("128", "size of each mapping in MiB"),
        ["disk"] = ("0", "1: the files are disk-backed (read in by major faults, with read-ahead); 0: tmpfs, as in will-it-scale"),
    };

    protected override void Validate(string key)
    {
        if (key == "disk") Long(key, 0, 1);
        else base.Validate(key);
    }

    public override IReadOnlyList<(string Name, bool DiskBacked)> Files(WorkloadContext ctx) =>
        Long("disk", 0, 1) == 1
            ? Enumerable.Range(0, ctx.Tasks).Select(i => ($"/data/willitscale.{i}", true)).ToList()
            : Enumerable.Range(0, ctx.Tasks).Select(i => ($"/tmp/willitscale.{i}", false)).ToList();

    public override long PeakBytes(WorkloadContext ctx) => ctx.Tasks * Long("size_mb", 1, 1 << 20) * MiB;

    public override IEnumerable<Op> OpsFor(WorkloadContext ctx, int task, int cpu)
    {
        long size = Long("size_mb", 1, 1 << 20) * MiB;
        long page = ctx.Machine.PageSize;
        long a = TaskArea(task);
        while (true)
        {
            yield return Op.MapFile(a, size, fileId: task, shared: true);
            for (long off = 0; off < size; off += page)
                yield return Op.Write(a + off);
            yield return Op.Unmap(a, size);
        }
    }
}
