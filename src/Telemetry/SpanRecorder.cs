using System.Diagnostics;
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
/// <remarks>
/// Cost is paid only for what is kept. Sampling is decided once, when the root opens, from its trace id; an open span
/// is a value record on the task's stack (ids, name, start, what its attributes need), and becomes an
/// <see cref="EmuSpan"/> only when it closes in a trace that records it — the root only when the trace is kept. A
/// trace left out by head sampling records no children: its root can still be built for a retry or a violation.
/// Under contended-only, only the children over the threshold are built. Span objects are reused from one trace of a
/// task to the next (the sink sees them only during <see cref="ITraceSink.Write"/>).
/// </remarks>
public sealed partial class SpanRecorder : IKernelObserver
{
    private const string FaultFlagsRead = "USER|ALLOW_RETRY|KILLABLE", FaultFlagsWrite = "WRITE|USER|ALLOW_RETRY|KILLABLE";
    private static readonly string[] PhaseNames = ["lock", "unmap", "copy", "remap", "unlock"];

    private readonly ITraceSink _sink;
    private readonly TracingOptions _o;
    private readonly ulong _sampleBelow;
    private readonly bool _sampleAll;
    private readonly long _contended;
    private readonly Func<long>? _host;
    private readonly string[] _lockSpanNames;
    private readonly Dictionary<VmFault, string> _faultResults = new();
    private readonly Dictionary<long, SpanRef> _lastMigration = new();

    public SpanRecorder(ITraceSink sink, TracingOptions options)
    {
        _sink = sink;
        _o = options;
        _sampleAll = options.SampleRatio >= 1;
        _sampleBelow = options.SampleRatio <= 0 ? 0 : (ulong)(options.SampleRatio * ulong.MaxValue);
        _contended = options.ContendedNs ?? -1;
        _host = options.HostClock;
        var classes = Enum.GetValues<LockClass>();
        _lockSpanNames = new string[classes.Length * 2];
        foreach (var c in classes)
        {
            _lockSpanNames[(int)c * 2] = $"{c.Name()} {LockMode.Read.Name()}";
            _lockSpanNames[(int)c * 2 + 1] = $"{c.Name()} {LockMode.Write.Name()}";
        }
    }

    /// <summary>Spans written, and spans of traces dropped by sampling.</summary>
    public long Spans { get; private set; }
    public long SampledOut { get; private set; }

    private TaskState State(EmuTask t)
    {
        if (t.ObserverState is TaskState s && s.Owner == this) return s;
        s = new TaskState(this, t.Cpu >= 0 ? $"cpu-{t.Cpu}" : t.Name) { Salt = (uint)t.Id };
        t.ObserverState = s;
        return s;
    }

    /// <summary>
    /// A trace or span id from the task's own stream: SplitMix64 over (run seed, task, the task's count), so ids are
    /// unique, non-zero and fixed by the task's history, not by how the engine interleaved tasks on the host (the sim
    /// engine's run-ahead changes that order; head sampling by trace id must not change with it).
    /// </summary>
    private ulong NewId(TaskState s)
    {
        ulong z = unchecked(++s.NextId + ((ulong)s.Salt << 40) + (ulong)_o.Seed * 0x9E3779B97F4A7C15UL);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        z ^= z >> 31;
        return z == 0 ? 1 : z;
    }

    private bool Sampled(TraceId id) => _sampleAll || id.Lo < _sampleBelow;

    /// <summary>Opens a span record: the root of a new trace if nothing is open, else a child of the innermost open span.</summary>
    private ref OpenSpan Open(EmuTask t, TaskState s, SpanKind kind, string name, long start)
    {
        if (s.Depth == 0)
        {
            s.Retried = false;
            s.MaxWaitOrHold = 0;
            s.Unbuilt = 0;
            t.ViolationNote = null; // a report before this fault is not this fault's
            var (trace, spanId) = s.Reserved ?? (new TraceId(NewId(s), NewId(s)), NewId(s));
            s.Reserved = null;
            // Head sampling, once per trace; contended-only decides at the end, from what the children measured.
            s.Suppressed = _contended < 0 && !Sampled(trace);
            t.LockEventsMuted = s.Suppressed;
            ref var root = ref s.Push(kind, name, start, trace, spanId, 0);
            if (_host != null)
            {
                root.HostStartNs = s.LastHostNs = _host();
                if (_o.Live != null && !s.Suppressed) root.Live = StartLive(name, trace, spanId);
            }
            return ref root;
        }
        ref var parent = ref s.Top;
        ref var child = ref s.Push(kind, name, start, parent.Trace, NewId(s), parent.SpanId);
        if (_host != null) child.HostStartNs = s.LastHostNs = _host();
        return ref child;
    }

