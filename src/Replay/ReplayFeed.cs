// Models the single streaming pass of a replay: one shared reader over the trace feeds per-task op
// queues. A task whose queue is empty pulls the reader forward, planning records in trace order and
// dispatching each op to the queue of its TID's task (in every copy of a replicated run). Memory is the
// ops read ahead for tasks that lag behind the one pulling, not the trace.
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Sched;
using DistEmu.Kernel.Workloads;

namespace DistEmu.Replay;

internal sealed class ReplayFeed : IDisposable
{
    private readonly PerfScriptReader _reader;
    private readonly TracePlanner _planner;
    private readonly Dictionary<int, int> _tidIndex;
    private readonly int _tids;
    private readonly int _copies;
    private readonly bool _sharedMm;
    private readonly Queue<PlannedOp>[] _queues;
    private readonly long[] _current;
    private readonly bool[] _active;
    private readonly bool[] _finished;
    private readonly List<PlannedOp> _scratch = new();
    private readonly Func<string, FileObject> _createFile;
    private readonly List<FileObject> _files = new();
    private readonly long _limit;
    private readonly List<(int Task, TaskBarrier Barrier)> _pullers = new();
    private readonly Dictionary<int, TaskBarrier> _pullBarriers = new();
    private readonly int[] _processOfIndex;
    private readonly Func<int, int> _processOfTid;
    private readonly int _processes;
    private ReplayGate[] _gates = [];
    private bool _eof;
    private long _buffered;

    /// <param name="processOf">With processes: the process of each TID (by TID), else null (one process per copy).</param>
    public ReplayFeed(PerfScriptReader reader, TracePlanner planner, IReadOnlyList<int> tids, int copies, bool sharedMm, Func<string, FileObject> createFile, long maxBufferedOps,
        Func<int, int>? processOf = null, int processes = 1)
    {
        _limit = Math.Max(1, maxBufferedOps);
        _reader = reader;
        _planner = planner;
        _tids = tids.Count;
        _copies = copies;
        _sharedMm = sharedMm;
        _createFile = createFile;
        _tidIndex = new Dictionary<int, int>(_tids);
        for (int i = 0; i < tids.Count; i++)
        {
            _tidIndex.Add(tids[i], i);
        }

        _processes = sharedMm ? 1 : processes;
        _processOfTid = sharedMm || processOf is null ? _ => 0 : processOf;
        _processOfIndex = tids.Select(_processOfTid).ToArray();

        int tasks = _tids * copies;
        _queues = new Queue<PlannedOp>[tasks];
        for (int i = 0; i < tasks; i++)
        {
            _queues[i] = new Queue<PlannedOp>();
        }

        _current = new long[tasks];
        _active = new bool[tasks];
        _finished = new bool[tasks];
    }

    public IReadOnlyList<FileObject> Files => _files;

    /// <summary>The most ops ever held in all queues at once (the read-ahead a replay costs).</summary>
    public long MaxBuffered { get; private set; }

    public PerfScriptStats Stats => _reader.Stats;

    public void SetGates(ReplayGate[] gates) => _gates = gates;

    /// <summary>Processes per copy (1 unless the trace's task events made processes).</summary>
    public int Processes => _processes;

    /// <summary>
    /// Ordering domain of task <paramref name="task"/>: one for all tasks with a shared mm, else one per process of
    /// each copy (copy × processes + process), which is also the index of the process's address space.
    /// </summary>
    public int DomainOf(int task) => _sharedMm ? 0 : ((task / _tids) * _processes) + _processOfIndex[task % _tids];

    public ReplayGate GateOf(int task) => _gates[DomainOf(task)];

    /// <summary>Seq of the op the task is on (or will start with); <see cref="ReplayGate.Finished"/> if it has no more ops that are already read.</summary>
    public long CurrentSeq(int task)
    {
        if (_finished[task])
        {
            return ReplayGate.Finished;
        }

        if (_active[task])
        {
            return _current[task];
        }

        return _queues[task].TryPeek(out var head) ? head.Seq : ReplayGate.Finished;
    }

