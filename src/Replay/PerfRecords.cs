// Models the user-space records a `perf script --show-mmap-events --show-task-events -F tid,time,addr,event`
// trace carries for the memory-management protocol: a mapping appearing (PERF_RECORD_MMAP / MMAP2), a page
// fault at an address, and the task events that make and replace address spaces (PERF_RECORD_FORK of a new
// process, PERF_RECORD_COMM exec, PERF_RECORD_EXIT). All are small value types so the reader can hand them
// out per line without allocating.
namespace DistEmu.Replay;

/// <summary>Protection and sharing of a mapping, from the <c>rwxp</c>/<c>rwxs</c> field of an MMAP2 line.</summary>
[Flags]
public enum PerfProtection : byte
{
    None = 0,
    Read = 1,
    Write = 2,
    Exec = 4,

    /// <summary>MAP_SHARED (<c>s</c>); absent means MAP_PRIVATE (<c>p</c>).</summary>
    Shared = 8,
}

/// <summary>What backs a mapping, derived from its name.</summary>
public enum PerfMappingKind : byte
{
    /// <summary>A path (or any other non-bracketed name): file-backed memory.</summary>
    File = 0,

    /// <summary><c>//anon</c>, or a named anonymous region such as <c>[anon:name]</c>.</summary>
    Anon = 1,

    /// <summary><c>[stack]</c> (or the old per-thread <c>[stack:TID]</c>).</summary>
    Stack = 2,

    /// <summary><c>[heap]</c>.</summary>
    Heap = 3,

    /// <summary><c>[vdso]</c>, <c>[vvar]</c>, <c>[vvar_vclock]</c> and other bracketed kernel-provided names.</summary>
    Special = 4,
}

/// <summary>
/// One user mapping (a PERF_RECORD_MMAP2 line, or an old-style PERF_RECORD_MMAP line, whose protection
/// field only says <c>x</c> (executable) or <c>r</c> (data): those map to Read|Exec and Read, private).
/// </summary>
/// <param name="LineNumber">1-based line number in the trace.</param>
/// <param name="Tid">Thread id from the record's <c>pid/tid</c> field.</param>
/// <param name="Pid">Process id from the record's <c>pid/tid</c> field.</param>
/// <param name="TimeNs">Timestamp in nanoseconds (exact decimal conversion of the <c>seconds.fraction</c> field).</param>
/// <param name="Start">First address of the mapping.</param>
/// <param name="Length">Length in bytes.</param>
/// <param name="PageOffset">The <c>@</c> field: file offset for file mappings (perf prints the address for anonymous ones).</param>
/// <param name="Protection">Read/write/exec flags and shared vs private.</param>
/// <param name="Kind">What backs the mapping, derived from <paramref name="Name"/>.</param>
/// <param name="Name">The mapping's name exactly as printed (<c>//anon</c>, <c>[stack]</c>, a path...).</param>
public readonly record struct PerfMmap(
    long LineNumber,
    int Tid,
    int Pid,
    long TimeNs,
    ulong Start,
    ulong Length,
    ulong PageOffset,
    PerfProtection Protection,
    PerfMappingKind Kind,
    string Name)
{
    /// <summary>One past the last address (Start + Length, saturating).</summary>
    public ulong End => ulong.MaxValue - Start < Length ? ulong.MaxValue : Start + Length;

    public bool IsShared => (Protection & PerfProtection.Shared) != 0;

    public bool Contains(ulong address) => address >= Start && address < End;
}

/// <summary>One user page fault (a <c>page-faults:</c> sample line).</summary>
/// <param name="LineNumber">1-based line number in the trace.</param>
/// <param name="Tid">Faulting thread id.</param>
/// <param name="TimeNs">Timestamp in nanoseconds.</param>
/// <param name="Address">Faulting data address.</param>
public readonly record struct PerfPageFault(long LineNumber, int Tid, long TimeNs, ulong Address);