    /// <summary>--trace-orleans: the root as a live Activity (its trace and span id ours), current while it runs.</summary>
    private Activity? StartLive(string name, TraceId trace, ulong spanId)
    {
        var a = _o.Live!.StartActivity(name, ActivityKind.Internal, new ActivityContext(ActivityIds.TraceIdOf(trace), default, ActivityTraceFlags.Recorded));
        if (a != null && !ActivityIds.TrySet(a, spanId))
        {
            // Orleans' spans would hang off an id the recorder's children do not know: better none.
            a.ActivityTraceFlags = ActivityTraceFlags.None;
            a.Stop();
            return null;
        }
        return a;
    }

    /// <summary>Closes the innermost open span at <paramref name="end"/>; the root's closing keeps or drops the trace.</summary>
    private void Close(EmuTask t, TaskState s, long end)
    {
        ref var o = ref s.Top;
        o.EndNs = end;
        if (_host != null) o.HostEndNs = s.LastHostNs = _host();
        if (s.Depth > 1)
        {
            if (s.Suppressed) s.Unbuilt++;
            else Build(t, s, ref o, childrenSampledOut: false);
            s.Depth--;
            FlushUnderRemote(s);
            return;
        }
        // This fault met a violation when one was reported on its own CPU while it ran (KernelSanitizer.Report notes it on
        // the task; a grain's reply carries it back). Not the machine-wide count: what other CPUs report in the meantime
        // follows the host's order of running them, which run-ahead changes.
        bool violated = t.ViolationNote != null;
        // With children recorded elsewhere (grains), a root that lasted the threshold is kept: theirs may be over it.
        long longest = _o.ChildrenElsewhere ? Math.Max(s.MaxWaitOrHold, end - o.StartNs) : s.MaxWaitOrHold;
        bool keep = s.Retried || violated || (_contended >= 0 ? longest >= _contended : !s.Suppressed);
        if (keep)
        {
            // A trace left out by head sampling but kept for its retry or violation has its root only.
            var root = Build(t, s, ref o, childrenSampledOut: s.Suppressed);
            if (t.ViolationNote is { } note)
                root.Tag(EmuSpan.ErrorKey, true).Tag(EmuSpan.ViolationKey, note);
            if (o.Live != null) EndLive(o.Live, root);
            Spans += s.Trace.Count;
            _sink.Write(s.Trace);
        }
        else
        {
            if (o.Live != null)
            {
                o.Live.ActivityTraceFlags = ActivityTraceFlags.None; // not exported
                o.Live.Stop();
            }
            SampledOut += s.Trace.Count + s.Unbuilt + 1;
        }
        s.Trace.Clear();
        s.Depth = 0;
        t.LockEventsMuted = false;
    }

    /// <summary>The live root ends with the recorded root's attributes; the files still get the recorded one.</summary>
    private static void EndLive(Activity a, EmuSpan root)
    {
        foreach (ref readonly var tag in root.Attributes) a.SetTag(tag.Key, tag.Value);
        a.SetTag("emu.process", root.Process);
        a.SetTag("emu.duration_ns", root.EmulatedDurationNs);
        a.Stop();
        root.ExportedLive = true;
    }

    /// <summary>The span of a closed record, with its attributes in a fixed order.</summary>
    private EmuSpan Build(EmuTask t, TaskState s, ref OpenSpan o, bool childrenSampledOut)
    {
        var span = s.Trace.Add(o.Trace, o.SpanId, o.ParentId, o.Name, o.StartNs, s.Process, t.Node);
        span.EndNs = o.EndNs;
        span.EmulatedDurationNs = o.EndNs - o.StartNs;
        if (_host != null) (span.StartNs, span.EndNs) = (o.HostStartNs, o.HostEndNs);
        span.Tag("emu.cpu", (long)t.Cpu).Tag("emu.node", (long)t.Node).Tag("emu.start_ns", o.StartNs).Tag("emu.policy", _o.Policy);
        switch (o.Kind)
        {
            case SpanKind.Fault:
                span.TagHex("emu.address", o.Addr).Tag("emu.fault.flags", o.Write ? FaultFlagsWrite : FaultFlagsRead);
                if (o.Ended)
                    span.Tag("emu.fault.result", FaultResult(o.Result)).Tag("emu.outcome", OutcomeName(o.Outcome)).Tag("emu.retry", o.Retried);
                break;
            case SpanKind.Writer:
                span.TagHex("emu.address", o.Addr).Tag("emu.length", o.Length);
                if (o.Ended) span.Tag("emu.wait_ns", o.Waited);
                break;
            case SpanKind.Migrate:
                span.Tag("emu.vma", (long)o.Vma).TagHex("emu.address", o.Addr).Tag("emu.frame", o.Frame).Tag("emu.dst_node", (long)o.DstNode).Tag("emu.success", o.Success);
                break;
        }
        if (childrenSampledOut) span.Tag("emu.children_sampled_out", true);
        return span;
    }

