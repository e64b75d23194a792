using DistEmu.Kernel;
using DistEmu.Kernel.Fault;
using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Sched;

namespace DistEmu.Telemetry;

/// <summary>
/// Turns the kernel core's observer calls into spans on the emulated timeline. Each fault, writer system call or
/// stand-alone migration is the root of a trace; lock holds (`vma_lock read`, `mmap_lock write`, …, from the request
/// to the release, with the wait and the hold as attributes), `migration_entry_wait`, `migrate_page` with its phases
/// and `tlb_shootdown` are its children. A migration wait follows from the migration it waited on; a blocked writer's
/// lock span follows from the faults that held the lock. A trace is kept or dropped when its root ends: kept if
/// sampled (by ratio, or contended-only), and always if it retried or met a sanitizer violation.
/// </summary>
public sealed class SpanRecorder : IKernelObserver
{
    private sealed class TaskState
    {
        public readonly List<EmuSpan> Open = new(4);
        public readonly List<EmuSpan> Trace = new(16);
        public readonly Dictionary<(object, LockMode), long> Waited = new();
        public readonly Dictionary<(object, LockMode), List<SpanRef>> BlockedBy = new();
        public long ViolationsAtStart;
        public bool Retried;
        public long MaxWaitOrHold;
        /// <summary>Head sampling said no: only the root is kept (for a retry or a violation), no child is recorded.</summary>
        public bool Suppressed;
    }

    private readonly ITraceSink _sink;
    private readonly TracingOptions _o;
    private readonly Dictionary<EmuTask, TaskState> _tasks = new();
    private readonly Dictionary<long, SpanRef> _lastMigration = new();
    private ulong _next;

    public SpanRecorder(ITraceSink sink, TracingOptions options)
    {
        _sink = sink;
        _o = options;
    }

    /// <summary>Spans written, and spans of traces dropped by sampling.</summary>
    public long Spans { get; private set; }
    public long SampledOut { get; private set; }

    private TaskState State(EmuTask t)
    {
        if (t.ObserverState is TaskState cached) return cached;
        if (!_tasks.TryGetValue(t, out var s))
            _tasks[t] = s = new TaskState();
        t.ObserverState = s;
        return s;
    }

    private ulong NewId()
    {
        // SplitMix64 over a counter seeded by the run's seed: unique, non-zero, deterministic.
        ulong z = unchecked(++_next + (ulong)_o.Seed * 0x9E3779B97F4A7C15UL);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        z ^= z >> 31;
        return z == 0 ? 1 : z;
    }

    private static string ProcessOf(EmuTask t) => t.Cpu >= 0 ? $"cpu-{t.Cpu}" : t.Name;

    private EmuSpan NewSpan(EmuTask t, TaskState s, string name, long start, bool tags = true)
    {
        var parent = s.Open.Count > 0 ? s.Open[^1] : null;
        var trace = parent?.Trace ?? new TraceId(NewId(), NewId());
        var span = new EmuSpan { Trace = trace, SpanId = NewId(), ParentId = parent?.SpanId ?? 0, Name = name, StartNs = start, Process = ProcessOf(t), Node = t.Node };
        if (tags) BaseTags(t, span);
        return span;
    }

    private static EmuSpan BaseTags(EmuTask t, EmuSpan span) =>
        span.Tag("emu.cpu", (long)t.Cpu).Tag("emu.node", (long)t.Node).Tag("emu.start_ns", span.StartNs);

    private void OpenRoot(EmuTask t, string name, long start)
    {
        var s = State(t);
        if (s.Open.Count == 0)
        {
            s.Trace.Clear();
            s.Retried = false;
            s.MaxWaitOrHold = 0;
            s.ViolationsAtStart = t.Machine.Sanitizer.Total;
        }
        if (s.Open.Count == 0)
        {
            // Head sampling: a trace left out keeps only its root, untagged until a retry or violation keeps it.
            var root = NewSpan(t, s, name, start, tags: false);
            s.Suppressed = _o.ContendedNs is null && !Sampled(root.Trace);
            if (!s.Suppressed) BaseTags(t, root).Tag("emu.policy", _o.Policy);
            s.Open.Add(root);
            return;
        }
        if (s.Suppressed)
        {
            s.Open.Add(NewSpan(t, s, name, start, tags: false));
            return;
        }
        s.Open.Add(NewSpan(t, s, name, start).Tag("emu.policy", _o.Policy));
    }

