using DistEmu.Abstractions;
using DistEmu.Kernel;
using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sanitizer;
using DistEmu.Kernel.Stats;

namespace DistEmu.Grains.Support;

/// <summary>Kernel counters to messages and back: each grain exports its share; the machine grain merges them.</summary>
public static class StatsCodec
{
    public static StatsMessage Export(EmuMachine m)
    {
        var msg = new StatsMessage
        {
            VmStat = m.VmStat.ToArray(),
            MigrationWait = Export(m.MigrationWait),
            FaultLatency = Export(m.FaultLatency),
            WriterWait = Export(m.WriterWait),
            WriterMmapLockWait = Export(m.WriterMmapLockWait),
            WriterVmaWait = Export(m.WriterVmaWait),
            Frames = [m.Frames.Free, m.Frames.Pcp, m.Frames.Anon, m.Frames.PageCache, m.Frames.InFlight, m.Frames.Total],
            ViolationCounts = new Dictionary<string, long>(m.Sanitizer.Counts),
        };
        foreach (var e in m.LockStats.Entries)
        {
            if (e.Acquisitions == 0 && e.Hold.Count == 0) continue;
            msg.Locks.Add(new LockStatMessage
            {
                Class = (byte)e.Class,
                Mode = (byte)e.Mode,
                Acquisitions = e.Acquisitions,
                Contentions = e.Contentions,
                Wait = Export(e.Wait),
                Hold = Export(e.Hold),
            });
        }
        foreach (var v in m.Sanitizer.Violations)
        {
            msg.Violations.Add(new ViolationMessage
            {
                Invariant = v.Invariant,
                Policy = v.Policy,
                Task = v.Task,
                Cpu = v.Cpu,
                Vma = v.Vma,
                Address = v.Address,
                EmulatedNs = v.EmulatedNs,
                Message = v.Message,
                History = v.History.ToArray(),
            });
        }
        return msg;
    }

    private static HistMessage Export(NsHistogram h)
    {
        var (values, counts, count, total, min, max) = h.Export();
        return new HistMessage { Values = values, Counts = counts, Count = count, Total = total, Min = min, Max = max };
    }

    /// <summary>Add <paramref name="from"/> into <paramref name="into"/>.</summary>
    public static void Merge(StatsMessage into, StatsMessage from)
    {
        if (into.VmStat.Length == 0) into.VmStat = new long[from.VmStat.Length];
        for (int i = 0; i < from.VmStat.Length; i++) into.VmStat[i] += from.VmStat[i];
        for (int i = 0; i < from.Frames.Length; i++) into.Frames[i] += from.Frames[i];
        foreach (var l in from.Locks)
        {
            var mine = into.Locks.Find(x => x.Class == l.Class && x.Mode == l.Mode);
            if (mine is null)
            {
                into.Locks.Add(l);
                continue;
            }
            mine.Acquisitions += l.Acquisitions;
            mine.Contentions += l.Contentions;
            mine.Wait = Merge(mine.Wait, l.Wait);
            mine.Hold = Merge(mine.Hold, l.Hold);
        }
        into.MigrationWait = Merge(into.MigrationWait, from.MigrationWait);
        into.FaultLatency = Merge(into.FaultLatency, from.FaultLatency);
        into.WriterWait = Merge(into.WriterWait, from.WriterWait);
        into.WriterMmapLockWait = Merge(into.WriterMmapLockWait, from.WriterMmapLockWait);
        into.WriterVmaWait = Merge(into.WriterVmaWait, from.WriterVmaWait);
        into.Violations.AddRange(from.Violations.Take(Math.Max(0, 200 - into.Violations.Count)));
        foreach (var (k, v) in from.ViolationCounts)
            into.ViolationCounts[k] = into.ViolationCounts.GetValueOrDefault(k) + v;
        into.MaxClock = Math.Max(into.MaxClock, from.MaxClock);
        into.Ops += from.Ops;
        into.Accesses += from.Accesses;
        into.Sigsegv += from.Sigsegv;
        into.Sigbus += from.Sigbus;
        into.Stalled.AddRange(from.Stalled);
        into.Lost.AddRange(from.Lost);
        into.Fresh.AddRange(from.Fresh);
        into.FreshVmas.AddRange(from.FreshVmas);
        into.MaxSkewNs = Math.Max(into.MaxSkewNs, from.MaxSkewNs);
        into.QuantumSyncs += from.QuantumSyncs;
        into.LookaheadGrants += from.LookaheadGrants;
        if (into.SpanCounts.Length < from.SpanCounts.Length) Array.Resize(ref into.SpanCounts, from.SpanCounts.Length);
        for (int i = 0; i < from.SpanCounts.Length; i++) into.SpanCounts[i] += from.SpanCounts[i];
    }