    private string FaultResult(VmFault r)
    {
        if (r == VmFault.Done) return "0";
        if (!_faultResults.TryGetValue(r, out var text))
            _faultResults[r] = text = r.ToString().Replace(", ", "|", StringComparison.Ordinal);
        return text;
    }

    private static string OutcomeName(FaultOutcome o) => o switch
    {
        FaultOutcome.Handled => nameof(FaultOutcome.Handled),
        FaultOutcome.Sigsegv => nameof(FaultOutcome.Sigsegv),
        FaultOutcome.Sigbus => nameof(FaultOutcome.Sigbus),
        _ => o.ToString(),
    };

    /// <summary>
    /// A finished child of the task's open span: none if nothing is open (not part of any trace), if head sampling
    /// left the trace out, or, when only contended spans are kept, if it lasted less than the threshold.
    /// </summary>
    /// <param name="hostStart">Under --trace-clock host: when the host began it (-1: at the task's previous event).</param>
    private EmuSpan? Child(EmuTask t, TaskState s, string name, long start, long end, long hostStart = -1, long hostEnd = -1)
    {
        if (s.Depth == 0 || s.Suppressed || end - start < _contended) return null;
        ref var parent = ref s.Top;
        var span = s.Trace.Add(parent.Trace, NewId(s), parent.SpanId, name, start, s.Process, t.Node);
        span.EndNs = end;
        span.EmulatedDurationNs = end - start;
        if (_host != null)
        {
            long now = hostEnd >= 0 ? hostEnd : _host();
            (span.StartNs, span.EndNs) = (hostStart >= 0 ? hostStart : s.LastHostNs, now);
            s.LastHostNs = now;
        }
        span.Tag("emu.cpu", (long)t.Cpu).Tag("emu.node", (long)t.Node).Tag("emu.start_ns", start);
        if (parent.Remote) s.FlushPending = true;
        return span;
    }

    /// <summary>
    /// Under a remote parent nothing here closes the trace: what was built goes to the sink as a fragment of it (the
    /// run's collector joins the fragments by trace id). Called once the span's attributes are complete.
    /// </summary>
    private void FlushUnderRemote(TaskState s)
    {
        if (s.Depth != 1 || !s.Top.Remote || s.Trace.Count == 0) return;
        s.FlushPending = false;
        Spans += s.Trace.Count;
        _sink.Write(s.Trace);
        s.Trace.Clear();
    }

    /// <summary>
    /// The span a call made now by <paramref name="task"/> belongs to (the innermost open one), to pass to another grain
    /// with the call; default if none.
    /// </summary>
    public TraceContext Current(EmuTask task)
    {
        if (task.ObserverState is not TaskState s || s.Owner != this || s.Depth == 0) return default;
        ref var top = ref s.Top;
        return new TraceContext(top.Trace, top.SpanId, !s.Suppressed);
    }

    /// <summary>
    /// The span a call made now belongs to, where the call does the first part of a fault that has not begun here yet
    /// (a grain's page walk that goes on with the fault's VMA attempt): the ids the task's next root will take.
    /// </summary>
    public TraceContext ReserveRoot(EmuTask task)
    {
        var s = State(task);
        if (s.Depth > 0) return Current(task);
        s.Reserved ??= (new TraceId(NewId(s), NewId(s)), NewId(s));
        var (trace, spanId) = s.Reserved.Value;
        return new TraceContext(trace, spanId, _contended >= 0 || Sampled(trace));
    }