    private EmuSpan? CloseRoot(EmuTask t, long end)
    {
        var s = State(t);
        if (s.Open.Count == 0) return null;
        var span = s.Open[^1];
        s.Open.RemoveAt(s.Open.Count - 1);
        span.EndNs = end;
        s.Trace.Add(span);
        if (s.Open.Count == 0) Finish(t, s);
        return span;
    }

    private void Finish(EmuTask t, TaskState s)
    {
        bool violated = t.Machine.Sanitizer.Total > s.ViolationsAtStart;
        bool keep = s.Retried || violated || (_o.ContendedNs is long c ? s.MaxWaitOrHold >= c : !s.Suppressed);
        if (keep && s.Suppressed)
        {
            // Kept for its retry or violation; its children were not recorded.
            s.Trace.RemoveAll(x => x.ParentId != 0);
            BaseTags(t, s.Trace[0]).Tag("emu.policy", _o.Policy).Tag("emu.children_sampled_out", true);
        }
        if (keep)
        {
            Spans += s.Trace.Count;
            _sink.Write(s.Trace.ToList());
        }
        else
        {
            SampledOut += s.Trace.Count;
        }
        s.Trace.Clear();
    }

    private bool Sampled(TraceId id) => _o.SampleRatio >= 1 || (_o.SampleRatio > 0 && id.Lo < (ulong)(_o.SampleRatio * ulong.MaxValue));

    /// <summary>
    /// A finished child of the task's open span: none if nothing is open (not part of any trace), if head sampling
    /// left the trace out, or, when only contended spans are kept, if it lasted less than the threshold.
    /// </summary>
    private EmuSpan? Child(EmuTask t, string name, long start, long end)
    {
        var s = State(t);
        if (s.Open.Count == 0 || s.Suppressed || (_o.ContendedNs is long c && end - start < c)) return null;
        var span = NewSpan(t, s, name, start);
        span.EndNs = end;
        s.Trace.Add(span);
        return span;
    }

    public void OnFaultBegin(EmuTask task, long addr, bool write)
    {
        OpenRoot(task, "page_fault", task.Clock);
        var s = State(task);
        if (!s.Suppressed)
            s.Open[^1].Tag("emu.address", $"0x{addr:x}").Tag("emu.fault.flags", write ? "WRITE|USER|ALLOW_RETRY|KILLABLE" : "USER|ALLOW_RETRY|KILLABLE");
    }

    public void OnFaultEnd(EmuTask task, long addr, FaultOutcome outcome, VmFault lastResult, bool retried)
    {
        var s = State(task);
        s.Retried |= retried;
        if (s.Open.Count == 0) return;
        // Tag before closing: closing the root hands the trace to the sink.
        s.Open[^1].Tag("emu.fault.result", lastResult == VmFault.Done ? "0" : lastResult.ToString().Replace(", ", "|", StringComparison.Ordinal))
            .Tag("emu.outcome", outcome.ToString()).Tag("emu.retry", retried);
        CloseRoot(task, task.Clock);
    }

    public void OnLockAcquired(EmuTask task, IWaitTarget lockObject, LockMode mode, long waitedNs)
    {
        var s = State(task);
        if (!s.Suppressed) s.Waited[(lockObject, mode)] = waitedNs;
    }

    public void OnLockContended(EmuTask task, IWaitTarget lockObject, LockMode mode, IReadOnlyList<EmuTask> holders)
    {
        if (State(task).Suppressed) return;
        var refs = new List<SpanRef>();
        foreach (var h in holders)
            if (_tasks.TryGetValue(h, out var hs) && hs.Open.Count > 0)
                refs.Add(new SpanRef(SpanRefType.FollowsFrom, hs.Open[^1].Trace, hs.Open[^1].SpanId));
        if (refs.Count > 0) State(task).BlockedBy[(lockObject, mode)] = refs;
    }

