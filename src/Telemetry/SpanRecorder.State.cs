using System.Diagnostics;
using DistEmu.Kernel.Fault;
using DistEmu.Kernel.Locking;

namespace DistEmu.Telemetry;

/// <summary>The recorder's per-task records: open spans on a task's stack, pending lock holds, and the reused span buffer.</summary>
public sealed partial class SpanRecorder
{
    private enum SpanKind : byte
    {
        Fault,
        Writer,
        Migrate,
    }

    /// <summary>An open span: a value record until it closes (and is built only if its trace records it).</summary>
    private struct OpenSpan
    {
        public SpanKind Kind;
        public string Name;
        public TraceId Trace;
        public ulong SpanId, ParentId;
        public long StartNs, EndNs;
        public long Addr, Length, Waited, Frame;
        public int Vma, DstNode;
        public bool Write, Ended, Retried, Success;
        /// <summary>A span of another recorder (the caller's, in another grain): the parent of what this task records now.</summary>
        public bool Remote;
        /// <summary>Host ns (--trace-clock host): when it opened and closed on the host.</summary>
        public long HostStartNs, HostEndNs;
        /// <summary>--trace-orleans: the root's live Activity.</summary>
        public Activity? Live;
        public FaultOutcome Outcome;
        public VmFault Result;
    }

    /// <summary>A lock the task waited for or was blocked on, until its release makes the span.</summary>
    private struct PendingLock
    {
        public IWaitTarget Lock;
        public LockMode Mode;
        public long Waited;
        public List<SpanRef>? BlockedBy;
        /// <summary>Host ns when it was asked for or granted (--trace-clock host).</summary>
        public long HostSince;
    }

    private sealed class TaskState(SpanRecorder owner, string process)
    {
        public readonly SpanRecorder Owner = owner;
        public readonly string Process = process;
        public readonly SpanBuffer Trace = new();
        /// <summary>The task's id stream: which task (unique in the recorder's machine) and how many ids it drew.</summary>
        public uint Salt;
        public ulong NextId;
        private OpenSpan[] _open = new OpenSpan[4];
        public int Depth;
        public PendingLock[] Locks = new PendingLock[4];
        public int LockCount;
        public bool Retried;
        public long MaxWaitOrHold;
        /// <summary>Closed records not built (nested spans of a trace left out by head sampling).</summary>
        public int Unbuilt;
        /// <summary>Head sampling said no: only the root may be built (for a retry or a violation), no child.</summary>
        public bool Suppressed;
        /// <summary>A span was built under a remote parent: hand it over once its attributes are complete.</summary>
        public bool FlushPending;
        /// <summary>Host ns of the task's latest event (--trace-clock host).</summary>
        public long LastHostNs;
        /// <summary>Ids handed out for the next root (<see cref="ReserveRoot"/>).</summary>
        public (TraceId Trace, ulong SpanId)? Reserved;

        public ref OpenSpan Top => ref _open[Depth - 1];

        public ref OpenSpan Push(SpanKind kind, string name, long start, TraceId trace, ulong spanId, ulong parentId)
        {
            if (Depth == _open.Length) Array.Resize(ref _open, Depth * 2);
            ref var o = ref _open[Depth++];
            o = default;
            o.Kind = kind;
            o.Name = name;
            o.StartNs = start;
            o.Trace = trace;
            o.SpanId = spanId;
            o.ParentId = parentId;
            return ref o;
        }

        public int FindLock(IWaitTarget l, LockMode mode)
        {
            for (int i = 0; i < LockCount; i++)
                if (ReferenceEquals(Locks[i].Lock, l) && Locks[i].Mode == mode) return i;
            return -1;
        }

        public void AddLock(IWaitTarget l, LockMode mode, long waited, List<SpanRef>? blockedBy, long hostSince)
        {
            if (LockCount == Locks.Length) Array.Resize(ref Locks, LockCount * 2);
            Locks[LockCount++] = new PendingLock { Lock = l, Mode = mode, Waited = waited, BlockedBy = blockedBy, HostSince = hostSince };
        }

        public void RemoveLock(int i)
        {
            Locks[i] = Locks[--LockCount];
            Locks[LockCount] = default;
        }
    }

    /// <summary>One task's spans of the trace being recorded; the span objects are reused by the next trace.</summary>
    private sealed class SpanBuffer : IReadOnlyList<EmuSpan>
    {
        private readonly List<EmuSpan> _spans = new(8);

        public int Count { get; private set; }
        public EmuSpan this[int index] => (uint)index < (uint)Count ? _spans[index] : throw new ArgumentOutOfRangeException(nameof(index));

        public EmuSpan Add(TraceId trace, ulong spanId, ulong parentId, string name, long start, string process, int node)
        {
            if (Count == _spans.Count) _spans.Add(new EmuSpan());
            var span = _spans[Count++];
            span.Reset(trace, spanId, parentId, name, start, process, node);
            return span;
        }

        public void Clear() => Count = 0;

        public IEnumerator<EmuSpan> GetEnumerator()
        {
            for (int i = 0; i < Count; i++) yield return _spans[i];
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
