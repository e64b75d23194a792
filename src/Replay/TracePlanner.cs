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
/// <param name="Child">For a <see cref="OpKind.Fork"/>: the TID of the new process's task.</param>
public readonly record struct PlannedOp(int Tid, Op Op, long Seq, long PageOffset, int Child = 0)
{
    /// <summary>Ops every other task of the process must not overtake in trace order: they change its address space.</summary>
    public bool IsFence => Op.Kind is OpKind.Mmap or OpKind.Fork or OpKind.Exec;
}

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

    /// <summary>Each TID's process (a TID never seen in a fork is the first process's); exec replaces a process's view.</summary>
    private readonly Dictionary<int, ProcessSlot> _processOf = new();
    private readonly ProcessSlot _root = new();

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

    /// <summary>The mappings known so far (trace + inferred) of the first process (the only one unless <see cref="Processes"/>).</summary>
    public MappingSet Mappings => _root.View.Mappings;

    /// <summary>
    /// Task events make processes: a PERF_RECORD_FORK of a new process gives its TID a copy of the parent's address
    /// space (a <see cref="OpKind.Fork"/> op on the parent's TID, <see cref="PlannedOp.Child"/> the new TID), and
    /// PERF_RECORD_COMM exec gives the process a new, empty one (an <see cref="OpKind.Exec"/> op). Off: every TID is a
    /// thread of one process and task events are ignored (the orleans engine, which has no fork path, and shared mms).
    /// </summary>
    public bool Processes { get; init; }

    /// <summary>Process forks planned (PERF_RECORD_FORK of a new process).</summary>
    public long ForkOps { get; private set; }

    /// <summary>Execs planned (PERF_RECORD_COMM exec).</summary>
    public long ExecOps { get; private set; }

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
        else if (record.IsTask && Processes)
        {
            PlanTask(record.Task, output);
        }
    }

    private ProcessSlot SlotOf(int tid) => _processOf.TryGetValue(tid, out var p) ? p : _root;

    private PlannedProcess ProcessOf(int tid) => SlotOf(tid).View;

    /// <summary>
    /// kernel_clone: a thread joins its parent's process; a new process gets a copy of the parent's mappings (dup_mmap),
    /// each side's regions in a new mapping epoch, since fork write-protects the private pages of both and the next
    /// write on either side faults again (do_wp_page). exec_mmap: the process starts over with no mapping.
    /// </summary>
    private void PlanTask(in PerfTaskEvent e, List<PlannedOp> output)
    {
        var parent = SlotOf(e.Tid);
        switch (e.Kind)
        {
            case PerfTaskEventKind.Fork when !e.IsProcessFork:
                _processOf[e.ChildTid] = parent;
                break;
            case PerfTaskEventKind.Fork:
                _processOf[e.ChildTid] = new ProcessSlot { View = parent.View.Fork(() => ++_epoch) };
                Emit(e.Tid, e.TimeNs, new Op(OpKind.Fork), 0, output, e.ChildTid);
                ForkOps++;
                break;
            case PerfTaskEventKind.Exec:
                parent.View = new PlannedProcess(); // for every thread of the process (de_thread has ended the others)
                Emit(e.Tid, e.TimeNs, new Op(OpKind.Exec), 0, output);
                ExecOps++;
                break;
        }
    }

    private void PlanMmap(in PerfMmap m, List<PlannedOp> output)
    {
        var p = ProcessOf(m.Tid);
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

            p.MainExecutable ??= m.Name;
            if (m.Name == p.MainExecutable && region.IsWritable)
            {
                p.DataEnd = Math.Max(p.DataEnd, end);
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
            p.HasStack = true;
            p.StackLow = start;
            p.StackHigh = end;
            p.StackGrowth = null;
        }
        else if (m.Kind == PerfMappingKind.Heap && p.Heap is null)
        {
            p.HeapStart = start;
            p.HeapEnd = end;
        }

        p.Mappings.Map(region);
        Emit(m.Tid, m.TimeNs, op, pageOffset, output);
        MmapOps++;
    }

    private void PlanFault(in PerfPageFault f, List<PlannedOp> output)
    {
        var p = ProcessOf(f.Tid);
        if (!p.Mappings.TryFind(f.Address, out var region))
        {
            if (!TryInferHeap(p, f, output) && !TryInferStack(p, f, output))
            {
                Unmapped++;
                return;
            }

            p.Mappings.TryFind(f.Address, out region);
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
    private bool TryInferHeap(PlannedProcess p, in PerfPageFault f, List<PlannedOp> output)
    {
        if (p.MainExecutable is null || p.DataEnd == 0)
        {
            return false;
        }

        if (p.Heap is null && p.HeapEnd == 0)
        {
            // The initial heap, if the trace shows it: the lowest writable anonymous mapping just above the data segment.
            if (p.Mappings.TryFindFirstAtOrAbove(p.DataEnd, out var next)
                && next.Start - p.DataEnd <= MaxHeapGap
                && next.IsWritable
                && (next.Kind == PerfMappingKind.Heap || next.Kind == PerfMappingKind.Anon)
                && f.Address >= next.Start)
            {
                p.HeapStart = next.Start;
                p.HeapEnd = next.End;
                while (p.Mappings.TryFindFirstAtOrAbove(p.HeapEnd, out var adjacent) && adjacent.Start == p.HeapEnd && adjacent.IsWritable
                       && adjacent.Kind is PerfMappingKind.Heap or PerfMappingKind.Anon)
                {
                    p.HeapEnd = adjacent.End;
                }
            }
            else
            {
                p.HeapStart = p.DataEnd;
                p.HeapEnd = p.DataEnd;
            }
        }

        if (f.Address < p.HeapEnd || f.Address - p.HeapEnd >= MaxHeapStep)
        {
            return false;
        }

        ulong newEnd = AlignUp(f.Address + 1);
        if (newEnd <= p.HeapEnd || p.Mappings.Overlaps(p.HeapEnd, newEnd))
        {
            return false;
        }

        if (p.Heap is null)
        {
            p.Heap = new InferredRegion { Kind = "heap", Start = p.HeapEnd, End = newEnd, FirstLine = f.LineNumber };
            _inferred.Add(p.Heap);
        }

        ulong from = p.HeapEnd;
        p.Heap.End = newEnd;
        p.Heap.Extensions++;
        p.HeapEnd = newEnd;
        MapInferred(p, f, from, newEnd, PerfMappingKind.Heap, "[heap]", output);
        return true;
    }

    /// <summary>Stack growth: the fault lies below the [stack] mapping, within RLIMIT_STACK of its top, nothing mapped in between.</summary>
    private bool TryInferStack(PlannedProcess p, in PerfPageFault f, List<PlannedOp> output)
    {
        if (!p.HasStack || f.Address >= p.StackLow)
        {
            return false;
        }

        ulong page = AlignDown(f.Address);
        if (p.StackHigh - page > MaxStackSize || p.Mappings.Overlaps(page, p.StackLow))
        {
            return false;
        }

        if (p.StackGrowth is null)
        {
            p.StackGrowth = new InferredRegion { Kind = "stack", Start = page, End = p.StackLow, FirstLine = f.LineNumber };
            _inferred.Add(p.StackGrowth);
        }

        ulong to = p.StackLow;
        p.StackGrowth.Start = page;
        p.StackGrowth.Extensions++;
        p.StackLow = page;
        MapInferred(p, f, page, to, PerfMappingKind.Stack, "[stack]", output);
        return true;
    }

    private void MapInferred(PlannedProcess p, in PerfPageFault f, ulong start, ulong end, PerfMappingKind kind, string name, List<PlannedOp> output)
    {
        const PerfProtection rw = PerfProtection.Read | PerfProtection.Write;
        p.Mappings.Map(new MappedRegion(start, end, rw, kind, name, 0) { Epoch = ++_epoch });
        Emit(f.Tid, f.TimeNs, Op.MapAnon((long)start, (long)(end - start), VmFlags.Read | VmFlags.Write | VmFlags.NoHugePage), 0, output);
        InferredMmapOps++;
    }

    private void Emit(int tid, long timeNs, Op op, long pageOffset, List<PlannedOp> output, int child = 0)
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

        output.Add(new PlannedOp(tid, op, seq, pageOffset, child));
    }

    private static VmFlags ToVmFlags(PerfProtection p) =>
        ((p & PerfProtection.Read) != 0 ? VmFlags.Read : 0)
        | ((p & PerfProtection.Write) != 0 ? VmFlags.Write : 0)
        | ((p & PerfProtection.Exec) != 0 ? VmFlags.Exec : 0)
        | ((p & PerfProtection.Shared) != 0 ? VmFlags.Shared : 0);

    private ulong AlignDown(ulong a) => a & ~(_pageSize - 1);

    private ulong AlignUp(ulong a) => a > ulong.MaxValue - (_pageSize - 1) ? ulong.MaxValue & ~(_pageSize - 1) : (a + _pageSize - 1) & ~(_pageSize - 1);

    /// <summary>A process as its TIDs see it: the view an exec replaces.</summary>
    private sealed class ProcessSlot
    {
        public PlannedProcess View { get; set; } = new();
    }
}