    /// <summary>
    /// A call from another grain arrives for <paramref name="task"/> (a stand-in for the calling CPU): what it records
    /// is a child of the caller's span (<paramref name="context"/>), or of nothing if the caller had none. A task in the
    /// middle of a trace of its own keeps it.
    /// </summary>
    public void Adopt(EmuTask task, TraceContext context)
    {
        var s = State(task);
        if (s.Depth > 1 || (s.Depth == 1 && !s.Top.Remote)) return;
        FlushUnderRemote(s);
        s.Trace.Clear();
        s.Depth = 0;
        s.Suppressed = false;
        task.LockEventsMuted = false;
        if (context.SpanId == 0) return;
        ref var o = ref s.Push(SpanKind.Fault, "", 0, context.Trace, context.SpanId, 0);
        o.Remote = true;
        s.Suppressed = !context.Sampled;
        task.LockEventsMuted = s.Suppressed;
        s.Retried = false;
        s.MaxWaitOrHold = 0;
        s.Unbuilt = 0;
    }

    public void OnFaultBegin(EmuTask task, long addr, bool write)
    {
        var s = State(task);
        ref var o = ref Open(task, s, SpanKind.Fault, "page_fault", task.Clock);
        o.Addr = addr;
        o.Write = write;
    }

    public void OnFaultEnd(EmuTask task, long addr, FaultOutcome outcome, VmFault lastResult, bool retried)
    {
        var s = State(task);
        s.Retried |= retried;
        if (s.Depth == 0 || s.Top.Remote) return;
        ref var o = ref s.Top;
        o.Ended = true;
        o.Outcome = outcome;
        o.Result = lastResult;
        o.Retried = retried;
        Close(task, s, task.Clock);
    }

    public void OnLockAcquired(EmuTask task, IWaitTarget lockObject, LockMode mode, long waitedNs)
    {
        var s = State(task);
        if (s.Suppressed) return;
        int i = s.FindLock(lockObject, mode);
        if (i >= 0) s.Locks[i].Waited = waitedNs;
        else if (waitedNs > 0 || _host != null) s.AddLock(lockObject, mode, waitedNs, null, _host?.Invoke() ?? 0);
    }

    public void OnLockContended(EmuTask task, IWaitTarget lockObject, LockMode mode, IReadOnlyList<EmuTask> holders)
    {
        var s = State(task);
        if (s.Suppressed) return;
        List<SpanRef>? refs = null;
        foreach (var h in holders)
            if (h.ObserverState is TaskState hs && hs.Owner == this && hs.Depth > 0)
                (refs ??= new(holders.Count)).Add(new SpanRef(SpanRefType.FollowsFrom, hs.Top.Trace, hs.Top.SpanId));
        if (refs is null) return;
        int i = s.FindLock(lockObject, mode);
        if (i >= 0) s.Locks[i].BlockedBy = refs;
        else s.AddLock(lockObject, mode, 0, refs, _host?.Invoke() ?? 0);
    }

    public void OnLockReleased(EmuTask task, IWaitTarget lockObject, LockMode mode, long heldSince)
    {
        var s = State(task);
        if (s.Suppressed) return;
        long waited = 0, hostSince = -1;
        List<SpanRef>? blockedBy = null;
        int i = s.FindLock(lockObject, mode);
        if (i >= 0)
        {
            waited = s.Locks[i].Waited;
            blockedBy = s.Locks[i].BlockedBy;
            if (_host != null) hostSince = s.Locks[i].HostSince;
            s.RemoveLock(i);
        }
        long hold = task.Clock - heldSince;
        string name;
        if (lockObject is RwSemaphore r)
        {
            if (r.Class == LockClass.Ptl && waited == 0) return; // uncontended PTL holds are too many to be worth a span each
            name = _lockSpanNames[(int)r.Class * 2 + (int)mode];
        }
        else name = lockObject is Folio ? "folio_lock" : "lock";
        s.MaxWaitOrHold = Math.Max(s.MaxWaitOrHold, Math.Max(waited, hold));
        var span = Child(task, s, name, heldSince - waited, task.Clock, hostSince);
        if (span is null) return;
        span.Tag("emu.wait_ns", waited).Tag("emu.hold_ns", hold).Tag("emu.lock", lockObject.Describe());
        if (blockedBy != null) span.Links.AddRange(blockedBy);
        if (s.FlushPending) FlushUnderRemote(s);
    }