/// <summary>What a task event did to its process.</summary>
public enum PerfTaskEventKind : byte
{
    /// <summary>PERF_RECORD_FORK: a new thread (same pid) or a new process (kernel_clone without CLONE_VM: dup_mmap).</summary>
    Fork = 0,

    /// <summary>PERF_RECORD_COMM with <c>exec</c>: the process replaced its address space (exec_mmap).</summary>
    Exec = 1,

    /// <summary>PERF_RECORD_EXIT: the thread exited (the process's mm goes with its last thread: exit_mmap).</summary>
    Exit = 2,
}

/// <summary>
/// A task event line: <c>PERF_RECORD_FORK(cpid:ctid):(ppid:ptid)</c>, <c>PERF_RECORD_COMM exec: NAME:pid/tid</c> or
/// <c>PERF_RECORD_EXIT(pid:tid):(ppid:ptid)</c>.
/// </summary>
/// <param name="Tid">The thread the line is about: the parent (fork), the exec'ing thread, the exiting thread.</param>
/// <param name="Pid">Its process.</param>
/// <param name="ChildPid">Fork only: the new task's process (equal to <paramref name="Pid"/> for a new thread).</param>
/// <param name="ChildTid">Fork only: the new task.</param>
public readonly record struct PerfTaskEvent(long LineNumber, PerfTaskEventKind Kind, int Tid, int Pid, long TimeNs, int ChildPid = 0, int ChildTid = 0)
{
    /// <summary>A fork that made a process, not a thread: the child has an address space of its own.</summary>
    public bool IsProcessFork => Kind == PerfTaskEventKind.Fork && ChildPid != Pid;
}

public enum PerfRecordKind : byte
{
    None = 0,
    Mmap = 1,
    PageFault = 2,
    Task = 3,
}

/// <summary>
/// Either a <see cref="PerfMmap"/> or a <see cref="PerfPageFault"/>, as yielded by
/// <see cref="PerfScriptReader"/>. The payload that does not match <see cref="Kind"/> is <c>default</c>.
/// </summary>
public readonly record struct PerfRecord
{
    public PerfRecord(PerfMmap mmap)
    {
        Kind = PerfRecordKind.Mmap;
        Mmap = mmap;
    }

    public PerfRecord(PerfPageFault pageFault)
    {
        Kind = PerfRecordKind.PageFault;
        PageFault = pageFault;
    }

    public PerfRecord(PerfTaskEvent task)
    {
        Kind = PerfRecordKind.Task;
        Task = task;
    }

    public PerfRecordKind Kind { get; }

    /// <summary>The task event when <see cref="Kind"/> is <see cref="PerfRecordKind.Task"/>, else default.</summary>
    public PerfTaskEvent Task { get; }

    public bool IsTask => Kind == PerfRecordKind.Task;

    /// <summary>The mapping when <see cref="Kind"/> is <see cref="PerfRecordKind.Mmap"/>, else default.</summary>
    public PerfMmap Mmap { get; }

    /// <summary>The fault when <see cref="Kind"/> is <see cref="PerfRecordKind.PageFault"/>, else default.</summary>
    public PerfPageFault PageFault { get; }

    public bool IsMmap => Kind == PerfRecordKind.Mmap;

    public bool IsPageFault => Kind == PerfRecordKind.PageFault;

    public long LineNumber => Kind switch { PerfRecordKind.Mmap => Mmap.LineNumber, PerfRecordKind.Task => Task.LineNumber, _ => PageFault.LineNumber };

    public long TimeNs => Kind switch { PerfRecordKind.Mmap => Mmap.TimeNs, PerfRecordKind.Task => Task.TimeNs, _ => PageFault.TimeNs };

    public int Tid => Kind switch { PerfRecordKind.Mmap => Mmap.Tid, PerfRecordKind.Task => Task.Tid, _ => PageFault.Tid };

    public override string ToString() => Kind switch
    {
        PerfRecordKind.Mmap => Mmap.ToString(),
        PerfRecordKind.PageFault => PageFault.ToString(),
        PerfRecordKind.Task => Task.ToString(),
        _ => "PerfRecord { None }",
    };
}