    /// <summary>Times a task had to wait because the read-ahead was full.</summary>
    public long PullWaits { get; private set; }

    /// <summary>
    /// The task's next op, reading the trace forward as far as needed; null once the trace has no more for it.
    /// If the ops read ahead for other tasks reach the limit, the task sleeps (in emulated time) until they drain
    /// to half of it; meanwhile it counts as having no op before anything already read, so nobody waits for it.
    /// </summary>
    public async ValueTask<PlannedOp?> NextAsync(EmuTask t, int task)
    {
        var queue = _queues[task];
        while (queue.Count == 0 && !_eof)
        {
            if (_buffered >= _limit)
            {
                _active[task] = false;
                GateOf(task).Notify(t);
                if (!_pullBarriers.TryGetValue(task, out var barrier))
                {
                    barrier = new TaskBarrier(2);
                    _pullBarriers.Add(task, barrier);
                }

                PullWaits++;
                _pullers.Add((task, barrier));
                await barrier.Arrive(t);
                continue;
            }

            ReadOne();
        }

        if (queue.TryDequeue(out var op))
        {
            _buffered--;
            if (_pullers.Count > 0 && _buffered <= _limit / 2)
            {
                var pullers = _pullers.ToArray();
                _pullers.Clear();
                foreach (var p in pullers)
                {
                    _ = p.Barrier.Arrive(t); // second party: wakes the puller at this task's clock
                }
            }

            _active[task] = true;
            _current[task] = op.Seq;
            return op;
        }

        _active[task] = false;
        _finished[task] = true;
        if (_pullers.Count > 0)
        {
            // End of trace: anyone still waiting to read will find the rest (or nothing) now.
            var pullers = _pullers.ToArray();
            _pullers.Clear();
            foreach (var p in pullers)
            {
                _ = p.Barrier.Arrive(t);
            }
        }

        return null;
    }

    /// <summary>Drain the rest of the trace (so the statistics are final) once every task is done.</summary>
    public void ReadToEnd()
    {
        while (!_eof)
        {
            ReadOne();
        }
    }

    private void ReadOne()
    {
        if (!_reader.TryRead(out var record))
        {
            _eof = true;
            return;
        }

        _scratch.Clear();
        _planner.Plan(record, _scratch);
        while (_files.Count < _planner.FileNames.Count)
        {
            _files.Add(_createFile(_planner.FileNames[_files.Count]));
        }

        foreach (var op in _scratch)
        {
            if (!_tidIndex.TryGetValue(op.Tid, out int index))
            {
                throw new InvalidOperationException($"{_reader.SourceName}: TID {op.Tid} was not in the trace's first pass (did the file change while replaying?)");
            }

            for (int copy = 0; copy < _copies; copy++)
            {
                if (op.IsFence && _sharedMm && copy > 0)
                {
                    break;
                }

                int task = (copy * _tids) + index;
                if (_finished[task])
                {
                    continue; // cannot happen: a task finishes only at the end of the trace
                }

                _queues[task].Enqueue(op);
                _buffered++;
                if (op.IsFence && (copy == 0 || !_sharedMm))
                {
                    GateOf(task).FenceDispatched(op.Seq);
                    if (op.Op.Kind == OpKind.Fork)
                    {
                        // The child's ops come after its fork in trace order: its domain waits for the fork too.
                        ChildGate(copy, op.Child).FenceDispatched(op.Seq);
                    }
                }
            }
        }

        MaxBuffered = Math.Max(MaxBuffered, _buffered);
    }

    /// <summary>The domain a fork's child TID joins in copy <paramref name="copy"/>.</summary>
    public ReplayGate ChildGate(int copy, int childTid) => _gates[ChildDomain(copy, childTid)];

    /// <summary>Index of the address space a fork's child runs in (its domain).</summary>
    public int ChildDomain(int copy, int childTid) =>
        (copy * _processes) + _processOfTid(childTid);

    public void Dispose() => _reader.Dispose();
}
