// Models the two user-space records a `perf script --show-mmap-events -F tid,time,addr,event` trace
// carries for the memory-management protocol: a mapping appearing (PERF_RECORD_MMAP / MMAP2) and a
// page fault at an address. Both are small value types so the reader can hand them out per line
// without allocating.
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

public enum PerfRecordKind : byte
{
    None = 0,
    Mmap = 1,
    PageFault = 2,
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

    public PerfRecordKind Kind { get; }

    /// <summary>The mapping when <see cref="Kind"/> is <see cref="PerfRecordKind.Mmap"/>, else default.</summary>
    public PerfMmap Mmap { get; }

    /// <summary>The fault when <see cref="Kind"/> is <see cref="PerfRecordKind.PageFault"/>, else default.</summary>
    public PerfPageFault PageFault { get; }

    public bool IsMmap => Kind == PerfRecordKind.Mmap;

    public bool IsPageFault => Kind == PerfRecordKind.PageFault;

    public long LineNumber => Kind == PerfRecordKind.Mmap ? Mmap.LineNumber : PageFault.LineNumber;

    public long TimeNs => Kind == PerfRecordKind.Mmap ? Mmap.TimeNs : PageFault.TimeNs;

    public int Tid => Kind == PerfRecordKind.Mmap ? Mmap.Tid : PageFault.Tid;

    public override string ToString() => Kind switch
    {
        PerfRecordKind.Mmap => Mmap.ToString(),
        PerfRecordKind.PageFault => PageFault.ToString(),
        _ => "PerfRecord { None }",
    };
}