    public void OnMigrationWait(EmuTask task, long frame, long fromNs, long toNs)
    {
        var s = State(task);
        s.MaxWaitOrHold = Math.Max(s.MaxWaitOrHold, toNs - fromNs);
        var span = Child(task, s, "migration_entry_wait", fromNs, toNs);
        if (span is null) return;
        span.Tag("emu.wait_ns", toNs - fromNs).Tag("emu.frame", frame);
        if (_lastMigration.TryGetValue(frame, out var migration))
            span.Links.Add(migration);
        if (s.FlushPending) FlushUnderRemote(s);
    }

    public void OnMigrate(EmuTask task, int vma, long addr, long frame, int dstNode, ReadOnlySpan<long> phases, bool success)
    {
        var s = State(task);
        long h0 = s.LastHostNs; // host clock: the migration ran since the task's previous event
        ref var o = ref Open(task, s, SpanKind.Migrate, "migrate_page", phases[0]);
        o.Vma = vma;
        o.Addr = addr;
        o.Frame = frame;
        o.DstNode = dstNode;
        o.Success = success;
        _lastMigration[frame] = new SpanRef(SpanRefType.FollowsFrom, o.Trace, o.SpanId);
        long h1 = o.HostStartNs, length = Math.Max(1, phases[5] - phases[0]);
        if (_host != null) o.HostStartNs = h0;
        if (_contended < 0 || phases[5] - phases[0] >= _contended)
        {
            for (int i = 0; i < PhaseNames.Length; i++)
            {
                // Host clock: the phases placed in proportion within the migration's host interval.
                long from = _host is null ? -1 : h0 + (phases[i] - phases[0]) * (h1 - h0) / length;
                long to = _host is null ? -1 : h0 + (phases[i + 1] - phases[0]) * (h1 - h0) / length;
                Child(task, s, PhaseNames[i], phases[i], phases[i + 1], from, to);
            }
        }
        s.MaxWaitOrHold = Math.Max(s.MaxWaitOrHold, phases[5] - phases[0]);
        Close(task, s, phases[5]);
    }

    public void OnWriterBegin(EmuTask task, string syscall, long addr, long length)
    {
        var s = State(task);
        ref var o = ref Open(task, s, SpanKind.Writer, syscall, task.Clock);
        o.Addr = addr;
        o.Length = length;
    }

    public void OnWriter(EmuTask task, string syscall, long fromNs, long toNs, long waitedNs)
    {
        var s = State(task);
        s.MaxWaitOrHold = Math.Max(s.MaxWaitOrHold, waitedNs);
        if (s.Depth == 0 || s.Top.Remote) return;
        ref var o = ref s.Top;
        o.Ended = true;
        o.Waited = waitedNs;
        Close(task, s, toNs);
    }

    /// <summary>A preemption inside a span (e.g. between vma_end_read and pte_offset_map_lock): the fault's time that
    /// no lock or wait would show, as a span of its own.</summary>
    public void OnPreempted(EmuTask task, PreemptSite site, long fromNs, long toNs)
    {
        var s = State(task);
        s.MaxWaitOrHold = Math.Max(s.MaxWaitOrHold, toNs - fromNs);
        Child(task, s, "preempted", fromNs, toNs)?.Tag("emu.site", SiteName(site)).Tag("emu.delay_ns", toNs - fromNs);
        if (s.FlushPending) FlushUnderRemote(s);
    }

    private static string SiteName(PreemptSite site) => site switch
    {
        PreemptSite.LookupToVmaStartRead => "lock_vma_under_rcu: lookup to vma_start_read",
        PreemptSite.UnlockToPteMapLock => "fault lock dropped to pte_offset_map_lock",
        PreemptSite.HandleMmFaultEntry => "handle_mm_fault entry",
        PreemptSite.WriterAfterMmapWriteLock => "mmap_write_lock to vma_start_write",
        PreemptSite.MigrateBeforeCopy => "migrate_pages: unmap to copy",
        _ => site.ToString(),
    };

    public void OnTlbShootdown(EmuTask task, long start, long end, int targets, long fromNs, long toNs)
    {
        var s = State(task);
        Child(task, s, "tlb_shootdown", fromNs, toNs)?.Tag("emu.targets", (long)targets).TagHex("emu.address", start).Tag("emu.length", end - start);
        if (s.FlushPending) FlushUnderRemote(s);
    }
}

/// <summary>A span to continue from in another recorder (W3C trace context's ids and sampled flag); default: none.</summary>
public readonly record struct TraceContext(TraceId Trace, ulong SpanId, bool Sampled);