    public void OnLockReleased(EmuTask task, IWaitTarget lockObject, LockMode mode, long heldSince)
    {
        var s = State(task);
        if (s.Suppressed) return;
        s.Waited.Remove((lockObject, mode), out long waited);
        s.BlockedBy.Remove((lockObject, mode), out var blockedBy);
        long hold = task.Clock - heldSince;
        var (name, isPtl) = lockObject switch
        {
            RwSemaphore r => ($"{r.Class.Name()} {mode.Name()}", r.Class == LockClass.Ptl),
            Folio => ("folio_lock", false),
            _ => ("lock", false),
        };
        if (isPtl && waited == 0) return; // uncontended PTL holds are too many to be worth a span each
        s.MaxWaitOrHold = Math.Max(s.MaxWaitOrHold, Math.Max(waited, hold));
        var span = Child(task, name, heldSince - waited, task.Clock);
        if (span is null) return;
        span.Tag("emu.wait_ns", waited).Tag("emu.hold_ns", hold).Tag("emu.lock", lockObject.Describe());
        if (blockedBy != null) span.Links.AddRange(blockedBy);
    }

    public void OnMigrationWait(EmuTask task, long frame, long fromNs, long toNs)
    {
        var s = State(task);
        s.MaxWaitOrHold = Math.Max(s.MaxWaitOrHold, toNs - fromNs);
        var span = Child(task, "migration_entry_wait", fromNs, toNs);
        if (span is null) return;
        span.Tag("emu.wait_ns", toNs - fromNs).Tag("emu.frame", frame);
        if (_lastMigration.TryGetValue(frame, out var migration))
            span.Links.Add(migration);
    }

    public void OnMigrate(EmuTask task, int vma, long addr, long frame, int dstNode, ReadOnlySpan<long> phases, bool success)
    {
        var s = State(task);
        bool root = s.Open.Count == 0;
        OpenRoot(task, "migrate_page", phases[0]);
        var span = s.Open[^1];
        span.Tag("emu.vma", (long)vma).Tag("emu.address", $"0x{addr:x}").Tag("emu.frame", frame).Tag("emu.dst_node", (long)dstNode).Tag("emu.success", success);
        string[] names = ["lock", "unmap", "copy", "remap", "unlock"];
        if (_o.ContendedNs is null || phases[5] - phases[0] >= _o.ContendedNs)
            for (int i = 0; i < names.Length; i++)
                Child(task, names[i], phases[i], phases[i + 1]);
        _lastMigration[frame] = new SpanRef(SpanRefType.FollowsFrom, span.Trace, span.SpanId);
        s.MaxWaitOrHold = Math.Max(s.MaxWaitOrHold, phases[5] - phases[0]);
        if (root)
        {
            CloseRoot(task, phases[5]);
        }
        else
        {
            s.Open.RemoveAt(s.Open.Count - 1);
            span.EndNs = phases[5];
            s.Trace.Add(span);
        }
    }

    public void OnWriterBegin(EmuTask task, string syscall, long addr, long length)
    {
        OpenRoot(task, syscall, task.Clock);
        var s = State(task);
        if (!s.Suppressed)
            s.Open[^1].Tag("emu.address", $"0x{addr:x}").Tag("emu.length", length);
    }

    public void OnWriter(EmuTask task, string syscall, long fromNs, long toNs, long waitedNs)
    {
        var s = State(task);
        s.MaxWaitOrHold = Math.Max(s.MaxWaitOrHold, waitedNs);
        if (s.Open.Count == 0) return;
        s.Open[^1].Tag("emu.wait_ns", waitedNs); // before closing: closing the root hands the trace to the sink
        CloseRoot(task, toNs);
    }

    public void OnTlbShootdown(EmuTask task, long start, long end, int targets, long fromNs, long toNs) =>
        Child(task, "tlb_shootdown", fromNs, toNs)?.Tag("emu.targets", (long)targets).Tag("emu.address", $"0x{start:x}").Tag("emu.length", end - start);
}
