using System.Text;
using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Sanitizer;

public enum EventKind : byte
{
    Lock, Unlock, FaultBegin, FaultEnd, VmaAttempt, MmapAttempt, HandleMmFault, PteSet, MigrationEntryWait,
    MigrateBegin, MigrateEnd, FolioLock, FolioUnlock, Mmap, Munmap, Mprotect, NumaScan, PageOut, TlbFlush, Detach, Violation, Fork,
}

/// <summary>One protocol event: emulated time, task, what, and up to three operands (VMA id, address, value).</summary>
public readonly record struct EmuEvent(long Time, int Task, EventKind Kind, long A, long B, long C)
{
    public override string ToString() => $"{Time,12} t{Task,-4} {Kind,-18} {A} {B:x} {C}";
}

/// <summary>
/// The run's event log: a running hash of every event (cheap; two runs with the same seed must give the same
/// hash), the last events in a ring for violation reports, and, when asked, the whole log.
/// </summary>
public sealed class EventLog
{
    private readonly EmuEvent[] _ring = new EmuEvent[48];
    private long _count;
    private ulong _hash = 14695981039346656037UL;

    public bool KeepRing { get; set; } = true;
    public List<EmuEvent>? Full { get; set; }
    public long Count => _count;
    public ulong Hash => _hash;

    public void Record(EmuTask t, EventKind kind, long a = 0, long b = 0, long c = 0)
    {
        var e = new EmuEvent(t.Clock, t.Id, kind, a, b, c);
        _count++;
        ulong h = _hash;
        h = (h ^ (ulong)e.Time) * 1099511628211UL;
        h = (h ^ (ulong)(uint)e.Task ^ ((ulong)kind << 32)) * 1099511628211UL;
        h = (h ^ (ulong)a) * 1099511628211UL;
        h = (h ^ (ulong)b) * 1099511628211UL;
        h = (h ^ (ulong)c) * 1099511628211UL;
        _hash = h;
        if (KeepRing) _ring[_count % _ring.Length] = e;
        Full?.Add(e);
    }

    public void Record(EmuTask t, EventKind kind, LockClass c, LockMode m, long ns) =>
        Record(t, kind, (long)c * 2 + (long)m, 0, ns);

    /// <summary>
    /// The last events up to emulated time <paramref name="upTo"/>, oldest first, formatted for a violation record. The
    /// ring is in host order: tasks that ran ahead (the sim engine's run-ahead, or a step past a sync point) may have
    /// logged later events already, which did not lead to the violation.
    /// </summary>
    public IReadOnlyList<string> Recent(long upTo = long.MaxValue, int max = 32)
    {
        var events = new List<EmuEvent>();
        long n = Math.Min(_count, _ring.Length);
        for (long i = _count - n + 1; i <= _count; i++)
            if (_ring[i % _ring.Length].Time <= upTo)
                events.Add(_ring[i % _ring.Length]);
        return events.OrderBy(e => e.Time).TakeLast(max).Select(Format).ToList();
    }

    public static string Format(EmuEvent e)
    {
        var sb = new StringBuilder();
        sb.Append(e.Time).Append("ns t").Append(e.Task).Append(' ').Append(e.Kind);
        if (e.Kind is EventKind.Lock or EventKind.Unlock)
        {
            var c = (LockClass)(e.A / 2);
            var m = (LockMode)(e.A % 2);
            sb.Append(' ').Append(c.Name()).Append(' ').Append(m.Name()).Append(e.Kind == EventKind.Lock ? " waited " : " held ").Append(e.C).Append("ns");
        }
        else
        {
            sb.Append(" a=").Append(e.A).Append(" addr=0x").Append(e.B.ToString("x")).Append(" v=").Append(e.C);
        }
        return sb.ToString();
    }
}