    /// <summary>
    /// Merges what <paramref name="read"/> gives into <paramref name="into"/>, however long it takes: a grain is lost only
    /// when the call fails, which Orleans does for a call to a silo its membership declared dead
    /// (SiloUnavailableException). Such a grain is named in <see cref="StatsMessage.Lost"/> instead of failing the whole
    /// collection, so a run cut short by a lost silo keeps the survivors' counters.
    /// </summary>
    public static async Task MergeOrLost(StatsMessage into, string grain, Func<Task<StatsMessage>> read)
    {
        try
        {
            Merge(into, await read());
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            into.Lost.Add($"{grain} ({e.GetType().Name})");
        }
    }

    /// <summary>Above this many (value, count) pairs a merged distribution folds equal values together.</summary>
    private const int FoldAbove = 1024;

    private static HistMessage Merge(HistMessage a, HistMessage b)
    {
        if (b.Count == 0) return a;
        if (a.Count == 0) return b;
        long[] values = [.. a.Values, .. b.Values], counts = [.. a.Counts, .. b.Counts];
        // An mm keeps merging the counters of every VMA it retires (thousands in a long run): most values repeat.
        if (values.Length > FoldAbove) (values, counts) = Fold(values, counts);
        return new HistMessage
        {
            Values = values,
            Counts = counts,
            Count = a.Count + b.Count,
            Total = a.Total + b.Total,
            Min = Math.Min(a.Min, b.Min),
            Max = Math.Max(a.Max, b.Max),
        };
    }

    /// <summary>The same distribution with each value once: sorted, equal values' counts summed.</summary>
    private static (long[] Values, long[] Counts) Fold(long[] values, long[] counts)
    {
        Array.Sort(values, counts);
        int n = 0;
        for (int i = 0; i < values.Length; i++)
        {
            if (n > 0 && values[n - 1] == values[i])
            {
                counts[n - 1] += counts[i];
                continue;
            }
            values[n] = values[i];
            counts[n] = counts[i];
            n++;
        }
        return (values[..n], counts[..n]);
    }

    /// <summary>What a fresh activation of a grain that took part in the run answers: its counters went with its silo.</summary>
    public static StatsMessage LostWithSilo(string grain) => new() { Lost = [$"{grain} (its state was lost with its silo)"] };

    /// <summary>A machine holding the merged counters, for the same reports the sim engine's runs produce.</summary>
    public static EmuMachine ToMachine(MachineSpec spec, bool sanitizer, StatsMessage msg)
    {
        var m = new EmuMachine(spec, sanitizer, ownsFrames: false);
        if (msg.VmStat.Length > 0) m.VmStat.AddArray(msg.VmStat);
        m.Frames.Free = msg.Frames[0];
        m.Frames.Pcp = msg.Frames[1];
        m.Frames.Anon = msg.Frames[2];
        m.Frames.PageCache = msg.Frames[3];
        m.Frames.InFlight = msg.Frames[4];
        m.Frames.Total = msg.Frames[5];
        foreach (var l in msg.Locks)
        {
            var e = m.LockStats[(LockClass)l.Class, (LockMode)l.Mode];
            e.Acquisitions += l.Acquisitions;
            e.Contentions += l.Contentions;
            Import(e.Wait, l.Wait);
            Import(e.Hold, l.Hold);
        }
        Import(m.MigrationWait, msg.MigrationWait);
        Import(m.FaultLatency, msg.FaultLatency);
        Import(m.WriterWait, msg.WriterWait);
        Import(m.WriterMmapLockWait, msg.WriterMmapLockWait);
        Import(m.WriterVmaWait, msg.WriterVmaWait);
        m.Sanitizer.Absorb(msg.Violations.Select(v => new Violation(v.Invariant, v.Policy, v.Task, v.Cpu, v.Vma, v.Address, v.EmulatedNs, v.Message, v.History)),
            msg.ViolationCounts);
        return m;
    }

    private static void Import(NsHistogram h, HistMessage msg) => h.Import(msg.Values, msg.Counts, msg.Count, msg.Total, msg.Min, msg.Max);
}
