// Models the translation of a perf trace into per-thread op streams, one record at a time and in trace
// order: MMAP2 lines become mmaps, page-fault lines become accesses (the first fault of a page that faults again
// in the same mapping epoch is a read, since only a read fault leaves a writable page to fault again; any other
// fault is a write unless the mapping is not writable), a fault outside every known mapping becomes heap or stack growth when it looks like one
// and is skipped as `unmapped` otherwise, and trace time between a thread's ops becomes Compute ops.
// Its state is the mapping set plus one timestamp per TID: flat in the length of the trace.
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Workloads;

namespace DistEmu.Replay;

/// <summary>One op for the task of <see cref="Tid"/>.</summary>
/// <param name="Tid">Trace thread that issues it.</param>
/// <param name="Op">The op. For a file mmap, <see cref="Op.FileId"/> indexes <see cref="TracePlanner.FileNames"/>.</param>
/// <param name="Seq">Global trace order of the op (a Compute op carries the Seq of the op it precedes).</param>
/// <param name="PageOffset">File offset in bytes for a file mmap (the MMAP2 <c>@</c> field), else 0.</param>
public readonly record struct PlannedOp(int Tid, Op Op, long Seq, long PageOffset);

/// <summary>A region the trace never mapped but that faults show exists: heap (brk) or stack growth.</summary>
public sealed class InferredRegion
{
    public required string Kind { get; init; }

    public ulong Start { get; internal set; }

    public ulong End { get; internal set; }

    /// <summary>Mmap ops emitted to grow it (one per fault that reached past its edge).</summary>
    public int Extensions { get; internal set; }

    /// <summary>Trace line of the first fault that made it.</summary>
    public long FirstLine { get; init; }
}

/// <summary>Sequential planner: feed it the trace's records in order; it appends the ops each one produces.</summary>
public sealed class TracePlanner
{
    /// <summary>How far above the end of the executable's data segment the brk heap may start (x86-64 randomises brk within 1 GiB).</summary>
    public const ulong MaxHeapGap = 1UL << 30;

    /// <summary>How far past its current end one fault may grow the heap.</summary>
    public const ulong MaxHeapStep = 1UL << 30;

    /// <summary>RLIMIT_STACK's default: the main stack may grow down to this total size.</summary>
    public const ulong MaxStackSize = 8UL << 20;

    private readonly ulong _pageSize;
    private readonly double _timeScale;
    private readonly bool _asFastAsPossible;
    private readonly Dictionary<int, long> _lastTime = new();
    private readonly Dictionary<string, int> _fileIds = new(StringComparer.Ordinal);
    private readonly List<string> _fileNames = new();
    private readonly List<InferredRegion> _inferred = new();
    private long _seq;
    private long _epoch;

    private string? _mainExecutable;
    private ulong _dataEnd;
    private InferredRegion? _heap;
    private ulong _heapStart;
    private ulong _heapEnd;
    private bool _hasStack;
    private ulong _stackLow;
    private ulong _stackHigh;
    private InferredRegion? _stackGrowth;

