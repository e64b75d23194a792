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
/// The run's event log: a hash of every event (cheap; two runs with the same seed must give the same hash), the last
/// events in a ring for violation reports, and, when asked, the whole log.
/// The hash is of the history, not of the order the host ran it in: each event is hashed with its task's own event
/// count, and the hashes are summed. So a task's sequence of events is fixed by it, while the interleaving of two
/// tasks' events (which the sim engine's run-ahead changes, and which emulated times already order) is not.
/// </summary>
public sealed class EventLog
{
    /// <summary>
    /// The last events (a power of two, so the slot is a mask, not a division, on the fault path), allocated with the
    /// first event kept: 2.5 KB that a grain's share of the kernel which never records an event does not need.
    /// </summary>
    private EmuEvent[]? _ring;
    private const int RingSize = 64;
    private long _count;
    private ulong _hash;

    public bool KeepRing { get; set; } = true;
    public List<EmuEvent>? Full { get; set; }
    public long Count => _count;
    public ulong Hash => _hash;

    public void Record(EmuTask t, EventKind kind, long a = 0, long b = 0, long c = 0)
    {
        var e = new EmuEvent(t.Clock, t.Id, kind, a, b, c);
        _count++;
        // Fields folded by distinct odd multipliers (independent, so cheap on the fault path), then mixed once.
        ulong h = ((ulong)e.Time ^ ((ulong)t.EventCount++ << 40)) * 0x9e3779b97f4a7c15UL
            + ((uint)e.Task | ((ulong)kind << 32)) * 0xc2b2ae3d27d4eb4fUL
            + (ulong)a * 0x165667b19e3779f9UL
            + (ulong)b * 0xd6e8feb86659fd93UL
            + (ulong)c * 0xff51afd7ed558ccdUL;
        _hash += Mix(h);
        if (KeepRing) (_ring ??= new EmuEvent[RingSize])[_count & (RingSize - 1)] = e;
        Full?.Add(e);
    }

    /// <summary>splitmix64's finaliser: sums of its outputs make a fair multiset hash.</summary>
    private static ulong Mix(ulong x)
    {
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9UL;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebUL;
        return x ^ (x >> 31);
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
        var ring = _ring ??= new EmuEvent[RingSize]; // as it always read: a ring never written holds empty events
        long n = Math.Min(_count, ring.Length);
        for (long i = _count - n + 1; i <= _count; i++)
            if (ring[i & (ring.Length - 1)].Time <= upTo)
                events.Add(ring[i & (ring.Length - 1)]);
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
