using DistEmu.Kernel.Mm;

namespace DistEmu.Kernel.Workloads;

public enum OpKind : byte
{
    /// <summary>A load at Addr.</summary>
    Read,
    /// <summary>A store at Addr.</summary>
    Write,
    /// <summary>mmap(Addr, Length, Prot) — anonymous, or file FileId (MAP_SHARED if Prot has Shared).</summary>
    Mmap,
    Munmap,
    Mprotect,
    /// <summary>move_pages of [Addr, Addr+Length) to Node.</summary>
    Migrate,
    /// <summary>NUMA balancing's scan (task_numa_work) over [Addr, Addr+Length).</summary>
    NumaScan,
    /// <summary>madvise(MADV_PAGEOUT) over [Addr, Addr+Length).</summary>
    PageOut,
    /// <summary>Compute for Ns without touching memory.</summary>
    Compute,
    /// <summary>Wait until every task of the workload has arrived (pthread_barrier_wait).</summary>
    Barrier,
    /// <summary>
    /// fork(): dup_mmap of the task's mm. In a workload the child exits at once (its exit_mmap follows); in a trace
    /// replay the child is the task of a TID of its own.
    /// </summary>
    Fork,
    /// <summary>execve() in a trace replay: the task's process gets a new, empty mm (exec_mmap) and the old one goes.</summary>
    Exec,
}

/// <summary>One step of a task's op stream: workloads are data, so the same stream runs under either engine.</summary>
public readonly record struct Op(OpKind Kind, long Addr = 0, long Length = 0, VmFlags Prot = VmFlags.None, int Node = -1, int FileId = -1, long Ns = 0)
{
    public static Op Read(long addr) => new(OpKind.Read, addr);
    public static Op Write(long addr) => new(OpKind.Write, addr);
    public static Op MapAnon(long addr, long len, VmFlags prot = VmFlags.Read | VmFlags.Write) => new(OpKind.Mmap, addr, len, prot);
    public static Op MapFile(long addr, long len, int fileId, bool shared, VmFlags prot = VmFlags.Read | VmFlags.Write) =>
        new(OpKind.Mmap, addr, len, prot | (shared ? VmFlags.Shared : 0), FileId: fileId);
    public static Op Unmap(long addr, long len) => new(OpKind.Munmap, addr, len);
    public static Op Protect(long addr, long len, VmFlags prot) => new(OpKind.Mprotect, addr, len, prot);
    public static Op MigrateTo(long addr, long len, int node) => new(OpKind.Migrate, addr, len, Node: node);
    public static Op Scan(long addr, long len) => new(OpKind.NumaScan, addr, len);
    public static Op Pageout(long addr, long len) => new(OpKind.PageOut, addr, len);
    public static Op Compute(long ns) => new(OpKind.Compute, Ns: ns);
    public static Op Barrier() => new(OpKind.Barrier);
    public static Op ForkExit() => new(OpKind.Fork);
}