    public TracePlanner(int pageSize, double timeScale = 1.0, bool asFastAsPossible = false)
    {
        if (pageSize < 1 || (pageSize & (pageSize - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(pageSize), pageSize, "must be a power of two");
        }

        _pageSize = (ulong)pageSize;
        _timeScale = timeScale;
        _asFastAsPossible = asFastAsPossible;
    }

    /// <summary>The mappings known so far (trace + inferred).</summary>
    public MappingSet Mappings { get; } = new();

    /// <summary>Distinct file names of file mappings, indexed by file id.</summary>
    public IReadOnlyList<string> FileNames => _fileNames;

    public IReadOnlyList<InferredRegion> Inferred => _inferred;

    /// <summary>Set on the surveying (first) pass: every planned fault is recorded here by page and mapping epoch.</summary>
    public RepeatedPages? Survey { get; init; }

    /// <summary>Set on the planning pass: the survey of the same trace, which says which faults were reads.</summary>
    public RepeatedPages? Kinds { get; init; }

    public long MmapOps { get; private set; }

    public long InferredMmapOps { get; private set; }

    public long ReadAccesses { get; private set; }

    public long WriteAccesses { get; private set; }

    public long ComputeOps { get; private set; }

    /// <summary>Faults outside every known mapping that are neither heap nor stack growth (skipped).</summary>
    public long Unmapped { get; private set; }

    /// <summary>Faults inside a PROT_NONE mapping (guard pages): SIGSEGV in the kernel, skipped here.</summary>
    public long ProtNone { get; private set; }

    /// <summary>MMAP2 lines of length 0 (skipped).</summary>
    public long EmptyMappings { get; private set; }

    /// <summary>Appends the ops <paramref name="record"/> produces to <paramref name="output"/>.</summary>
    public void Plan(in PerfRecord record, List<PlannedOp> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (record.IsMmap)
        {
            PlanMmap(record.Mmap, output);
        }
        else if (record.IsPageFault)
        {
            PlanFault(record.PageFault, output);
        }
    }

    private void PlanMmap(in PerfMmap m, List<PlannedOp> output)
    {
        ulong start = AlignDown(m.Start);
        ulong end = AlignUp(m.End);
        if (end <= start || m.Length == 0)
        {
            EmptyMappings++;
            return;
        }

        var region = new MappedRegion(start, end, m.Protection, m.Kind, m.Name, m.Kind == PerfMappingKind.File ? AlignDown(m.PageOffset) : 0)
        {
            Epoch = ++_epoch,
        };
        var prot = ToVmFlags(m.Protection);
        Op op;
        long pageOffset = 0;
        if (m.Kind == PerfMappingKind.File)
        {
            if (!_fileIds.TryGetValue(m.Name, out int fileId))
            {
                fileId = _fileNames.Count;
                _fileIds.Add(m.Name, fileId);
                _fileNames.Add(m.Name);
            }

            _mainExecutable ??= m.Name;
            if (m.Name == _mainExecutable && region.IsWritable)
            {
                _dataEnd = Math.Max(_dataEnd, end);
            }

            op = Op.MapFile((long)start, (long)(end - start), fileId, m.IsShared, prot & ~VmFlags.Shared);
            pageOffset = (long)region.PageOffset;
        }
        else
        {
            // MADV_NOHUGEPAGE: every fault the trace recorded is replayed as the fault it was. Had the traced kernel
            // mapped a THP there, the trace would hold one fault for its 2 MiB, and that one is replayed too.
            op = Op.MapAnon((long)start, (long)(end - start), prot | VmFlags.NoHugePage);
        }

        if (m.Kind == PerfMappingKind.Stack)
        {
            _hasStack = true;
            _stackLow = start;
            _stackHigh = end;
            _stackGrowth = null;
        }
        else if (m.Kind == PerfMappingKind.Heap && _heap is null)
        {
            _heapStart = start;
            _heapEnd = end;
        }

        Mappings.Map(region);
        Emit(m.Tid, m.TimeNs, op, pageOffset, output);
        MmapOps++;
    }

    private void PlanFault(in PerfPageFault f, List<PlannedOp> output)
    {
        if (!Mappings.TryFind(f.Address, out var region))
        {
            if (!TryInferHeap(f, output) && !TryInferStack(f, output))
            {
                Unmapped++;
                return;
            }

            Mappings.TryFind(f.Address, out region);
        }

        if (region.IsProtNone)
        {
            ProtNone++;
            return;
        }

        // perf does not record the fault's kind. A page that faults again later in the same epoch was read first: the
        // read fault mapped it read-only (the zero page, or the page-cache folio of a private file mapping) and the write
        // faulted again in do_wp_page. Any other fault is a write unless the mapping cannot be written.
        ulong page = f.Address / _pageSize;
        Survey?.Observe(page, region.Epoch);
        bool readFirst = Kinds?.TakeFirst(page, region.Epoch) ?? false;
        if (region.IsWritable && !readFirst)
        {
            WriteAccesses++;
            Emit(f.Tid, f.TimeNs, Op.Write((long)f.Address), 0, output);
        }
        else
        {
            ReadAccesses++;
            Emit(f.Tid, f.TimeNs, Op.Read((long)f.Address), 0, output);
        }
    }

    /// <summary>brk growth: the fault lies above the heap (or the executable's data segment) with nothing mapped in between.</summary>
    private bool TryInferHeap(in PerfPageFault f, List<PlannedOp> output)
    {
        if (_mainExecutable is null || _dataEnd == 0)
        {
            return false;
        }

        if (_heap is null && _heapEnd == 0)
        {
            // The initial heap, if the trace shows it: the lowest writable anonymous mapping just above the data segment.
            if (Mappings.TryFindFirstAtOrAbove(_dataEnd, out var next)
                && next.Start - _dataEnd <= MaxHeapGap
                && next.IsWritable
                && (next.Kind == PerfMappingKind.Heap || next.Kind == PerfMappingKind.Anon)
                && f.Address >= next.Start)
            {
                _heapStart = next.Start;
                _heapEnd = next.End;
                while (Mappings.TryFindFirstAtOrAbove(_heapEnd, out var adjacent) && adjacent.Start == _heapEnd && adjacent.IsWritable
                       && adjacent.Kind is PerfMappingKind.Heap or PerfMappingKind.Anon)
                {
                    _heapEnd = adjacent.End;
                }
            }
            else
            {
                _heapStart = _dataEnd;
                _heapEnd = _dataEnd;
            }
        }

        if (f.Address < _heapEnd || f.Address - _heapEnd >= MaxHeapStep)
        {
            return false;
        }

        ulong newEnd = AlignUp(f.Address + 1);
        if (newEnd <= _heapEnd || Mappings.Overlaps(_heapEnd, newEnd))
        {
            return false;
        }

        if (_heap is null)
        {
            _heap = new InferredRegion { Kind = "heap", Start = _heapEnd, End = newEnd, FirstLine = f.LineNumber };
            _inferred.Add(_heap);
        }

        ulong from = _heapEnd;
        _heap.End = newEnd;
        _heap.Extensions++;
        _heapEnd = newEnd;
        MapInferred(f, from, newEnd, PerfMappingKind.Heap, "[heap]", output);
        return true;
    }

    /// <summary>Stack growth: the fault lies below the [stack] mapping, within RLIMIT_STACK of its top, nothing mapped in between.</summary>
    private bool TryInferStack(in PerfPageFault f, List<PlannedOp> output)
    {
        if (!_hasStack || f.Address >= _stackLow)
        {
            return false;
        }

        ulong page = AlignDown(f.Address);
        if (_stackHigh - page > MaxStackSize || Mappings.Overlaps(page, _stackLow))
        {
            return false;
        }

        if (_stackGrowth is null)
        {
            _stackGrowth = new InferredRegion { Kind = "stack", Start = page, End = _stackLow, FirstLine = f.LineNumber };
            _inferred.Add(_stackGrowth);
        }

        ulong to = _stackLow;
        _stackGrowth.Start = page;
        _stackGrowth.Extensions++;
        _stackLow = page;
        MapInferred(f, page, to, PerfMappingKind.Stack, "[stack]", output);
        return true;
    }

    private void MapInferred(in PerfPageFault f, ulong start, ulong end, PerfMappingKind kind, string name, List<PlannedOp> output)
    {
        const PerfProtection rw = PerfProtection.Read | PerfProtection.Write;
        Mappings.Map(new MappedRegion(start, end, rw, kind, name, 0) { Epoch = ++_epoch });
        Emit(f.Tid, f.TimeNs, Op.MapAnon((long)start, (long)(end - start), VmFlags.Read | VmFlags.Write | VmFlags.NoHugePage), 0, output);
        InferredMmapOps++;
    }

    private void Emit(int tid, long timeNs, Op op, long pageOffset, List<PlannedOp> output)
    {
        long seq = _seq++;
        if (_lastTime.TryGetValue(tid, out long last))
        {
            long delta = timeNs - last;
            if (!_asFastAsPossible && delta > 0)
            {
                long ns = (long)Math.Min(delta * _timeScale, long.MaxValue / 4);
                if (ns > 0)
                {
                    output.Add(new PlannedOp(tid, Op.Compute(ns), seq, 0));
                    ComputeOps++;
                }
            }

            if (timeNs > last)
            {
                _lastTime[tid] = timeNs;
            }
        }
        else
        {
            _lastTime[tid] = timeNs;
        }

        output.Add(new PlannedOp(tid, op, seq, pageOffset));
    }

    private static VmFlags ToVmFlags(PerfProtection p) =>
        ((p & PerfProtection.Read) != 0 ? VmFlags.Read : 0)
        | ((p & PerfProtection.Write) != 0 ? VmFlags.Write : 0)
        | ((p & PerfProtection.Exec) != 0 ? VmFlags.Exec : 0)
        | ((p & PerfProtection.Shared) != 0 ? VmFlags.Shared : 0);

    private ulong AlignDown(ulong a) => a & ~(_pageSize - 1);

    private ulong AlignUp(ulong a) => a > ulong.MaxValue - (_pageSize - 1) ? ulong.MaxValue & ~(_pageSize - 1) : (a + _pageSize - 1) & ~(_pageSize - 1);
}
